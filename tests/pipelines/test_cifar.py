import os
import pickle

import numpy as np
import pytest
from image_files import cifar_pickle_bytes, cifar_records, write_bytes

from keras_tasks.pipelines.cifar import CIFAR10_LABEL_NAMES, read_cifar10, read_cifar_pickle
from keras_tasks.pipelines.errors import DataError


@pytest.mark.parametrize("name,compress", [("data_batch_1.bin", False), ("data_batch_1.bin.gz", True)])
def test_binary_records(tmp_path, name, compress):
    data, images, labels = cifar_records(6)
    write_bytes(str(tmp_path / name), data, compress)
    write_bytes(str(tmp_path / "data_batch_2.bin"), cifar_records(3, seed=1)[0])
    got_images, got_labels, names = read_cifar10(str(tmp_path), "train")
    assert got_images.shape == (9, 32, 32, 3) and got_images.dtype == np.uint8
    np.testing.assert_array_equal(got_images[:6], images)
    np.testing.assert_array_equal(got_labels[:6], labels)
    assert names == CIFAR10_LABEL_NAMES


def test_binary_in_archive_folder_with_meta(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    write_bytes(str(folder / "test_batch.bin"), cifar_records(4)[0])
    write_bytes(str(folder / "batches.meta.txt"), "\n".join(f"c{i}" for i in range(10)).encode() + b"\n\n")
    images, labels, names = read_cifar10(str(tmp_path), "test")
    assert len(images) == 4 and names[3] == "c3"


def test_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    data, images, labels = cifar_pickle_bytes(5)
    write_bytes(str(folder / "data_batch_1"), data)
    meta = pickle.dumps({b"label_names": [f"n{i}".encode() for i in range(10)]}, protocol=2)
    write_bytes(str(folder / "batches.meta"), meta)
    got_images, got_labels, names = read_cifar10(str(tmp_path), "train")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert names[0] == "n0"


def test_truncated_binary(tmp_path):
    data = cifar_records(3)[0]
    write_bytes(str(tmp_path / "data_batch_1.bin"), data[:-100])
    with pytest.raises(DataError, match="not a whole number of 3073-byte.*truncated") as error:
        read_cifar10(str(tmp_path), "train")
    assert "data_batch_1.bin" in str(error.value)


def test_bad_label(tmp_path):
    data = bytearray(cifar_records(3)[0])
    data[3073] = 42
    write_bytes(str(tmp_path / "test_batch.bin"), bytes(data))
    with pytest.raises(DataError, match="record 2 has label 42"):
        read_cifar10(str(tmp_path), "test")


def test_corrupt_pickle(tmp_path):
    path = write_bytes(str(tmp_path / "data_batch_1"), cifar_pickle_bytes(3)[0][:50])
    with pytest.raises(DataError, match="not a readable CIFAR python batch"):
        read_cifar_pickle(path)


def test_pickle_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    path = write_bytes(str(tmp_path / "data_batch_1"), pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match="refusing to load"):
        read_cifar_pickle(path)


def test_pickle_count_mismatch(tmp_path):
    batch = {b"data": np.zeros((3, 3072), np.uint8), b"labels": [1, 2]}
    path = write_bytes(str(tmp_path / "data_batch_1"), pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match="2 labels for 3 images"):
        read_cifar_pickle(path)


def test_missing_split(tmp_path):
    with pytest.raises(DataError, match="no CIFAR-10 test batches.*cifar-10-binary.tar.gz"):
        read_cifar10(str(tmp_path), "test")
