"""Decoding encoded images (PNG, JPEG) to fixed-size uint8 tensors, in TensorFlow graphs.

The same functions run in the folder reader and inside exported serving graphs,
so an image sent to a SavedModel is decoded and resized exactly as in training.
"""

import tensorflow as tf

from keras_tasks.pipelines.errors import DataError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
JPEG_START = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def check_image_file(path):
    """Raises DataError unless `path` starts and ends like a whole PNG or JPEG file.

    Reads only the first and last bytes, so whole folders are checked cheaply and a
    truncated file is reported by name before training starts, not as an opaque
    decode error in the middle of an epoch.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 1024))
        tail = f.read()
    if head.startswith(PNG_SIGNATURE):
        if not tail.endswith(PNG_END):
            raise DataError(path, "PNG file is truncated (no IEND chunk at the end)",
                            hint="re-save or remove the file")
    elif head.startswith(JPEG_START):
        # Some writers append padding after the end-of-image marker, so look near the end.
        if JPEG_END not in tail:
            raise DataError(path, "JPEG file is truncated (no end-of-image marker)", hint="re-save or remove the file")
    else:
        raise DataError(path, f"not a PNG or JPEG file (starts with {head[:4].hex() or 'nothing'})",
                        hint="convert it to PNG or JPEG, or move it out of the image folder")


def resize_image(image, size):
    """Resizes a uint8 `(h, w, c)` image to `size` `(height, width)` (antialiased), leaving it as is when equal."""
    height, width = size
    shape = tf.shape(image)

    def resized():
        scaled = tf.image.resize(image, (height, width), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(scaled), 0, 255), tf.uint8)

    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    image = tf.cond(same, lambda: image, resized)
    return tf.ensure_shape(image, (height, width, image.shape[-1]))


def decode_image(encoded, channels, size=None):
    """Decodes one PNG or JPEG string to uint8 `(height, width, channels)`.

    Args:
        encoded: scalar string tensor, the file's bytes.
        channels: 1 (grayscale; colour images are converted) or 3 (RGB; grayscale is
            repeated, alpha dropped).
        size: optional `(height, width)` to resize to.
    """
    image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    image = tf.ensure_shape(image, (None, None, channels))
    return image if size is None else resize_image(image, size)


def decode_image_batch(encoded, channels, size):
    """Decodes a `(batch,)` string tensor of images of any sizes to uint8 `(batch, height, width, channels)`."""
    spec = tf.TensorSpec((size[0], size[1], channels), tf.uint8)
    return tf.map_fn(lambda e: decode_image(e, channels, size), encoded, fn_output_signature=spec)
