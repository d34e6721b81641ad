"""Reader for users' own images: one folder per class, PNG or JPEG files.

Two layouts are accepted:

    DIR/CLASS/*.png                 a single pool ("train"; slice it for validation/test)
    DIR/{train,validation,test}/CLASS/*.png

Class names are the sorted folder names of the training split; labels are their
indices. Files are checked (header and end) when listed and decoded lazily.
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
                        hint="slice the training pool, e.g. train[:90%] and train[90%:], or " + LAYOUT_HINT)
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


def image_folder_dataset(paths, labels, channels, size):
    """A tf.data.Dataset of `{"image": uint8 (height, width, channels), "label": int64}` decoded lazily."""
    dataset = tf.data.Dataset.from_tensor_slices({"path": list(paths), "label": labels})
    return dataset.map(
        lambda x: {"image": decode_image(tf.io.read_file(x["path"]), channels, size), "label": x["label"]},
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
