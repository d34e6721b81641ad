"""Run an exported SavedModel in-process on raw inputs (texts or image files)."""

import os

import numpy as np


def resolve_version_dir(path):
    """`saved_models/NAME` -> its highest integer version; a version folder is used as is."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such SavedModel folder (expected saved_models/NAME or saved_models/NAME/VERSION)")
    versions = sorted(int(d) for d in os.listdir(path) if d.isdigit() and os.path.exists(os.path.join(path, d, "saved_model.pb")))
    if not versions:
        raise FileNotFoundError(f"{path}: no version folders with a saved_model.pb (export one with `keras-tasks export`)")
    return os.path.join(path, str(versions[-1]))


def load(path):
    import tensorflow as tf

    return tf.saved_model.load(resolve_version_dir(path))


def predict(path, inputs, signature="serving_default"):
    """Call a signature on raw inputs; image files are read as bytes. Returns numpy outputs."""
    import tensorflow as tf

    loaded = load(path)
    if signature not in loaded.signatures:
        raise ValueError(f"{path} has no signature {signature!r}; it has {sorted(loaded.signatures)}")
    fn = loaded.signatures[signature]
    _, kwargs = fn.structured_input_signature
    if len(kwargs) != 1:
        raise ValueError(f"signature {signature!r} takes {sorted(kwargs)}; predict needs a one-input signature")
    (name, spec), = kwargs.items()
    if name.endswith("_bytes"):
        values = []
        for item in inputs:
            with open(item, "rb") as f:
                values.append(f.read())
    else:
        values = list(inputs)
    outputs = fn(**{name: tf.constant(values, dtype=spec.dtype)})
    return {key: value.numpy() for key, value in outputs.items()}


def format_results(inputs, outputs, top_words=5):
    """One line per input: label, its probability, and the top attended words when present."""
    lines = []
    for i, item in enumerate(inputs):
        label = outputs["label"][i]
        label = label.decode("utf-8") if isinstance(label, bytes) else str(label)
        probabilities = np.asarray(outputs["probabilities"][i])
        line = f"{label}\t{probabilities.max():.4f}\t{item}"
        if "attention" in outputs and "tokens" in outputs and top_words:
            tokens = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in outputs["tokens"][i]]
            weights = np.asarray(outputs["attention"][i])
            order = np.argsort(-weights)[:top_words]
            words = ", ".join(f"{tokens[j]}:{weights[j]:.2f}" for j in order if tokens[j])
            line += f"\t[attention: {words}]"
        lines.append(line)
    return lines
