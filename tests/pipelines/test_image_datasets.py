import os

import numpy as np
import pytest
from image_files import cifar_records, write_bytes, write_image_folder, write_mnist

from keras_tasks.pipelines import image_datasets, text_datasets
from keras_tasks.pipelines.errors import DataError
from keras_tasks.pipelines.image_datasets import (
    carve_splits,
    make_image_source,
    parse_split,
    slice_bounds,
    source_labels,
    split_indices,
    take_examples,
)


def take_all(source):
    examples = list(source.dataset.as_numpy_iterator())
    return np.stack([e["image"] for e in examples]), np.array([e["label"] for e in examples])


def test_split_slices():
    assert parse_split("train[:90%]") == ("train", None, "90%")
    assert slice_bounds(100, None, "90%") == (0, 90)
    assert slice_bounds(100, "-5", None) == (95, 100)
    assert slice_bounds(10, "20%", "-2") == (2, 8)
    with pytest.raises(ValueError, match="bad split"):
        parse_split("train[1]")


def test_named_mnist_from_data_dir(tmp_path):
    arrays = write_mnist(tmp_path / "mnist", {"train": 12, "t10k": 5})
    source = make_image_source("mnist", "train[2:]", data_dir=str(tmp_path), max_examples=4)
    assert source.image_shape == (28, 28, 1) and source.num_examples == 4
    assert source.label_names == tuple("0123456789")
    images, labels = take_all(source)
    np.testing.assert_array_equal(images[..., 0], arrays["train"][0][2:6])
    np.testing.assert_array_equal(labels, [2, 3, 4, 5])
    assert make_image_source("mnist", "test", data_dir=str(tmp_path)).num_examples == 5


def test_mnist_uses_env_and_names_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_TASKS_DATA", str(tmp_path))
    write_mnist(tmp_path / "mnist", {"train": 3})
    assert make_image_source("mnist").num_examples == 3
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte\\[.gz\\] not found.*tfds:mnist"):
        make_image_source("mnist", "test")
    with pytest.raises(DataError, match="no split 'validation'.*train\\[:55000\\]"):
        make_image_source("mnist", "validation")


def test_data_dir_defaults_to_home_folder_and_errors_name_it(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_TASKS_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = os.path.join(str(tmp_path), "keras_tasks_data")
    assert image_datasets.default_data_dir() == text_datasets.default_data_dir() == expected
    with pytest.raises(DataError) as error:
        make_image_source("mnist")
    assert error.value.path == os.path.join(expected, "mnist") and "KERAS_TASKS_DATA" in str(error.value)
    write_mnist(os.path.join(expected, "mnist"), {"train": 3})
    assert make_image_source("mnist").num_examples == 3


def test_cifar10_falls_back_to_subset(tmp_path):
    write_bytes(str(tmp_path / "cifar10_subset" / "test_batch_first1000.bin.gz"), cifar_records(3)[0], compress=True)
    source = make_image_source("cifar10", "test", data_dir=str(tmp_path))
    assert source.origin.endswith("cifar10_subset") and source.image_shape == (32, 32, 3)
    assert source.label_names[0] == "airplane"


def test_directory_formats_and_conversion(tmp_path):
    write_mnist(tmp_path / "idx", {"train": 4}, compress=False)
    source = make_image_source(str(tmp_path / "idx"), image_size=(32, 32), channels=3)
    images, _ = take_all(source)
    assert source.image_shape == (32, 32, 3) and images.shape == (4, 32, 32, 3)
    write_bytes(str(tmp_path / "cif" / "data_batch_1.bin"), cifar_records(2)[0])
    assert make_image_source(str(tmp_path / "cif")).num_examples == 2


def test_image_folder_resized_to_first_image(tmp_path):
    write_image_folder(tmp_path, classes=("a", "b"), per_class=2, size=(10, 12), channels=1)
    write_image_folder(tmp_path, classes=("b",), per_class=1, size=(30, 20), channels=3, fmt="jpg", seed=1)
    source = make_image_source(str(tmp_path), "train")
    assert source.image_shape == (10, 12, 1) and source.label_names == ("a", "b")
    images, labels = take_all(source)
    assert images.shape == (5, 10, 12, 1) and images.dtype == np.uint8
    assert sorted(labels) == [0, 0, 1, 1, 1]


def test_unknown_dataset_and_empty_slice(tmp_path):
    with pytest.raises(DataError, match="unknown image dataset"):
        make_image_source("imagenet", data_dir=str(tmp_path))
    write_mnist(tmp_path / "mnist", {"train": 3})
    with pytest.raises(DataError, match="is empty"):
        make_image_source("mnist", "train[5:]", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="not found.*tfds:cifar10"):
        make_image_source("cifar10", data_dir=str(tmp_path / "none"))


def split_classes(source):
    return sorted(set(take_all(source)[1].tolist()))


def test_missing_splits_are_stratified_seeded_and_disjoint(tmp_path):
    classes = ("a", "b", "c", "d", "e")
    write_image_folder(tmp_path, classes=classes, per_class=10, size=(4, 4))
    source = make_image_source(str(tmp_path))
    labels = source_labels(source)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(5), 10))  # class-sorted, as listed
    parts = split_indices(labels, {"validation": 0.2, "test": 0.2}, seed=3)
    for name, per_class in (("validation", 2), ("test", 2), ("train", 6)):
        np.testing.assert_array_equal(np.bincount(labels[parts[name]], minlength=5), [per_class] * 5, err_msg=name)
    everything = np.concatenate(list(parts.values()))
    assert len(everything) == 50 and len(set(everything.tolist())) == 50  # disjoint, nothing lost
    again = split_indices(labels, {"validation": 0.2, "test": 0.2}, seed=3)
    other = split_indices(labels, {"validation": 0.2, "test": 0.2}, seed=4)
    assert all(np.array_equal(parts[name], again[name]) for name in parts)
    assert not np.array_equal(parts["test"], other["test"])

    splits = carve_splits(source, {"validation": 0.2, "test": 0.2}, seed=3)
    images, _ = take_all(source)
    for name in ("train", "validation", "test"):
        assert splits[name].num_examples == len(parts[name])
        assert split_classes(splits[name]) == [0, 1, 2, 3, 4], name
        split_images, split_labels = take_all(splits[name])
        np.testing.assert_array_equal(split_images, images[parts[name]])
        np.testing.assert_array_equal(split_labels, labels[parts[name]])


def test_max_examples_keeps_every_class(tmp_path):
    write_image_folder(tmp_path, classes=("a", "b", "c", "d", "e"), per_class=10, size=(4, 4))
    source = make_image_source(str(tmp_path))
    splits = carve_splits(source, {"validation": 0.1, "test": 0.1}, seed=0, max_examples=10)
    assert {k: v.num_examples for k, v in splits.items()} == {"validation": 5, "test": 5, "train": 10}
    assert np.bincount(source_labels(splits["train"]), minlength=5).tolist() == [2] * 5
    assert split_classes(splits["train"]) == [0, 1, 2, 3, 4]
    # With no split to carve (the dataset has its own), max_examples still keeps every class.
    capped = carve_splits(source, {}, seed=0, max_examples=5)["train"]
    assert split_classes(capped) == [0, 1, 2, 3, 4]


def test_imbalanced_classes_split_in_proportion():
    labels = np.repeat([0, 1, 2], [30, 10, 5])
    parts = split_indices(labels, {"test": 0.2}, seed=1, max_examples=18)
    assert np.bincount(labels[parts["test"]]).tolist() == [6, 2, 1]
    assert np.bincount(labels[parts["train"]]).tolist() == [12, 4, 2]


def test_too_few_examples_to_carve_names_the_data(tmp_path):
    write_image_folder(tmp_path, classes=("a", "b"), per_class=2, size=(4, 4))
    with pytest.raises(DataError, match="4 training examples.*validation_fraction"):
        carve_splits(make_image_source(str(tmp_path)), {"validation": 0.1, "test": 0.1}, seed=0)


def test_idx_labels_without_decoding_and_take_examples(tmp_path):
    arrays = write_mnist(tmp_path, {"train": 12})
    source = make_image_source(str(tmp_path), image_size=(14, 14))
    np.testing.assert_array_equal(source_labels(source), arrays["train"][1])
    subset = take_examples(source, [7, 2])
    images, labels = take_all(subset)
    assert subset.num_examples == 2 and images.shape == (2, 14, 14, 1)
    np.testing.assert_array_equal(labels, [2, 7])


@pytest.mark.large
def test_real_data_files_read():
    """The shared offline files parse with the expected counts (reading only, no training)."""
    root = os.environ["KERAS_TASKS_DATA"]
    assert make_image_source("mnist", "test", data_dir=root).num_examples == 10000
    source = make_image_source("cifar10_subset", "train", data_dir=root)
    assert source.num_examples == 4000 and source.label_names[-1] == "truck"


def test_tfds_source_offline_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        source = make_image_source("tfds:mnist", "train", max_examples=4, image_size=(32, 32), channels=3)
        images, labels = take_all(source)
        known_labels = source_labels(source)
        parts = split_indices(labels, {"test": 0.5}, seed=0)
        test = take_examples(source, parts["test"])
        test_images, test_labels = take_all(test)
    assert source.origin == "tfds:mnist" and source.label_names[:2] == ("0", "1")
    assert source.num_examples == 4 and source.image_shape == (32, 32, 3)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    np.testing.assert_array_equal(known_labels, labels)
    assert test.num_examples == 2 and len(test_labels) == 2
    np.testing.assert_array_equal(test_labels, labels[parts["test"]])
    np.testing.assert_array_equal(test_images, images[parts["test"]])
