"""Attention heat maps as PNG files (matplotlib, no display needed)."""

import os

import numpy as np


def numbered_path(path, index, count):
    """`path` itself for a single input, else `stem-INDEX.png` for input `index`."""
    if count == 1:
        return path
    stem, extension = os.path.splitext(path)
    return f"{stem}-{index + 1}{extension or '.png'}"


def plot_attention(path, attention, source_tokens, target_tokens):
    """Writes the `(target, source)` attention matrix as a heat map, padding (empty tokens) cut off."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    def labels(tokens):
        return [t.decode("utf-8", errors="replace") if isinstance(t, bytes) else str(t) for t in tokens]

    sources = [t for t in labels(source_tokens) if t]
    targets = [t for t in labels(target_tokens) if t]
    matrix = np.asarray(attention, dtype="float32")[: len(targets), : len(sources)]
    figure, axes = pyplot.subplots(figsize=(1 + 0.45 * max(len(sources), 4), 1 + 0.4 * max(len(targets), 4)))
    image = axes.imshow(matrix, cmap="viridis", vmin=0.0, vmax=max(float(matrix.max(initial=0.0)), 1e-9))
    axes.set_xticks(range(len(sources)), sources, rotation=60, ha="right")
    axes.set_yticks(range(len(targets)), targets)
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    figure.colorbar(image, ax=axes, fraction=0.04)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
