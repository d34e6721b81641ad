"""The lines `keras-tasks predict` prints for a task's outputs (numpy only).

Each formatter takes the inputs as the user gave them, the outputs (`{name: numpy array}`, strings as
bytes; the same from a SavedModel in process or from a server) and the options left over from `--set`, and
returns one line per input. A task names its formatter in `tasks/catalog.py`, so `predict --server` formats
without importing the task (nor TensorFlow).
"""

import numpy as np


def as_text(value):
    """A string output (bytes from TensorFlow, str from JSON) as str."""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def generic(inputs, outputs, options=None):
    """`output=value` pairs, then the input; arrays of more than 8 values are shown by dtype and shape."""
    lines = []
    for i, item in enumerate(inputs):
        parts = []
        for key in sorted(outputs):
            value = outputs[key][i]
            if isinstance(value, bytes):
                value = as_text(value)
            elif isinstance(value, np.ndarray) and value.size > 8:
                value = f"<{value.dtype} {list(value.shape)}>"
            parts.append(f"{key}={value}")
        lines.append("\t".join(parts + [str(item)]))
    return lines


def label_and_probability(outputs, i):
    """`label<TAB>top probability` of row `i` of a classifier's `label` / `probabilities` outputs."""
    return f"{as_text(outputs['label'][i])}\t{np.asarray(outputs['probabilities'][i]).max():.4f}"


def classification(inputs, outputs, options=None):
    """`label<TAB>probability<TAB>input`, plus the top attended words where the model returns attention."""
    top_words = (options or {}).get("top_words", 5)
    lines = []
    for i, item in enumerate(inputs):
        line = f"{label_and_probability(outputs, i)}\t{item}"
        if "attention" in outputs and "tokens" in outputs and top_words:
            tokens = [as_text(t) for t in outputs["tokens"][i]]
            weights = np.asarray(outputs["attention"][i])
            order = np.argsort(-weights)[:top_words]
            words = ", ".join(f"{tokens[j]}:{weights[j]:.2f}" for j in order if tokens[j])
            line += f"\t[attention: {words}]"
        lines.append(line)
    return lines


def language_model(inputs, outputs, options=None):
    """Generated text (prompt and continuation), or `log-likelihood<TAB>perplexity<TAB>text` for `score`."""
    lines = []
    for i, item in enumerate(inputs):
        if "text" in outputs:
            lines.append(as_text(outputs["text"][i]))
        else:
            lines.append(f"{float(outputs['log_likelihood'][i]):.4f}\t{float(outputs['perplexity'][i]):.2f}\t{item}")
    return lines


def entities(inputs, outputs, options=None):
    """`input<TAB>TEXT/TYPE[start:end] ...`: a tagger's entities with their character offsets in the input."""
    lines = []
    for i, item in enumerate(inputs):
        found = [
            f"{as_text(text)}/{as_text(kind)}[{int(start)}:{int(end)}]"
            for text, kind, start, end in zip(
                outputs["entities"][i], outputs["entity_types"][i], outputs["entity_starts"][i], outputs["entity_ends"][i]
            )
            if int(start) >= 0
        ]
        lines.append(f"{item}\t{' '.join(found) if found else '(no entities)'}")
    return lines


def translation(inputs, outputs, options=None):
    """The translation of each input; with `attention_png=PATH` also its attention heat map as a PNG."""
    png = (options or {}).get("attention_png")
    lines = []
    for i, _ in enumerate(inputs):
        line = as_text(outputs["translation"][i])
        if png and "attention" in outputs:
            from keras_tasks.tasks.attention_plot import numbered_path, plot_attention

            path = plot_attention(numbered_path(str(png), i, len(inputs)), outputs["attention"][i],
                                  outputs["source_tokens"][i], outputs["target_tokens"][i])
            line += f"\t[attention heat map: {path}]"
        lines.append(line)
    return lines


def captioning(inputs, outputs, options=None):
    """The caption of each image; with `attention_png=PATH` also a PNG of the attention over the image per word."""
    png = (options or {}).get("attention_png")
    lines = []
    for i, item in enumerate(inputs):
        line = as_text(outputs["caption"][i])
        if png and "attention" in outputs:
            from keras_tasks.tasks.attention_plot import numbered_path
            from keras_tasks.tasks.image_attention_plot import plot_image_attention

            path = plot_image_attention(numbered_path(str(png), i, len(inputs)), item, outputs["attention"][i],
                                        outputs["words"][i])
            line += f"\t[attention maps: {path}]"
        lines.append(f"{line}\t{item}" if isinstance(item, str) else line)
    return lines
