"""Where a captioner looked for each word: the image with its attention map on top, one panel per word (PNG)."""

import io
import math
import os

import numpy as np


def plot_image_attention(path, image, attention, words, columns=5):
    """Writes one panel per word: the image, dimmed where the word's attention `(grid_h, grid_w)` is low.

    Args:
        path: the PNG to write.
        image: the image file (path or its bytes), any format matplotlib's PIL reader opens.
        attention: float array `(words, grid_h, grid_w)`; rows of empty words are ignored.
        words: the words (str or bytes), `""` after the caption's end.
        columns: panels per row.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from PIL import Image

    words = [w.decode("utf-8", errors="replace") if isinstance(w, bytes) else str(w) for w in words]
    words = [w for w in words if w]
    with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as opened:
        pixels = np.asarray(opened.convert("RGB"))
    height, width = pixels.shape[:2]
    attention = np.asarray(attention, dtype="float32")[: len(words)]
    rows = max(1, math.ceil(len(words) / columns))
    figure, axes = pyplot.subplots(rows, columns, figsize=(3 * columns, 3 * rows * height / max(width, 1) + 0.3))
    axes = np.atleast_1d(axes).ravel()
    for axis in axes:
        axis.axis("off")
    for axis, word, weights in zip(axes, words, attention):
        axis.imshow(pixels)
        # The region grid stretched over the whole image, smoothed: bright where the word looked.
        axis.imshow(weights / max(float(weights.max()), 1e-9), cmap="gray", alpha=0.6, vmin=0.0, vmax=1.0,
                    extent=(0, width, height, 0), interpolation="bilinear")
        axis.set_title(word, fontsize=12)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=80)
    pyplot.close(figure)
    return path
