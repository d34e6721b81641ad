"""Whole-file reads of binary dataset files, gzipped or not, with errors that name the file."""

import gzip
import os
import zlib

from keras_tasks.pipelines.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"


def read_maybe_gzipped(path):
    """Returns the bytes of `path`, decompressed when the file is gzip (by content, not name)."""
    if not os.path.isfile(path):
        raise DataError(path, "file not found", hint="check the dataset directory (--data-dir or KERAS_TASKS_DATA)")
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(GZIP_MAGIC):
        if str(path).endswith(".gz"):
            raise DataError(path, "named .gz but is not gzip data (magic number is not 1f8b)",
                            hint="download the file again, or remove the .gz suffix if it is uncompressed")
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(path, f"corrupt or truncated gzip data ({error})", hint="download the file again") from None
