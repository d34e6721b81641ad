import gzip
import os

import numpy as np
import pytest
from image_files import idx_bytes, write_bytes, write_mnist

from keras_tasks.pipelines.errors import DataError
from keras_tasks.pipelines.idx import parse_idx, read_idx, read_idx_pair


@pytest.mark.parametrize("compress", [True, False])
def test_reads_images_and_labels(tmp_path, compress):
    arrays = write_mnist(tmp_path, {"train": 7}, compress=compress)
    suffix = ".gz" if compress else ""
    images, labels = read_idx_pair(tmp_path / f"train-images-idx3-ubyte{suffix}", tmp_path / f"train-labels-idx1-ubyte{suffix}")
    assert images.shape == (7, 28, 28, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(images[..., 0], arrays["train"][0])
    np.testing.assert_array_equal(labels, arrays["train"][1])


def test_big_endian_types():
    data = bytes([0, 0, 0x0B, 1]) + (3).to_bytes(4, "big") + np.array([1, -2, 300], ">i2").tobytes()
    np.testing.assert_array_equal(parse_idx(data), [1, -2, 300])


def test_wrong_magic_number(tmp_path):
    path = write_bytes(str(tmp_path / "x-idx3-ubyte"), b"\x12\x34\x08\x03" + bytes(20))
    with pytest.raises(DataError, match="magic number 12340803") as error:
        read_idx(path)
    assert "x-idx3-ubyte" in str(error.value)


def test_wrong_rank_says_files_swapped(tmp_path):
    path = write_bytes(str(tmp_path / "labels"), idx_bytes(np.zeros((2, 3, 3))))
    with pytest.raises(DataError, match="3 dimensions.*expected 1.*swapped"):
        read_idx(path, ndim=1)


@pytest.mark.parametrize("cut", [3, 6, 30])
def test_truncated_file(tmp_path, cut):
    data = idx_bytes(np.zeros((4, 5, 5)))
    path = write_bytes(str(tmp_path / "images"), data[:-cut])
    with pytest.raises(DataError, match="truncated|magic") as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_truncated_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((40, 5, 5))))
    path = write_bytes(str(tmp_path / "images.gz"), data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip.*download"):
        read_idx(path)


def test_gz_name_without_gzip_content(tmp_path):
    path = write_bytes(str(tmp_path / "images.gz"), b"plain")
    with pytest.raises(DataError, match="not gzip"):
        read_idx(path)


def test_mismatched_counts(tmp_path):
    write_mnist(tmp_path, {"train": 5}, compress=False)
    labels = str(tmp_path / "train-labels-idx1-ubyte")
    write_bytes(labels, idx_bytes(np.zeros(4)))
    with pytest.raises(DataError, match="4 labels but .* holds 5 images") as error:
        read_idx_pair(str(tmp_path / "train-images-idx3-ubyte"), labels)
    assert error.value.path == labels


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_idx(os.path.join(tmp_path, "nope"))
