"""Writers of tiny image dataset files in the published formats, for reader tests."""

import gzip
import os
import pickle
import struct

import numpy as np
import tensorflow as tf


def write_bytes(path, data, compress=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)
    return str(path)


def idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_mnist(directory, counts=None, compress=True, seed=0):
    """Writes MNIST-style IDX files with `counts` = {"train": n, "t10k": m} random 28x28 images."""
    rng = np.random.default_rng(seed)
    suffix = ".gz" if compress else ""
    arrays = {}
    for prefix, n in (counts or {"train": 12, "t10k": 5}).items():
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        write_bytes(os.path.join(directory, f"{prefix}-images-idx3-ubyte{suffix}"), idx_bytes(images), compress)
        write_bytes(os.path.join(directory, f"{prefix}-labels-idx1-ubyte{suffix}"), idx_bytes(labels), compress)
        arrays[prefix] = images, labels
    return arrays


def cifar_records(n, seed=0):
    """`(bytes, images (n, 32, 32, 3), labels)` of `n` CIFAR-10 binary records."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    planes = images.transpose(0, 3, 1, 2).reshape(n, -1)
    return np.concatenate([labels[:, None], planes], axis=1).tobytes(), images, labels


def cifar_pickle_bytes(n, seed=0):
    _, images, labels = cifar_records(n, seed)
    batch = {b"data": images.transpose(0, 3, 1, 2).reshape(n, -1), b"labels": [int(v) for v in labels]}
    return pickle.dumps(batch, protocol=2), images, labels


def encode(image, fmt):
    image = tf.constant(image, tf.uint8)
    return (tf.io.encode_png(image) if fmt == "png" else tf.io.encode_jpeg(image, quality=95)).numpy()


def write_image_folder(directory, classes=("cat", "dog"), per_class=3, size=(10, 12), channels=3, fmt="png", seed=0):
    rng = np.random.default_rng(seed)
    for name in classes:
        for i in range(per_class):
            image = rng.integers(0, 256, (*size, channels), dtype=np.uint8)
            write_bytes(os.path.join(directory, name, f"{i}.{fmt}"), encode(image, fmt))
    return str(directory)
