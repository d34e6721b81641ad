"""Tiny SavedModels with the export contract of keras-tasks, written by the tests themselves.

- text: `serving_default(text: string[None])` -> label, probabilities[None, 2], attention[None, T], tokens[None, T].
  "good" pushes towards the second label, "bad" towards the first.
- image: `serving_default(image_bytes: string[None])` (PNG/JPEG) and `serving_pixels(pixels: float32[None, 4, 4, 3])`
  -> label, probabilities; bright images are the second label.
- echo: `serving_default(data_bytes: string[None])` -> data_bytes (reversed), a single output named `_bytes`.
"""

import io
import json
import os
import zlib
import struct

import tensorflow as tf

TEXT_LABELS = ("negative", "positive")
IMAGE_LABELS = ("dark", "bright")


class _TextModel(tf.Module):
    def __init__(self, labels, scale):
        super().__init__()
        self.labels = tf.constant(list(labels))
        self.scale = tf.Variable(float(scale))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        tokens = tf.strings.split(tf.strings.lower(text)).to_tensor("")  # (batch, time)
        good = tf.cast(tokens == "good", tf.float32)
        bad = tf.cast(tokens == "bad", tf.float32)
        logits = tf.stack([tf.reduce_sum(bad, 1), tf.reduce_sum(good, 1)], axis=1) * self.scale
        probabilities = tf.nn.softmax(logits)
        scores = tf.cast(tokens != "", tf.float32) * (1.0 + good + bad)
        attention = scores / tf.maximum(tf.reduce_sum(scores, axis=1, keepdims=True), 1e-9)
        label = tf.gather(self.labels, tf.argmax(probabilities, axis=1))
        return {"label": label, "probabilities": probabilities, "attention": attention, "tokens": tokens}


class _ImageModel(tf.Module):
    def __init__(self):
        super().__init__()
        self.labels = tf.constant(list(IMAGE_LABELS))
        self.threshold = tf.Variable(0.5)

    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 3], tf.float32, name="pixels")])
    def pixels(self, pixels):
        brightness = tf.reduce_mean(pixels, axis=[1, 2, 3])
        logits = tf.stack([self.threshold - brightness, brightness - self.threshold], axis=1) * 10.0
        probabilities = tf.nn.softmax(logits)
        return {"label": tf.gather(self.labels, tf.argmax(probabilities, axis=1)), "probabilities": probabilities}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(self, image_bytes):
        def decode(data):
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            return tf.image.resize(tf.cast(image, tf.float32) / 255.0, (4, 4))

        return self.pixels(tf.map_fn(decode, image_bytes, fn_output_signature=tf.float32))


class _EchoModel(tf.Module):
    def __init__(self):
        super().__init__()
        self.calls = tf.Variable(0, dtype=tf.int64)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="data_bytes")])
    def serve(self, data_bytes):
        return {"data_bytes": tf.strings.reduce_join(tf.reverse(tf.strings.bytes_split(data_bytes), [1]), axis=1)}


def _write_extra(path, labels, config):
    extra = os.path.join(path, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    if labels:
        with open(os.path.join(extra, "labels.txt"), "w", encoding="utf-8") as file:
            file.write("".join(label + "\n" for label in labels))
    with open(os.path.join(extra, "config.json"), "w", encoding="utf-8") as file:
        json.dump(config, file)
    with open(os.path.join(extra, "metrics.json"), "w", encoding="utf-8") as file:
        json.dump({"test": {"accuracy": 0.9}}, file)


def write_text_model(path, labels=TEXT_LABELS, scale=2.0):
    module = _TextModel(labels, scale)
    tf.saved_model.save(module, os.fspath(path), signatures={"serving_default": module.serve})
    _write_extra(path, labels, {"task": "text_classification"})
    return path


def write_image_model(path):
    module = _ImageModel()
    signatures = {"serving_default": module.serve, "serving_pixels": module.pixels}
    tf.saved_model.save(module, os.fspath(path), signatures=signatures)
    _write_extra(path, IMAGE_LABELS, {"task": "image_classification"})
    return path


def write_echo_model(path):
    module = _EchoModel()
    tf.saved_model.save(module, os.fspath(path), signatures={"serving_default": module.serve})
    _write_extra(path, None, {"task": "toy_echo"})
    return path


def png_bytes(value, size=4):
    """A grey size x size PNG with every channel at `value` (0-255), without any imaging library."""
    row = b"\x00" + bytes([value]) * (3 * size)
    raw = zlib.compress(row * size)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return out.getvalue()
