"""Reader for the IDX format of MNIST-style datasets (LeCun et al.), gzipped or not.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values row-major.
"""

import numpy as np

from keras_tasks.pipelines.errors import DataError
from keras_tasks.pipelines.file_bytes import read_maybe_gzipped

# IDX type code -> big-endian numpy dtype.
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data, path="<bytes>", ndim=None):
    """Parses the bytes of one IDX file into a numpy array.

    Args:
        data: the (uncompressed) file contents.
        path: the file name, for error messages.
        ndim: optional expected number of dimensions (3 for images, 1 for labels).

    Returns:
        A numpy array in native byte order.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise DataError(
            path,
            f"not an IDX file: magic number {data[:4].hex() or 'missing'}, expected 0x0000 then a type code "
            "(0x08 for uint8) and the number of dimensions, e.g. 00000803 for images or 00000801 for labels",
            hint="point the dataset at the MNIST-style files train-images-idx3-ubyte[.gz] and "
            "train-labels-idx1-ubyte[.gz] (gzipped or not)",
        )
    dtype, rank = IDX_DTYPES[data[2]], data[3]
    if ndim is not None and rank != ndim:
        kind = "labels" if ndim == 1 else "images"
        raise DataError(
            path,
            f"IDX file has {rank} dimensions (magic {data[:4].hex()}), expected {ndim} for {kind}",
            hint="the images and labels files may be swapped",
        )
    header_size = 4 + 4 * rank
    if len(data) < header_size:
        raise DataError(path, f"IDX header truncated: {len(data)} bytes, expected at least {header_size}",
                        hint="download the file again")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=rank, offset=4))
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            path,
            f"IDX file is {len(data)} bytes but its header (shape {shape}, {dtype.name}) implies {expected}"
            + (" (truncated)" if len(data) < expected else " (trailing bytes)"),
            hint="the download was probably cut short; download the file again",
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path, ndim=None):
    """Reads an IDX file (`.gz` or raw, detected from the content) into a numpy array."""
    return parse_idx(read_maybe_gzipped(path), path=path, ndim=ndim)


def read_idx_pair(images_path, labels_path):
    """Reads matching IDX image and label files.

    Returns:
        `(images, labels)`: uint8 `(n, height, width, 1)` (or `(n, h, w, c)` for
        4-dimensional files) and int64 `(n,)`.
    """
    images = read_idx(images_path)
    if images.ndim not in (3, 4):
        raise DataError(images_path, f"IDX images must have 3 or 4 dimensions (n, height, width[, channels]), "
                        f"found shape {images.shape}", hint="the images and labels files may be swapped")
    if images.dtype != np.uint8:
        raise DataError(images_path, f"IDX images must be uint8 (type code 0x08), found {images.dtype}")
    labels = read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise DataError(
            labels_path,
            f"{len(labels)} labels but {images_path} holds {len(images)} images",
            hint="the images and labels files must come from the same split (train-* with train-*, t10k-* with t10k-*)",
        )
    if images.ndim == 3:
        images = images[..., None]
    return images, labels.astype(np.int64)
