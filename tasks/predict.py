"""Run an exported SavedModel (in-process or through a server) on raw inputs, and print what the task says.

A signature has one main input (texts, or image files for a `*_bytes` input) and may take more: the language
model's `generate` takes `max_length`, `temperature`, `top_k` and `seed` per prompt. Those come from
`keras-tasks predict --set name=value` and are repeated for every input; the task of the export (named in
`assets.extra/config.json`) formats the outputs.
"""

import json
import os

import numpy as np

from keras_tasks.pipelines.errors import ConfigError, DataError, RunDirError


def resolve_version_dir(path):
    """`saved_models/NAME` -> its highest integer version; a version folder is used as is."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.isdir(path):
        raise RunDirError(f"{path}: no such SavedModel folder (expected saved_models/NAME or saved_models/NAME/VERSION)")
    versions = sorted(int(d) for d in os.listdir(path) if d.isdigit() and os.path.exists(os.path.join(path, d, "saved_model.pb")))
    if not versions:
        raise RunDirError(f"{path}: no version folders with a saved_model.pb (export one with `keras-tasks export`)")
    return os.path.join(path, str(versions[-1]))


def load(path):
    import tensorflow as tf

    _import_text_ops()
    return tf.saved_model.load(resolve_version_dir(path))


def _import_text_ops():
    """SavedModels with tokenizer graph ops (SentencePiece) need tensorflow-text's kernels registered."""
    try:
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass


def export_task_name(path):
    """The task that exported a SavedModel (from `assets.extra/config.json`), or None."""
    return (export_extra(path, "config.json") or {}).get("task")


def export_extra(path, filename):
    """A JSON file of an export's `assets.extra/`, or None."""
    extra_path = os.path.join(resolve_version_dir(path), "assets.extra", filename)
    if not os.path.exists(extra_path):
        return None
    with open(extra_path, encoding="utf-8") as f:
        return json.load(f)


def build_inputs(specs, inputs, options, where="--set", defaults=None):
    """Signature inputs from the main inputs and `options`.

    Args:
        specs: `{input name: (dtype name, shape list)}` of the signature (shape `[-1]` or `[None]` is per input).
        inputs: the main inputs (texts, or image file paths for a `*_bytes` input).
        options: `{name: value}`; the ones naming signature inputs are used and removed.
        where: how the user sets options (named in errors).
        defaults: `{name: value}` for inputs the user did not set (the export's `signature_defaults.json`).

    Returns:
        `{name: list or scalar}` ready to be converted to tensors or sent as JSON columns.
    """
    string_inputs = [name for name, (dtype, _) in specs.items() if dtype == "string"]
    main = [name for name in string_inputs if name not in options]
    if len(main) != 1:
        raise ConfigError(
            f"the signature takes {sorted(specs)}; give exactly one of the text inputs {string_inputs} "
            f"as the command's inputs and the others with {where} NAME=VALUE"
        )
    main = main[0]
    if main.endswith("_bytes"):
        values = []
        for item in inputs:
            if isinstance(item, bytes):
                values.append(item)
                continue
            try:
                with open(item, "rb") as f:
                    values.append(f.read())
            except OSError as e:
                raise DataError(item, f"cannot read the file ({e.strerror})",
                                hint=f"the signature's {main} input takes file paths") from None
    else:
        values = list(inputs)
    columns = {main: values}
    options = {**{k: v for k, v in (defaults or {}).items() if k in specs and k not in options}, **options}
    missing = []
    for name, (dtype, shape) in specs.items():
        if name == main:
            continue
        if name not in options:
            missing.append(name)
            continue
        value = options.pop(name)
        columns[name] = [value] * len(values) if shape and len(shape) >= 1 else value
    if missing:
        raise ConfigError(f"the signature also needs {missing}: add {where} " + " ".join(f"{m}=VALUE" for m in missing))
    return columns


def _local_specs(fn):
    _, kwargs = fn.structured_input_signature
    return {name: (spec.dtype.name, spec.shape.as_list()) for name, spec in kwargs.items()}


def predict(path, inputs, signature="serving_default", options=None):
    """Call a signature of a SavedModel on raw inputs. Returns `{output: numpy array}`.

    Options that are not signature inputs are left in `options` (for the task's formatting).
    """
    import tensorflow as tf

    options = options if options is not None else {}
    loaded = load(path)
    if signature not in loaded.signatures:
        raise ConfigError(f"{path} has no signature {signature!r}; it has {sorted(loaded.signatures)}")
    fn = loaded.signatures[signature]
    specs = _local_specs(fn)
    defaults = (export_extra(path, "signature_defaults.json") or {}).get(signature)
    columns = build_inputs(specs, inputs, options, defaults=defaults)
    _, kwargs = fn.structured_input_signature
    tensors = {name: tf.constant(value, dtype=kwargs[name].dtype) for name, value in columns.items()}
    outputs = fn(**tensors)
    return {key: value.numpy() for key, value in outputs.items()}


_REST_DTYPES = {"DT_STRING": "string", "DT_INT32": "int32", "DT_INT64": "int64", "DT_FLOAT": "float32", "DT_UINT8": "uint8"}


def predict_server(server_url, model_name, inputs, signature="serving_default", options=None):
    """`predict` through a TF-Serving REST server. Returns `({output: numpy array}, task name or None)`."""
    import base64

    from keras_tasks.serving import client

    options = options if options is not None else {}
    answer = client.metadata(server_url, model_name)
    version = int(answer["model_spec"]["version"])
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    if signature not in signatures:
        raise ConfigError(f"model {model_name!r} has no signature {signature!r}; it has {sorted(signatures)}")
    specs = {}
    for name, info in signatures[signature]["inputs"].items():
        dims = [int(d.get("size", -1)) for d in info.get("tensor_shape", {}).get("dim", [])]
        specs[name] = (_REST_DTYPES.get(info.get("dtype"), "string"), dims)
    extra = answer["metadata"].get("assets_extra") or {}
    defaults = (extra.get("signature_defaults") or {}).get(signature)
    columns = build_inputs(specs, inputs, options, defaults=defaults)
    for name, values in columns.items():
        if isinstance(values, list) and values and isinstance(values[0], bytes):
            columns[name] = [{"b64": base64.b64encode(v).decode("ascii")} for v in values]
    body = {"inputs": columns, "signature_name": signature}
    outputs = client.request(server_url, f"/v1/models/{model_name}/versions/{version}:predict", body)["outputs"]
    output_names = list(signatures[signature]["outputs"])
    if not isinstance(outputs, dict) or len(output_names) == 1 and output_names[0] not in outputs:
        outputs = {output_names[0]: outputs}
    config = extra.get("config") or {}
    return {key: _from_json(value) for key, value in outputs.items()}, config.get("task")


def _from_json(value):
    """REST outputs to numpy; strings as bytes, like in-process outputs."""
    if isinstance(value, list) and value and isinstance(value[0], dict) and "b64" in value[0]:
        import base64

        return np.array([base64.b64decode(v["b64"]) for v in value], dtype=object)
    array = np.array(value, dtype=object if _has_strings(value) else None)
    if array.dtype == object:
        return np.vectorize(lambda v: v.encode("utf-8") if isinstance(v, str) else v, otypes=[object])(array)
    return array


def _has_strings(value):
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, str)


def format_results(task_name, inputs, outputs, options=None):
    """The lines `keras-tasks predict` prints, as the exporting task's card formats them (generic if unknown)."""
    from keras_tasks.tasks import catalog

    return catalog.card(task_name).format_predictions(inputs, outputs, options or {})
