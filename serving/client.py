"""A client for TF Serving's REST API (this server or TF Serving itself), used by `keras-tasks predict --server`.

Example:
```python
from keras_tasks.serving import client

predictions = client.predict("http://127.0.0.1:8501", "sst", ["a good film", "a bad one"])
print(predictions[0]["label"], predictions[0]["probabilities"])
```
"""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ServingError(RuntimeError):
    """The server refused a request or could not be reached.

    Args:
        status: the HTTP status, or None when no answer came.
        message: the server's `error` message, or why it could not be reached.
        url: the URL asked.
    """

    def __init__(self, status, message, url):
        self.status = status
        self.message = message
        self.url = url
        super().__init__(f"{url}: {status or 'no answer'}: {message}")


def _instance(value):
    if isinstance(value, (bytes, bytearray)):
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def _model_path(model_name, version):
    path = f"/v1/models/{urllib.parse.quote(model_name, safe='')}"
    return path if version is None else f"{path}/versions/{int(version)}"


def predict(server_url, model_name, texts_or_instances, signature_name=None, version=None, timeout=30.0):
    """Asks `model_name` for predictions; returns one per instance.

    Args:
        server_url: e.g. `http://127.0.0.1:8501`.
        model_name: the model's directory name under the server's model base path.
        texts_or_instances: strings (text inputs), bytes (sent as `{"b64": ...}`, e.g. image files) or, for
            models with several inputs, dicts of input name to value.
        signature_name: defaults to the server's `serving_default`.
        version: an integer version; the newest loaded version when None.
        timeout: seconds to wait for the answer.

    Raises:
        ServingError: with the server's status and message.
    """
    body = {"instances": [_instance(value) for value in texts_or_instances]}
    if signature_name:
        body["signature_name"] = signature_name
    return request(server_url, _model_path(model_name, version) + ":predict", body, timeout)["predictions"]


def predict_columns(server_url, model_name, inputs, signature_name=None, version=None, timeout=30.0):
    """Columnar outputs `{name: [value per input]}` of a one-input signature: `tasks.predict.predict` over HTTP.

    Args:
        server_url: e.g. `http://127.0.0.1:8501`.
        model_name: the model's directory name under the server's model base path.
        inputs: texts; for an input whose name ends in `_bytes` (images), paths of files to send (or bytes).
        signature_name: defaults to `serving_default`.
        version: an integer version; the newest loaded version when None.
        timeout: seconds to wait for each answer.

    Raises:
        ServingError: with the server's status and message.
        ValueError: the signature does not exist or takes more than one input.
    """
    signature_name = signature_name or "serving_default"
    answer = metadata(server_url, model_name, version, timeout)
    version = int(answer["model_spec"]["version"])  # ask the version described, even if a newer one appears
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    if signature_name not in signatures:
        raise ValueError(f"model '{model_name}' has no signature {signature_name!r}; it has {sorted(signatures)}")
    input_names = list(signatures[signature_name]["inputs"])
    output_names = list(signatures[signature_name]["outputs"])
    if len(input_names) != 1:
        raise ValueError(f"signature {signature_name!r} takes {input_names}; this needs a one-input signature")
    values = list(inputs)
    if input_names[0].endswith("_bytes"):
        values = [_read(value) if isinstance(value, str) else value for value in values]
    body = {"inputs": [_instance(value) for value in values], "signature_name": signature_name}
    outputs = request(server_url, _model_path(model_name, version) + ":predict", body, timeout)["outputs"]
    return outputs if len(output_names) > 1 else {output_names[0]: outputs}


def _read(path):
    with open(path, "rb") as file:
        return file.read()


def metadata(server_url, model_name, version=None, timeout=30.0):
    """Returns the model's signature definitions (TF Serving's `/metadata`)."""
    return request(server_url, _model_path(model_name, version) + "/metadata", timeout=timeout)


def status(server_url, model_name, version=None, timeout=30.0):
    """Returns the model's `model_version_status` list."""
    return request(server_url, _model_path(model_name, version), timeout=timeout)["model_version_status"]


def labels(server_url, model_name, version=None, timeout=30.0):
    """The class names this server reads from `assets.extra/labels.txt`, or None (e.g. from TF Serving)."""
    extra = metadata(server_url, model_name, version, timeout)["metadata"].get("assets_extra") or {}
    return extra.get("labels")


def request(server_url, path, body=None, timeout=30.0):
    """GETs (or POSTs `body` as JSON to) `server_url + path`; returns the decoded JSON answer."""
    url = server_url.rstrip("/") + path
    data = None if body is None else json.dumps(body).encode("utf-8")
    http_request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    handlers = []
    if urllib.parse.urlsplit(url).hostname in _LOOPBACK:
        handlers.append(urllib.request.ProxyHandler({}))  # a proxy cannot reach this machine's loopback
    try:
        with urllib.request.build_opener(*handlers).open(http_request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            message = json.loads(raw)["error"]
        except (ValueError, KeyError, TypeError):
            message = raw.decode("utf-8", "replace").strip() or error.reason
        raise ServingError(error.code, message, url) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServingError(None, f"cannot reach the server: {reason}", url) from None


def format_prediction(text, prediction, labels=None):
    """One human-readable line for a prediction: the label and the top probabilities."""
    if not isinstance(prediction, dict):
        return f"{text!r}: {json.dumps(prediction)}"
    parts = [f"{text!r}:"]
    if "label" in prediction:
        parts.append(str(prediction["label"]))
    probabilities = prediction.get("probabilities")
    if isinstance(probabilities, list) and probabilities and not isinstance(probabilities[0], list):
        ranked = sorted(range(len(probabilities)), key=lambda index: -probabilities[index])[:3]
        names = [labels[index] if labels and index < len(labels) else str(index) for index in ranked]
        parts.append("(" + ", ".join(f"{name} {probabilities[index]:.3f}" for name, index in zip(names, ranked)) + ")")
    return " ".join(parts)
