"""Shared test helpers (in the spirit of keras-hub's TestCase): one way to test every layer and task."""

import os

import keras
import numpy as np


def data_dir():
    """The shared datasets folder; a missing setting is a failure, not a skip."""
    path = os.environ.get("KERAS_TASKS_DATA")
    assert path, "set KERAS_TASKS_DATA to the folder holding the datasets (e.g. ../shared/data)"
    assert os.path.isdir(path), f"KERAS_TASKS_DATA={path} is not a directory"
    return path


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    call_kwargs=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    run_mixed_precision=True,
    tmp_path=None,
):
    """Config round trip, eager and symbolic call, `.keras` save/load, one fit step, mixed precision."""
    call_kwargs = call_kwargs or {}

    # Config round trip.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    restored = layer_cls.from_config(config)
    assert restored.get_config() == config

    # Eager call.
    output = layer(input_data, **call_kwargs)
    first = output[0] if isinstance(output, (tuple, list)) else output
    assert tuple(first.shape) == tuple(expected_output_shape)
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights
    if expected_num_non_trainable_weights is not None:
        assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights

    # Symbolic call inside a functional model; .keras save/load gives the same outputs.
    dtype = "int32" if np.issubdtype(np.asarray(input_data).dtype, np.integer) else "float32"
    inputs = keras.Input(shape=np.asarray(input_data).shape[1:], dtype=dtype)
    symbolic = layer_cls(**init_kwargs)(inputs, **call_kwargs)
    symbolic = symbolic[0] if isinstance(symbolic, (tuple, list)) else symbolic
    assert tuple(symbolic.shape[1:]) == tuple(expected_output_shape[1:])
    flat = keras.layers.Flatten()(symbolic) if len(symbolic.shape) > 2 else symbolic
    model = keras.Model(inputs, keras.layers.Dense(1)(flat))
    before = model.predict(input_data, verbose=0)
    if tmp_path is not None:
        path = os.path.join(str(tmp_path), "layer_test.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
        np.testing.assert_allclose(reloaded.predict(input_data, verbose=0), before, rtol=1e-5, atol=1e-5)

    # One fit step moves the trainable weights and gives a finite loss.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    weights = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(input_data, np.ones((len(input_data), 1)), epochs=1, batch_size=len(input_data), verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(weights, model.trainable_weights))

    if run_mixed_precision:
        previous = keras.config.dtype_policy()
        try:
            keras.config.set_dtype_policy("mixed_float16")
            mixed = layer_cls(**init_kwargs)
            out = mixed(input_data, **call_kwargs)
            out = out[0] if isinstance(out, (tuple, list)) else out
            assert str(out.dtype) in ("float16", "<dtype: 'float16'>")
            assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))
        finally:
            keras.config.set_dtype_policy(previous)
    return layer


def write_lines(path, lines, encoding="utf-8"):
    with open(path, "w", encoding=encoding) as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


POSITIVE_WORDS = ["great", "fine", "lovely", "superb", "gripping", "funny", "moving", "brilliant"]
NEGATIVE_WORDS = ["dull", "awful", "boring", "tedious", "silly", "bad", "weak", "flat"]


def tiny_sentiment_lines(n=60, seed=0):
    """`label text` lines a model can learn in a few steps: the label is in the choice of words."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        label = i % 2
        words = POSITIVE_WORDS if label else NEGATIVE_WORDS
        chosen = rng.choice(words, size=rng.integers(2, 6))
        filler = rng.choice(["the", "film", "was", "a", "plot", "and"], size=rng.integers(1, 4))
        tokens = list(chosen) + list(filler)
        rng.shuffle(tokens)
        lines.append(f"{label} {' '.join(tokens)}")
    return lines
