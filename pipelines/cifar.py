"""Readers for CIFAR-10 (Krizhevsky, 2009) in its two published formats.

- Binary version (`cifar-10-batches-bin/`): records of 1 label byte + 3,072 pixel
  bytes (1,024 red, 1,024 green, 1,024 blue, row-major); `.bin` files, also
  accepted gzipped (`.bin.gz`).
- Python version (`cifar-10-batches-py/`): pickled dicts with `data` (n, 3072)
  uint8 and `labels`. Only numpy arrays and plain containers are unpickled, so a
  tampered file cannot run code.
"""

import glob
import io
import os
import pickle

import numpy as np

from keras_tasks.pipelines.errors import DataError
from keras_tasks.pipelines.file_bytes import read_maybe_gzipped

CIFAR10_LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_BYTES = 32 * 32 * 3
RECORD_BYTES = 1 + IMAGE_BYTES
# File name patterns per split; the batch folders of both official archives are searched too.
SPLIT_PATTERNS = {"train": "data_batch_*", "test": "test_batch*"}
ARCHIVE_FOLDERS = ("", "cifar-10-batches-bin", "cifar-10-batches-py")
EXTRACT_HINT = ("extract cifar-10-binary.tar.gz or cifar-10-python.tar.gz from "
                "https://www.cs.toronto.edu/~kriz/cifar.html into the dataset directory, "
                "or use --dataset tfds:cifar10")


def planes_to_images(pixels):
    """(n, 3072) channel-planar rows -> (n, 32, 32, 3) uint8 images."""
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def check_labels(labels, path, num_classes=10):
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = int(np.flatnonzero((labels < 0) | (labels >= num_classes))[0])
        raise DataError(path, f"record {bad + 1} has label {int(labels[bad])}, expected 0..{num_classes - 1}",
                        hint="CIFAR-100 files (2 label bytes per record) are not CIFAR-10; "
                        "otherwise the file is corrupt: download it again")


def parse_cifar_binary(data, path="<bytes>"):
    """Parses CIFAR-10 binary records into `(images (n, 32, 32, 3) uint8, labels (n,) int64)`."""
    if len(data) == 0 or len(data) % RECORD_BYTES:
        raise DataError(
            path,
            f"{len(data)} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 records "
            f"(1 label byte + {IMAGE_BYTES} pixel bytes); {len(data) % RECORD_BYTES} bytes left over",
            hint="the file is truncated or not CIFAR-10 binary: download it again",
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    check_labels(labels, path)
    return planes_to_images(records[:, 1:]), labels


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and builtin containers only (the CIFAR python batches need nothing else)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def unpickle(path):
    data = read_maybe_gzipped(path)
    try:
        return ArraysOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:  # pickle raises many types on bad input
        raise DataError(path, f"not a readable CIFAR python batch ({type(error).__name__}: {error})",
                        hint="the file is corrupt or truncated: download it again") from None


def read_cifar_pickle(path):
    """Reads one CIFAR-10 python batch into `(images (n, 32, 32, 3) uint8, labels (n,) int64)`."""
    batch = unpickle(path)
    if not isinstance(batch, dict):
        raise DataError(path, f"expected a pickled dict with 'data' and 'labels', found {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataError(path, f"expected keys 'data' and 'labels', found {sorted(batch)}",
                        hint="CIFAR-100 batches use 'fine_labels' and are not CIFAR-10")
    pixels = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != IMAGE_BYTES:
        raise DataError(path, f"'data' must be uint8 of shape (n, {IMAGE_BYTES}), found {pixels.dtype} {pixels.shape}")
    if len(pixels) != len(labels):
        raise DataError(path, f"{len(labels)} labels for {len(pixels)} images", hint="the file is corrupt")
    check_labels(labels, path)
    return planes_to_images(pixels), labels


def is_binary_batch(path):
    name = os.path.basename(path)
    return name.removesuffix(".gz").endswith(".bin")


def find_cifar_files(directory, split):
    """The batch files of `split` ("train" or "test") under `directory`, sorted."""
    if split not in SPLIT_PATTERNS:
        raise DataError(directory, f"CIFAR-10 has no split {split!r}, only 'train' and 'test'",
                        hint="carve a validation split out of training, e.g. train[:90%] and train[90%:]")
    for folder in ARCHIVE_FOLDERS:
        paths = sorted(p for p in glob.glob(os.path.join(directory, folder, SPLIT_PATTERNS[split]))
                       if os.path.isfile(p) and not p.endswith((".html", ".txt")))
        if paths:
            return paths
    raise DataError(directory, f"no CIFAR-10 {split} batches ({SPLIT_PATTERNS[split]}[.bin][.gz]) found",
                    hint=EXTRACT_HINT)


def read_label_names(directory):
    """Class names from `batches.meta.txt` (binary) or `batches.meta` (python); the CIFAR-10 names otherwise."""
    for folder in ARCHIVE_FOLDERS:
        text_path = os.path.join(directory, folder, "batches.meta.txt")
        if os.path.isfile(text_path):
            with open(text_path, encoding="utf-8") as f:
                names = tuple(line.strip() for line in f if line.strip())
            if len(names) != 10:
                raise DataError(text_path, f"expected 10 class names, one a line, found {len(names)}")
            return names
        pickle_path = os.path.join(directory, folder, "batches.meta")
        if os.path.isfile(pickle_path):
            meta = unpickle(pickle_path)
            names = meta.get(b"label_names") if isinstance(meta, dict) else None
            if not names or len(names) != 10:
                raise DataError(pickle_path, "expected 'label_names' with 10 class names")
            return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return CIFAR10_LABEL_NAMES


def read_cifar10(directory, split):
    """Reads a whole CIFAR-10 split (all its batches, binary or python).

    Returns:
        `(images (n, 32, 32, 3) uint8, labels (n,) int64, label_names)`.
    """
    parts = []
    for path in find_cifar_files(directory, split):
        parts.append(parse_cifar_binary(read_maybe_gzipped(path), path) if is_binary_batch(path)
                     else read_cifar_pickle(path))
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return images, labels, read_label_names(directory)
