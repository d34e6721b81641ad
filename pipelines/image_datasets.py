"""Image classification sources: named datasets, local folders or tfds, as one kind of tf.data.Dataset.

`make_image_source` resolves a dataset name to its reader:

- `mnist`, `fashion_mnist`: IDX files in `DATA_DIR/<name>/` (gzipped or not).
- `cifar10`: CIFAR-10 batches (binary or python) in `DATA_DIR/cifar10/`, falling back
  to the 4,000/1,000 subset in `DATA_DIR/cifar10_subset/` when the full set is absent;
  `cifar10_subset` names the subset explicitly.
- a directory path: IDX files, CIFAR-10 batches, or class-per-folder PNG/JPEG images.
- `tfds:NAME` (e.g. `tfds:cifar10`): TensorFlow Datasets, downloaded by tfds.

Splits are `train`, `test` (and `validation` where a dataset has one) with optional
tfds-style slices: `train[:55000]`, `train[-10%:]`.
"""

import dataclasses
import glob
import logging
import os
import re

import numpy as np
import tensorflow as tf

from keras_tasks.pipelines.cifar import SPLIT_PATTERNS as CIFAR_PATTERNS
from keras_tasks.pipelines.cifar import read_cifar10
from keras_tasks.pipelines.errors import DataError
from keras_tasks.pipelines.idx import read_idx_pair
from keras_tasks.pipelines.image_decoding import resize_image
from keras_tasks.pipelines.image_folder import (
    SPLIT_FOLDERS,
    has_split_layout,
    image_folder_dataset,
    infer_image_spec,
    read_image_folder,
)

logger = logging.getLogger(__name__)

DATA_ENV = "KERAS_TASKS_DATA"
IDX_PREFIX = {"train": "train", "test": "t10k"}
FASHION_MNIST_NAMES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                       "ankle boot")
# Named local datasets: folder under the data directory, reader, class names (None: from the files).
NAMED_DATASETS = {
    "mnist": ("mnist", "idx", tuple(str(d) for d in range(10))),
    "fashion_mnist": ("fashion_mnist", "idx", FASHION_MNIST_NAMES),
    "cifar10": ("cifar10", "cifar", None),
    "cifar10_subset": ("cifar10_subset", "cifar", None),
}
SPLIT_RE = re.compile(r"^(\w+)(?:\[(-?\d+%?)?:(-?\d+%?)?\])?$")


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """One split of an image classification dataset.

    Attributes:
        dataset: `tf.data.Dataset` of `{"image": uint8 (height, width, channels), "label": int64}`.
        label_names: class names, index = label.
        image_shape: `(height, width, channels)` of every image.
        num_examples: number of examples (None when tfds does not say).
        origin: where the data came from (a path or `tfds:NAME`), for run records.
    """

    dataset: tf.data.Dataset
    label_names: tuple
    image_shape: tuple
    num_examples: int
    origin: str


def parse_split(split):
    """`"train[10%:-5]"` -> `("train", "10%", "-5")`; bounds are None when absent."""
    match = SPLIT_RE.match(split.replace(" ", ""))
    if not match:
        raise ValueError(f"bad split {split!r}: expected e.g. 'train', 'test', 'train[:90%]' or 'train[-5000:]'")
    return match.group(1), match.group(2), match.group(3)


def slice_bounds(count, start, stop):
    """Resolves tfds-style slice bounds (ints or percentages, possibly negative) to indices."""

    def index(bound, default):
        if bound is None:
            return default
        if bound.endswith("%"):
            return int(round(count * int(bound[:-1]) / 100))
        return int(bound)

    return slice(index(start, 0), index(stop, count)).indices(count)[:2]


def default_data_dir():
    if DATA_ENV not in os.environ:
        raise DataError(f"${DATA_ENV}", "data directory not set",
                        hint=f"pass --data-dir DIR or set {DATA_ENV} to the folder holding mnist/, cifar10/, ...")
    return os.environ[DATA_ENV]


def read_idx_split(directory, split):
    if split not in IDX_PREFIX:
        raise DataError(directory, f"MNIST-style data has no split {split!r}, only 'train' and 'test'",
                        hint="carve a validation split out of training, e.g. train[:55000] and train[55000:]")
    prefix = IDX_PREFIX[split]
    paths = []
    for kind, rank in (("images", 3), ("labels", 1)):
        name = f"{prefix}-{kind}-idx{rank}-ubyte"
        found = [p for p in (os.path.join(directory, name), os.path.join(directory, name + ".gz")) if os.path.isfile(p)]
        if not found:
            raise DataError(directory, f"{name}[.gz] not found",
                            hint=f"put the four MNIST-style files ({{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte.gz) "
                            "in this folder, or use --dataset tfds:mnist")
        paths.append(found[0])
    return read_idx_pair(*paths)


def detect_format(directory):
    """`idx`, `cifar` or `folder` for a local dataset directory."""
    if glob.glob(os.path.join(directory, "train-images-idx3-ubyte*")):
        return "idx"
    for folder in ("", "cifar-10-batches-bin", "cifar-10-batches-py"):
        if glob.glob(os.path.join(directory, folder, CIFAR_PATTERNS["train"])):
            return "cifar"
    return "folder"


def resolve_local(dataset, data_dir):
    """`(directory, format, label_names)` of a named dataset or a directory path."""
    if dataset in NAMED_DATASETS:
        folder, form, names = NAMED_DATASETS[dataset]
        root = data_dir or default_data_dir()
        directory = os.path.join(root, folder)
        if dataset == "cifar10" and not os.path.isdir(directory) and os.path.isdir(os.path.join(root, "cifar10_subset")):
            logger.warning("full CIFAR-10 not found in %s; using the 4,000/1,000 subset in cifar10_subset/", directory)
            directory = os.path.join(root, "cifar10_subset")
        if not os.path.isdir(directory):
            raise DataError(directory, f"dataset folder for {dataset!r} not found",
                            hint=f"put the {dataset} files there (see docs), pass --data-dir, or use --dataset tfds:{dataset}")
        return directory, form, names
    if os.path.isdir(dataset):
        return dataset, detect_format(dataset), None
    raise DataError(dataset, f"unknown image dataset: neither one of {sorted(NAMED_DATASETS)} nor a directory",
                    hint="pass a named dataset, a folder of class folders, or tfds:NAME")


def read_local(directory, form, split, label_names, image_size, channels):
    """Reads one whole split: `(dataset, label_names, image_shape, num_examples)`, slicing left to the caller."""
    if form == "folder":
        paths, labels, names = read_image_folder(directory, split)
        height, width, found_channels = infer_image_spec(paths[0])
        size = tuple(image_size) if image_size else (height, width)
        channels = channels or found_channels
        return (paths, labels), names, (size[0], size[1], channels)
    if form == "idx":
        images, labels = read_idx_split(directory, split)
        names = label_names or tuple(str(i) for i in range(int(labels.max()) + 1))
    else:
        images, labels, names = read_cifar10(directory, split)
    return (images, labels), names, images.shape[1:]


def convert_images(dataset, from_shape, channels, size):
    """Maps `{"image"}` examples of `from_shape` (None where sizes vary) to `channels` and `size`."""
    if channels == from_shape[-1] and tuple(size) == tuple(from_shape[:2]):
        return dataset

    def convert(x):
        image = x["image"]
        if channels != image.shape[-1]:
            image = tf.image.rgb_to_grayscale(image) if channels == 1 else tf.image.grayscale_to_rgb(image)
        return {**x, "image": resize_image(image, size)}

    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def count_examples(dataset):
    count = int(dataset.cardinality())
    return count if count >= 0 else int(dataset.reduce(0, lambda n, _: n + 1))


def make_tfds_source(name, split, max_examples, image_size, channels):
    import tensorflow_datasets as tfds  # only online users need it

    dataset, info = tfds.load(name, split=split, with_info=True)
    names = tuple(info.features["label"].names)
    shape = tuple(info.features["image"].shape)
    height, width = tuple(image_size) if image_size else shape[:2]
    if height is None or width is None:
        raise DataError(f"tfds:{name}", f"images vary in size {shape}", hint="set data.image_size, e.g. [224, 224]")
    channels = channels or shape[-1]
    dataset = dataset.map(lambda x: {"image": x["image"], "label": tf.cast(x["label"], tf.int64)})
    if max_examples:
        dataset = dataset.take(max_examples)
    dataset = convert_images(dataset, shape, channels, (height, width))
    return ImageSource(dataset, names, (height, width, channels), count_examples(dataset), f"tfds:{name}")


def available_splits(dataset, data_dir=None):
    """The splits a dataset has of its own, among `train`, `validation` and `test`."""
    if dataset.startswith("tfds:"):
        import tensorflow_datasets as tfds

        splits = tfds.builder(dataset[len("tfds:"):]).info.splits
        return tuple(s for s in ("train", "validation", "test") if s in splits) or ("train", "test")
    directory, form, _ = resolve_local(dataset, data_dir)
    if form == "folder":
        if not has_split_layout(directory):
            return ("train",)
        return tuple(s for s in SPLIT_FOLDERS if os.path.isdir(os.path.join(directory, s)))
    return ("train", "test")


def take_range(source, begin, end):
    """The examples `begin..end-1` of a source, as a source."""
    begin, end = max(0, int(begin)), min(int(end), source.num_examples)
    return dataclasses.replace(source, dataset=source.dataset.skip(begin).take(end - begin), num_examples=end - begin)


def make_image_source(dataset, split="train", data_dir=None, max_examples=None, image_size=None, channels=None):
    """Builds one split of an image classification dataset.

    Args:
        dataset: a named dataset (`mnist`, `fashion_mnist`, `cifar10`, `cifar10_subset`),
            a directory (IDX, CIFAR-10 batches or class folders) or `tfds:NAME`.
        split: `train`, `test` or `validation`, optionally sliced (`train[:90%]`).
        data_dir: folder holding the named datasets; defaults to `$KERAS_TASKS_DATA`.
        max_examples: keep at most this many examples (after slicing), for quick runs.
        image_size: optional `(height, width)` to resize to; class folders default to
            the size of their first image.
        channels: optional 1 or 3 to convert to; defaults to the files' channels.

    Returns:
        An `ImageSource`.
    """
    if dataset.startswith("tfds:"):
        return make_tfds_source(dataset[len("tfds:"):], split, max_examples, image_size, channels)
    directory, form, label_names = resolve_local(dataset, data_dir)
    split_name, start, stop = parse_split(split)
    (images, labels), names, shape = read_local(directory, form, split_name, label_names, image_size, channels)
    begin, end = slice_bounds(len(labels), start, stop)
    if max_examples:
        end = min(end, begin + int(max_examples))
    images, labels = images[begin:end], labels[begin:end]
    if len(labels) == 0:
        raise DataError(directory, f"split {split!r} is empty", hint="check the slice bounds and --max-examples")
    if len(labels) and int(labels.max()) >= len(names):
        raise DataError(directory, f"label {int(labels.max())} has no class name (only {len(names)} names)")
    height, width = tuple(image_size) if image_size else shape[:2]
    channels = channels or shape[-1]
    if form == "folder":
        source = image_folder_dataset(images, labels, channels, (height, width))
    else:
        arrays = tf.data.Dataset.from_tensor_slices({"image": np.asarray(images), "label": labels})
        source = convert_images(arrays, images.shape[1:], channels, (height, width))
    return ImageSource(source, tuple(names), (int(height), int(width), int(channels)), len(labels), directory)
