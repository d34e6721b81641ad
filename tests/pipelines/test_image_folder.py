import os

import numpy as np
import pytest
import tensorflow as tf
from image_files import encode, write_bytes, write_image_folder

from keras_tasks.pipelines.errors import DataError
from keras_tasks.pipelines.image_decoding import check_image_file, decode_image_batch
from keras_tasks.pipelines.image_folder import infer_image_spec, read_image_folder


def test_single_pool_layout(tmp_path):
    write_image_folder(tmp_path, classes=("dog", "cat"), per_class=2)
    write_bytes(str(tmp_path / "cat" / "notes.txt"), b"ignored")
    paths, labels, names = read_image_folder(str(tmp_path), "train")
    assert names == ("cat", "dog")
    assert [os.path.basename(os.path.dirname(p)) for p in paths] == ["cat", "cat", "dog", "dog"]
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    carved = "no 'test' split.*carves validation and test from it, stratified by class.*data.test_fraction"
    with pytest.raises(DataError, match=carved):
        read_image_folder(str(tmp_path), "test")


def test_split_layout_uses_training_classes(tmp_path):
    write_image_folder(tmp_path / "train", classes=("a", "b", "c"), per_class=1)
    write_image_folder(tmp_path / "test", classes=("c",), per_class=2, fmt="jpg")
    paths, labels, names = read_image_folder(str(tmp_path), "test")
    assert names == ("a", "b", "c") and list(labels) == [2, 2]
    write_image_folder(tmp_path / "test", classes=("zebra",), per_class=1)
    with pytest.raises(DataError, match="zebra: class folder not in the training split"):
        read_image_folder(str(tmp_path), "test")


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_truncated_image_is_named(tmp_path, fmt):
    write_image_folder(tmp_path, per_class=2, size=(40, 40), fmt=fmt)
    bad = tmp_path / "dog" / f"1.{fmt}"
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])
    with pytest.raises(DataError, match="truncated") as error:
        read_image_folder(str(tmp_path), "train")
    assert error.value.path == str(bad)


def test_not_an_image(tmp_path):
    write_image_folder(tmp_path, per_class=1)
    write_bytes(str(tmp_path / "cat" / "x.png"), b"GIF89a....")
    with pytest.raises(DataError, match="not a PNG or JPEG"):
        read_image_folder(str(tmp_path), "train")


def test_empty_class_folder_and_missing_dir(tmp_path):
    write_image_folder(tmp_path, classes=("a",), per_class=1)
    os.makedirs(tmp_path / "b")
    with pytest.raises(DataError, match="holds no"):
        read_image_folder(str(tmp_path), "train")
    with pytest.raises(DataError, match="image folder not found"):
        read_image_folder(str(tmp_path / "nope"), "train")


def test_infer_spec_and_decode_batch(tmp_path):
    gray = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8, 1)
    path = write_bytes(str(tmp_path / "g.png"), encode(gray, "png"))
    check_image_file(path)
    assert infer_image_spec(path) == (6, 8, 1)
    batch = tf.constant([encode(gray, "png"), encode(np.zeros((20, 30, 3), np.uint8), "jpg")])
    decoded = decode_image_batch(batch, channels=3, size=(6, 8)).numpy()
    assert decoded.shape == (2, 6, 8, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded[0], np.repeat(gray, 3, axis=-1))
