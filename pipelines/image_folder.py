"""Reader for users' own images: one folder per class, PNG or JPEG files.

Two layouts are accepted:

    DIR/CLASS/*.png                 a single pool ("train"; validation/test are carved from it)
    DIR/{train,validation,test}/CLASS/*.png

Class names are the sorted folder names of the training split; labels are their
indices. Files are listed class by class, so a slice of a pool holds whole classes:
splits carved from a pool are stratified by class instead (`image_datasets.carve_splits`).
Files are checked (header and end) when listed and decoded lazily.
"""

import os

import numpy as np
import tensorflow as tf

from keras_tasks.pipelines.errors import DataError
from keras_tasks.pipelines.image_decoding import IMAGE_EXTENSIONS, check_image_file, decode_image

SPLIT_FOLDERS = ("train", "validation", "test")
LAYOUT_HINT = "expected DIR/CLASS/image.png or DIR/{train,validation,test}/CLASS/image.png"


def subfolders(directory):
    return sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))


def has_split_layout(directory):
    return os.path.isdir(os.path.join(directory, "train")) and bool(subfolders(os.path.join(directory, "train")))


def list_class_folders(directory, class_names=None):
    """Lists `(paths, labels, class_names)` of a class-per-folder directory.

    Args:
        directory: folder whose subfolders are the classes.
        class_names: the classes of the training split, when listing another split;
            a folder not among them is an error.
    """
    found = subfolders(directory)
    if not found:
        raise DataError(directory, "no class folders found", hint=LAYOUT_HINT)
    names = tuple(found) if class_names is None else tuple(class_names)
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise DataError(os.path.join(directory, unknown[0]), f"class folder not in the training split {list(names)}",
                        hint="use the same class folder names in every split")
    paths, labels = [], []
    for name in found:
        folder = os.path.join(directory, name)
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
        if not files:
            raise DataError(folder, f"class folder holds no {'/'.join(IMAGE_EXTENSIONS)} files",
                            hint="add images or remove the folder")
        for file in files:
            path = os.path.join(folder, file)
            check_image_file(path)
            paths.append(path)
            labels.append(names.index(name))
    return paths, np.asarray(labels, dtype=np.int64), names


def split_folder(directory, split):
    """The folder holding `split`'s class folders."""
    if has_split_layout(directory):
        folder = os.path.join(directory, split)
        if split not in SPLIT_FOLDERS or not os.path.isdir(folder):
            raise DataError(folder, f"split folder {split!r} not found", hint=LAYOUT_HINT)
        return folder
    if split != "train":
        raise DataError(directory, f"the folder has no {split!r} split (single pool of classes)",
                        hint="training carves validation and test from it, stratified by class, in "
                        "data.validation_fraction and data.test_fraction; or " + LAYOUT_HINT)
    return directory


def read_image_folder(directory, split):
    """Lists one split of an image folder: `(paths, labels, class_names)`."""
    if not os.path.isdir(directory):
        raise DataError(directory, "image folder not found", hint=LAYOUT_HINT)
    class_names = None
    if has_split_layout(directory):
        class_names = subfolders(os.path.join(directory, "train"))
    return list_class_folders(split_folder(directory, split), class_names)


def infer_image_spec(path):
    """`(height, width, channels)` of one image file, channels being 1 for grayscale and 3 otherwise."""
    try:
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    except tf.errors.InvalidArgumentError as error:
        raise DataError(path, f"cannot decode image ({error.message})", hint="re-save or remove the file") from None
    height, width, channels = image.shape
    return int(height), int(width), 1 if channels in (1, 2) else 3


def folder_rows(paths, labels):
    """The undecoded examples of a folder split, as arrays that index subsets cheaply."""
    return {"path": np.asarray(paths, dtype=str), "label": np.asarray(labels, dtype=np.int64)}


def folder_row_decoder(channels, size):
    """A function from one `{"path", "label"}` row to `{"image": uint8 (height, width, channels), "label"}`."""
    return lambda x: {"image": decode_image(tf.io.read_file(x["path"]), channels, size), "label": x["label"]}

