"""Image sizes read from headers: equal to what TensorFlow's decoders produce, and found in crafted files."""

import io
import struct

import numpy as np
import pytest
import serving_toy_models as toy
import tensorflow as tf
from PIL import Image

from keras_tasks.serving.image_header import ImageSize
from keras_tasks.serving.image_header import read_image_size


def _pil(image_format, width, height, frames=1, **options):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for _ in range(frames)]
    out = io.BytesIO()
    if frames > 1:
        options.update(save_all=True, append_images=images[1:])
    images[0].save(out, image_format, **options)
    return out.getvalue()


DECODABLE = {
    "PNG (TensorFlow)": lambda: tf.io.encode_png(tf.zeros((7, 5, 3), tf.uint8)).numpy(),
    "PNG (hand-made)": lambda: toy.png_bytes(9, size=6),
    "JPEG baseline": lambda: tf.io.encode_jpeg(tf.zeros((7, 5, 3), tf.uint8)).numpy(),
    "JPEG progressive": lambda: tf.io.encode_jpeg(tf.zeros((9, 13, 3), tf.uint8), progressive=True).numpy(),
    "JPEG with EXIF": lambda: _pil("JPEG", 31, 17, exif=b"Exif\x00\x00" + b"\x00" * 100),
    "GIF": lambda: _pil("GIF", 11, 6),
    "GIF animation": lambda: _pil("GIF", 12, 8, frames=4),
    "BMP": lambda: _pil("BMP", 9, 4),
    "WebP lossy": lambda: _pil("WEBP", 21, 14),
    "WebP lossless": lambda: _pil("WEBP", 21, 14, lossless=True),
}


@pytest.mark.parametrize("case", sorted(DECODABLE))
def test_header_size_equals_the_decoded_size(case):
    data = DECODABLE[case]()
    decoded = tf.io.decode_image(data, expand_animations=True).shape
    frames, height, width = (decoded[0], decoded[1], decoded[2]) if len(decoded) == 4 else (1, decoded[0], decoded[1])
    size = read_image_size(data)
    assert size is not None and size.format == case.split()[0]
    assert (size.width, size.height, size.frames) == (width, height, frames)


def test_webp_animation_counts_its_frames():
    # (TensorFlow's own decoder is not run on it: with channels=0 it corrupts memory on such files.)
    assert read_image_size(_pil("WEBP", 10, 6, frames=3)) == ImageSize("WebP", 10, 6, 3)


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + b"\x00\x00\x00\x00"


def _jpeg_declaring(width, height):
    """A real JPEG whose frame header is rewritten to `width` x `height`, with junk bytes before it."""
    data = bytearray(tf.io.encode_jpeg(tf.zeros((8, 8, 3), tf.uint8)).numpy())
    start = data.index(b"\xff\xc0")
    data[start + 5 : start + 9] = struct.pack(">HH", height, width)
    # libjpeg skips bytes that are no marker (with a warning) and fill bytes; so must the header reader.
    return bytes(data[:start]) + b"junk\xff\x00" + b"\xff" * 3 + bytes(data[start:])


def test_crafted_headers_declare_their_size_without_decoding():
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 30000, 8, 2, 0, 0, 0))
    assert read_image_size(png) == ImageSize("PNG", 100000, 30000, 1)
    assert read_image_size(png).pixels == 3_000_000_000

    jpeg = _jpeg_declaring(60000, 50000)
    assert read_image_size(jpeg) == ImageSize("JPEG", 60000, 50000, 1)
    # libjpeg reads the same header (extract_jpeg_shape parses it without decoding).
    assert tf.image.extract_jpeg_shape(jpeg).numpy().tolist() == [50000, 60000, 3]

    tiny_frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x4c\x01\x00"
    gif = b"GIF89a" + struct.pack("<HHBBB", 1000, 1000, 0, 0, 0) + tiny_frame * 50 + b"\x3b"
    assert read_image_size(gif) == ImageSize("GIF", 1000, 1000, 50)
    large_frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 40000, 3, 0) + b"\x02\x00"
    assert read_image_size(b"GIF87a" + struct.pack("<HHBBB", 1, 1, 0, 0, 0) + large_frame) == (
        ImageSize("GIF", 40000, 3, 1)
    )

    bmp = b"BM" + b"\x00" * 12 + struct.pack("<Iii", 40, 30000, -20000)
    assert read_image_size(bmp) == ImageSize("BMP", 30000, 20000, 1)

    webp = b"RIFF\x00\x00\x00\x00WEBPVP8X" + struct.pack("<I", 10) + b"\x00" * 4 + (16383).to_bytes(3, "little") * 2
    assert read_image_size(webp) == ImageSize("WebP", 16384, 16384, 1)


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF? no", b"hello", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00", b"BM\x00", b"RIFF\x00\x00\x00\x00AVI "],
)
def test_unknown_or_cut_short_data_has_no_size(data):
    assert read_image_size(data) is None
