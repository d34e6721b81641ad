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


def run_task_test(task_name, overrides, signature_inputs, tmp_path, atol=1e-5):
    """The one end-to-end check every task gets (as keras-hub's `run_task_test`).

    A one-step fit on tiny data through `base.train`, then `base.export`, then for every
    signature in `signature_inputs`: the in-memory endpoint (the task's inference model)
    and the reloaded SavedModel give the same outputs on the same raw inputs, and so does
    the export served over HTTP by the real model server (`keras-tasks serve`).

    Args:
        task_name: registered task name.
        overrides: `{"section.key": value}` on top of the task's defaults (tiny model, tiny data).
        signature_inputs: `{signature: {input name: list of raw values}}` (bytes for `*_bytes`).
        tmp_path: pytest's tmp_path.
        atol: tolerance for float outputs.

    Returns:
        `(metrics, export_path, outputs)`, outputs `{signature: {name: numpy array}}` from the SavedModel.
    """
    import base64
    import time

    import tensorflow as tf

    from keras_tasks.serving import server
    from keras_tasks.tasks import base

    flags = {"train.epochs": 1, "train.steps_per_epoch": 1, "train.verbose": "0"}
    flags.update(overrides)
    run_dir = os.path.join(str(tmp_path), "run")
    metrics = base.train(task_name, base.resolve_config(task_name, flags), run_dir, log=lambda *_: None)
    assert metrics["training"]["epochs_run"] == 1
    assert all(np.isfinite(v) for v in metrics["test"].values()), metrics["test"]
    base_dir = os.path.join(str(tmp_path), "saved_models")
    path = base.export(run_dir, "tiny", base_dir=base_dir)
    assert path == os.path.join(base_dir, "tiny", "1")

    task, _ = base.load_run(run_dir)
    task.restore(os.path.join(run_dir, "assets"))
    inference = task.build_inference_model(base.load_trained_model(run_dir))
    endpoints = task.export_endpoints(inference)
    loaded = tf.saved_model.load(path)
    saved_outputs = {}
    for signature, inputs in signature_inputs.items():
        fn, specs = endpoints[signature]
        tensors = {spec.name: tf.constant(inputs[spec.name], dtype=spec.dtype) for spec in specs}
        expected = {k: v.numpy() for k, v in fn(**tensors).items()}
        got = {k: v.numpy() for k, v in loaded.signatures[signature](**tensors).items()}
        _assert_outputs_equal(expected, got, atol, f"{signature}: in-memory vs SavedModel")
        saved_outputs[signature] = got

    config = server.ServerConfig(model_base_path=base_dir, port=0, poll_seconds=0.2)
    with server.ServerThread(config) as running:
        deadline = time.monotonic() + 60
        while True:
            status, answer = call(running.url, "GET", "/v1/models/tiny")
            states = [v["state"] for v in answer.get("model_version_status", [])] if status == 200 else []
            if "AVAILABLE" in states:
                break
            assert time.monotonic() < deadline, f"the server did not load the export: {status} {answer}"
            time.sleep(0.2)
        for signature, inputs in signature_inputs.items():
            columns = {
                name: [{"b64": base64.b64encode(v).decode("ascii")} for v in values]
                if name.endswith("_bytes")
                else (values.tolist() if isinstance(values, np.ndarray) else list(values))
                for name, values in inputs.items()
            }
            status, answer = call(
                running.url, "POST", "/v1/models/tiny:predict", {"signature_name": signature, "inputs": columns}
            )
            assert status == 200, answer
            served = answer["outputs"]
            if not isinstance(served, dict):
                (only,) = saved_outputs[signature]
                served = {only: served}
            served = {k: _decode_served(v) for k, v in served.items()}
            _assert_outputs_equal(saved_outputs[signature], served, max(atol, 1e-4), f"{signature}: served vs SavedModel")
    return metrics, path, saved_outputs


def call(url, method, path, body=None):
    """(status, decoded JSON) of one request to a local server."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _decode_served(value):
    array = np.asarray(value, dtype=object)
    if array.size and isinstance(array.flat[0], str):
        return np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array)
    if array.size and isinstance(array.flat[0], dict):
        import base64

        return np.vectorize(lambda d: base64.b64decode(d["b64"]), otypes=[object])(array)
    return np.asarray(value)


def _assert_outputs_equal(expected, got, atol, what):
    assert sorted(expected) == sorted(got), f"{what}: outputs {sorted(expected)} vs {sorted(got)}"
    for key in expected:
        a, b = np.asarray(expected[key]), np.asarray(got[key])
        assert a.shape == b.shape, f"{what}: {key} shape {a.shape} vs {b.shape}"
        if a.dtype.kind in "OSU":
            assert a.tolist() == b.tolist(), f"{what}: {key} differs"
        else:
            np.testing.assert_allclose(a.astype("float64"), b.astype("float64"), atol=atol, rtol=1e-4, err_msg=f"{what}: {key}")
