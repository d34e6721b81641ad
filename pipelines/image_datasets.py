"""Image classification sources: named datasets, local folders or tfds, as one kind of tf.data.Dataset.

`make_image_source` resolves a dataset name to its reader:

- `mnist`, `fashion_mnist`: IDX files in `DATA_DIR/<name>/` (gzipped or not).
- `cifar10`: CIFAR-10 batches (binary or python) in `DATA_DIR/cifar10/`, falling back
  to the 4,000/1,000 subset in `DATA_DIR/cifar10_subset/` when the full set is absent;
  `cifar10_subset` names the subset explicitly.
- a directory path: IDX files, CIFAR-10 batches, or class-per-folder PNG/JPEG images.
- `tfds:NAME` (e.g. `tfds:cifar10`): TensorFlow Datasets, downloaded by tfds.

Splits are `train`, `test` (and `validation` where a dataset has one) with optional
tfds-style slices: `train[:55000]`, `train[-10%:]`. Splits a dataset lacks are carved
from its training split by `carve_splits`: seeded and stratified by class, since the
files of class folders are listed class by class.
"""

import dataclasses
import glob
import logging
import os
import re
import typing

import numpy as np
import tensorflow as tf

from keras_tasks.pipelines.cifar import SPLIT_PATTERNS as CIFAR_PATTERNS
from keras_tasks.pipelines.cifar import read_cifar10
from keras_tasks.pipelines.data_dir import DATA_ENV, default_data_dir
from keras_tasks.pipelines.errors import DataError
from keras_tasks.pipelines.idx import read_idx_pair
from keras_tasks.pipelines.image_decoding import resize_image
from keras_tasks.pipelines.image_folder import (
    SPLIT_FOLDERS,
    folder_row_decoder,
    folder_rows,
    has_split_layout,
    infer_image_spec,
    read_image_folder,
)

logger = logging.getLogger(__name__)

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
        labels: int64 array of every example's label, in order, read without decoding
            an image (None for tfds: `source_labels` reads it).
        rows: the undecoded examples `dataset` decodes: a dict of arrays (paths or
            pixels, and labels) or, for tfds, a `tf.data.Dataset` of encoded images.
        decode: the function from one row to one example of `dataset` (None: rows are examples).
    """

    dataset: tf.data.Dataset
    label_names: tuple
    image_shape: tuple
    num_examples: int
    origin: str
    labels: typing.Optional[np.ndarray] = dataclasses.field(default=None, repr=False, compare=False)
    rows: typing.Any = dataclasses.field(default=None, repr=False, compare=False)
    decode: typing.Optional[typing.Callable] = dataclasses.field(default=None, repr=False, compare=False)


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
                            hint=f"put the {dataset} files there (see docs), point --data-dir (or ${DATA_ENV}) at the "
                            f"folder holding {folder}/, or use --dataset tfds:{dataset}")
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


def image_converter(from_shape, channels, size):
    """A function converting one image of `from_shape` (None where sizes vary) to `channels` and `size`.

    Returns None when the images already have that shape.
    """
    if channels == from_shape[-1] and tuple(size) == tuple(from_shape[:2]):
        return None

    def convert(image):
        if channels != image.shape[-1]:
            image = tf.image.rgb_to_grayscale(image) if channels == 1 else tf.image.grayscale_to_rgb(image)
        return resize_image(image, size)

    return convert


def rows_source(rows, decode, labels, num_examples, **info):
    """An `ImageSource` whose examples are `rows` (arrays or a dataset) mapped through `decode`."""
    dataset = rows if isinstance(rows, tf.data.Dataset) else tf.data.Dataset.from_tensor_slices(rows)
    if decode is not None:
        dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ImageSource(dataset, num_examples=num_examples, labels=labels, rows=rows, decode=decode, **info)


def count_examples(dataset):
    count = int(dataset.cardinality())
    return count if count >= 0 else int(dataset.reduce(0, lambda n, _: n + 1))


def make_tfds_source(name, split, max_examples, image_size, channels):
    import tensorflow_datasets as tfds  # only online users need it

    # Images stay encoded until decoded, so that reading labels or picking a subset decodes nothing.
    dataset, info = tfds.load(name, split=split, with_info=True, decoders={"image": tfds.decode.SkipDecoding()})
    names = tuple(info.features["label"].names)
    feature = info.features["image"]
    shape = tuple(feature.shape)
    height, width = tuple(image_size) if image_size else shape[:2]
    if height is None or width is None:
        raise DataError(f"tfds:{name}", f"images vary in size {shape}", hint="set data.image_size, e.g. [224, 224]")
    channels = channels or shape[-1]
    rows = dataset.map(lambda x: {"image": x["image"], "label": tf.cast(x["label"], tf.int64)})
    if max_examples:
        rows = rows.take(max_examples)
    convert = image_converter(shape, channels, (height, width)) or (lambda image: image)

    def decode(x):
        return {"image": convert(feature.decode_example(x["image"])), "label": x["label"]}

    return rows_source(rows, decode, None, count_examples(rows), label_names=names,
                       image_shape=(height, width, channels), origin=f"tfds:{name}")


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


def source_labels(source):
    """Every example's label of a source, in order, without decoding an image."""
    if source.labels is not None:
        return source.labels
    labels = source.rows.map(lambda x: x["label"]).batch(4096).as_numpy_iterator()
    return np.concatenate([np.zeros((0,), np.int64), *labels]).astype(np.int64)


def take_examples(source, indices):
    """The examples of a source at `indices`, as a source in the source's order."""
    indices = np.unique(np.asarray(indices, dtype=np.int64))
    if isinstance(source.rows, tf.data.Dataset):
        keep = np.zeros(source.num_examples, dtype=bool)
        keep[indices] = True
        keep = tf.constant(keep)
        rows = source.rows.enumerate().filter(lambda i, x: tf.gather(keep, i)).map(lambda i, x: x)
        rows = rows.apply(tf.data.experimental.assert_cardinality(len(indices)))
        labels = None if source.labels is None else source.labels[indices]
    else:
        rows = {key: value[indices] for key, value in source.rows.items()}
        labels = rows["label"]
    info = {"label_names": source.label_names, "image_shape": source.image_shape, "origin": source.origin}
    return rows_source(rows, source.decode, labels, len(indices), **info)


def stratified_order(labels, seed):
    """A seeded order of example indices in which every prefix holds each class in proportion.

    Each class is shuffled and its `n` examples given the keys `(k + u) / n` (rank `k`,
    seeded jitter `u` in [0, 1)); sorting by key interleaves the classes so that the
    first `m` examples hold `m * n / N` of each class, give or take one.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keys = np.empty(len(labels))
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        keys[members] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
    return np.argsort(keys, kind="stable")


def split_indices(labels, fractions, seed, max_examples=None):
    """Splits example indices into seeded subsets, stratified by class.

    Args:
        labels: the class of every example.
        fractions: `{split: fraction}` of the examples to hold out per split; each
            split gets `round(fraction * len(labels))` examples, every class in
            that proportion (give or take one example).
        seed: int, the same seed gives the same split.
        max_examples: optional cap on the remaining `"train"` examples, which then
            keep the classes in proportion too.

    Returns:
        `{split: sorted int64 indices}` for each split of `fractions` and `"train"`.
    """
    order = stratified_order(labels, seed)
    parts, start = {}, 0
    for name, fraction in fractions.items():
        count = int(round(len(order) * fraction))
        parts[name] = np.sort(order[start:start + count])
        start += count
    train = order[start:]
    parts["train"] = np.sort(train[:max_examples] if max_examples else train)
    return parts


def carve_splits(train, fractions, seed, max_examples=None):
    """Splits a dataset lacks, carved from its training source (see `split_indices`).

    Args:
        train: the `ImageSource` of the training split.
        fractions: `{split: fraction}` of the training examples to hold out.
        seed: int, the seed of the split (the run's `train.seed`).
        max_examples: optional cap on the training examples that remain.

    Returns:
        `{split: ImageSource}` for each split of `fractions` and `"train"`.
    """
    if not fractions and not max_examples:
        return {"train": train}
    parts = split_indices(source_labels(train), fractions, seed, max_examples)
    empty = [name for name, indices in parts.items() if len(indices) == 0]
    if empty:
        wanted = ", ".join(f"{name} ({fraction:.0%})" for name, fraction in fractions.items())
        if empty[0] == "train":
            fix = "lower " + " and ".join(f"data.{name}_fraction" for name in fractions)
        else:
            fix = f"raise data.{empty[0]}_fraction"
        raise DataError(train.origin, f"{train.num_examples} training examples cannot give train and {wanted} splits "
                        f"(the {empty[0]} split would be empty)", hint=f"add examples, or {fix}")
    return {name: take_examples(train, indices) for name, indices in parts.items()}


def make_image_source(dataset, split="train", data_dir=None, max_examples=None, image_size=None, channels=None):
    """Builds one split of an image classification dataset.

    Args:
        dataset: a named dataset (`mnist`, `fashion_mnist`, `cifar10`, `cifar10_subset`),
            a directory (IDX, CIFAR-10 batches or class folders) or `tfds:NAME`.
        split: `train`, `test` or `validation`, optionally sliced (`train[:90%]`).
        data_dir: folder holding the named datasets; defaults to `$KERAS_TASKS_DATA`,
            else `~/keras_tasks_data`.
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
        rows, decode = folder_rows(images, labels), folder_row_decoder(channels, (height, width))
    else:
        rows = {"image": np.asarray(images), "label": np.asarray(labels, dtype=np.int64)}
        convert = image_converter(images.shape[1:], channels, (height, width))
        decode = None if convert is None else (lambda x: {"image": convert(x["image"]), "label": x["label"]})
    return rows_source(rows, decode, rows["label"], len(labels), label_names=tuple(names),
                       image_shape=(int(height), int(width), int(channels)), origin=directory)
