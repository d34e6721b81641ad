"""The REST API over HTTP: TF Serving's status, metadata and predict formats, and every refusal."""

import base64
import json
import logging
import os

import pytest
import serving_toy_models as toy
from serving_helpers import call
from serving_helpers import predict

from keras_tasks.serving import models
from keras_tasks.serving import server

# What `keras-tasks export` writes to assets.extra/config.json: the training machine's paths among the settings.
TRAINING_CONFIG = {
    "task": "text_classification",
    "data": {"dataset": "/home/alice/corpora/reviews.tsv", "data_dir": "/home/alice/shared/data/", "folds": None},
    "model": {"embeddings_path": "C:\\Users\\alice\\vectors\\GoogleNews.bin", "filter_sizes": [3, 4, 5]},
    "train": {"run_dir": "../runs/mr-textcnn", "optimizer": "adam"},
}


# What an export's `signature_defaults()` writes (a language model's generation settings, say).
IMAGE_DEFAULTS = {"serving_default": {"top_k": 3}}


def b64(data):
    return {"b64": base64.b64encode(data).decode("ascii")}


@pytest.fixture(scope="module")
def url(tmp_path_factory, install):
    base = tmp_path_factory.mktemp("api_models")
    text = install(base, "text", 1, "text")
    config_path = os.path.join(text, "assets.extra", "config.json")
    then = os.stat(config_path).st_mtime
    with open(config_path, "w", encoding="utf-8") as file:
        json.dump(TRAINING_CONFIG, file)
    os.utime(config_path, (then, then))
    image = install(base, "image", 3, "image")
    with open(os.path.join(image, "assets.extra", "signature_defaults.json"), "w", encoding="utf-8") as file:
        json.dump(IMAGE_DEFAULTS, file)
    os.utime(os.path.join(image, "assets.extra", "signature_defaults.json"), (then, then))
    install(base, "echo", 1, "echo")
    (base / "empty").mkdir()
    config = server.ServerConfig(
        model_base_path=str(base), port=0, poll_seconds=60, max_body_bytes=64 * 1024, max_instances=8,
        max_string_bytes=1000, max_image_pixels=100,
    )
    with server.ServerThread(config) as running:
        yield running.url


def test_status_and_version_status(url):
    available = {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    assert call(url, "GET", "/v1/models/text") == (200, {"model_version_status": [available]})
    assert call(url, "GET", "/v1/models/text/versions/1") == (200, {"model_version_status": [available]})


def test_metadata_describes_signatures_and_labels(url):
    status, body = call(url, "GET", "/v1/models/image/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "image", "signature_name": "", "version": "3"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == ["serving_default", "serving_pixels"]
    image_bytes = signatures["serving_default"]["inputs"]["image_bytes"]
    assert image_bytes["dtype"] == "DT_STRING"
    assert image_bytes["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    pixels = signatures["serving_pixels"]["inputs"]["pixels"]
    assert pixels["dtype"] == "DT_FLOAT"
    assert [dim["size"] for dim in pixels["tensor_shape"]["dim"]] == ["-1", "4", "4", "3"]
    assert signatures["serving_default"]["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"
    assert body["metadata"]["assets_extra"]["labels"] == ["dark", "bright"]
    assert body["metadata"]["assets_extra"]["signature_defaults"] == IMAGE_DEFAULTS
    assert call(url, "GET", "/v1/models/image/versions/3/metadata")[0] == 200


def test_metadata_keeps_only_the_last_component_of_paths(url):
    status, body = call(url, "GET", "/v1/models/text/metadata")
    assert status == 200
    assert body["metadata"]["assets_extra"]["config"] == {
        "task": "text_classification",
        "data": {"dataset": "reviews.tsv", "data_dir": "data", "folds": None},
        "model": {"embeddings_path": "GoogleNews.bin", "filter_sizes": [3, 4, 5]},
        "train": {"run_dir": "mr-textcnn", "optimizer": "adam"},
    }
    assert "alice" not in json.dumps(call(url, "GET", "/v1/models")[1])


def test_a_model_failure_is_logged_with_a_request_id_and_answered_without_its_text(url, monkeypatch, caplog):
    def fail(signature, arrays):
        raise RuntimeError("cannot open /srv/secret/weights.bin")

    monkeypatch.setattr(models.Signature, "call", fail)
    with caplog.at_level(logging.ERROR, logger="keras_tasks.serving.server"):
        status, body = predict(url, "text", {"instances": ["good"]})
    assert status == 500 and set(body) == {"error"}
    assert "secret" not in body["error"] and "RuntimeError" not in body["error"]
    prefix = "internal error (request id "
    assert body["error"].startswith(prefix)
    request_id = body["error"][len(prefix) :].split(")")[0]
    assert len(request_id) == 16
    logged = [record for record in caplog.records if request_id in record.getMessage()]
    assert len(logged) == 1 and "POST /v1/models/text:predict" in logged[0].getMessage()
    assert str(logged[0].exc_info[1]) == "cannot open /srv/secret/weights.bin"
    monkeypatch.undo()
    assert predict(url, "text", {"instances": ["good"]})[0] == 200


def test_predict_row_format(url):
    status, body = predict(url, "text", {"instances": ["a good film", "bad"]})
    assert status == 200
    first, second = body["predictions"]
    assert sorted(first) == ["attention", "label", "probabilities", "tokens"]
    assert (first["label"], second["label"]) == ("positive", "negative")
    assert first["probabilities"][1] > 0.8 and abs(sum(first["probabilities"]) - 1) < 1e-5
    assert first["tokens"] == ["a", "good", "film"]
    assert len(first["attention"]) == 3 and first["attention"][1] > first["attention"][0]
    assert second["tokens"][-1] == "" and second["attention"][-1] == 0.0  # padded to the batch's longest
    status, body = predict(url, "text", {"instances": ["a good film", ""]})  # an empty text is an input like any
    assert status == 200 and body["predictions"][1]["tokens"] == ["", "", ""]


def test_predict_columnar_format_and_named_instances_and_explicit_version(url):
    status, body = predict(url, "text", {"inputs": {"text": ["good", "bad"]}})
    assert status == 200
    assert body["outputs"]["label"] == ["positive", "negative"]
    assert len(body["outputs"]["probabilities"]) == 2
    assert predict(url, "text", {"inputs": ["good"]})[1]["outputs"]["label"] == ["positive"]
    named = predict(url, "text", {"instances": [{"text": "good"}], "signature_name": "serving_default"}, version=1)
    assert named[0] == 200 and named[1]["predictions"][0]["label"] == "positive"


def test_single_output_drops_its_name_and_bytes_travel_as_b64(url):
    status, body = predict(url, "echo", {"instances": [b64(b"\x00\xffabc"), b64(b"xy")]})
    assert (status, body) == (200, {"predictions": [b64(b"cba\xff\x00"), b64(b"yx")]})
    status, body = predict(url, "echo", {"inputs": {"data_bytes": [b64(b"ab")]}})
    assert (status, body) == (200, {"outputs": [b64(b"ba")]})


def test_image_bytes_and_pixels_signatures(url):
    status, body = predict(url, "image", {"instances": [b64(toy.png_bytes(250)), b64(toy.png_bytes(5))]})
    assert status == 200
    assert [prediction["label"] for prediction in body["predictions"]] == ["bright", "dark"]
    at_the_limit = b64(toy.png_bytes(250, size=10))  # 100 pixels, the fixture's --max-image-pixels
    assert predict(url, "image", {"instances": [at_the_limit]})[1]["predictions"][0]["label"] == "bright"
    pixels = [[[0.9] * 3] * 4] * 4
    status, body = predict(url, "image", {"signature_name": "serving_pixels", "instances": [pixels]})
    assert (status, body["predictions"][0]["label"]) == (200, "bright")


def test_model_list_and_demo_page(url):
    status, body = call(url, "GET", "/v1/models")
    assert status == 200
    listed = {model["name"]: model for model in body["models"]}
    assert sorted(listed) == ["echo", "empty", "image", "text"]
    assert listed["text"]["version"] == "1"
    assert listed["text"]["signatures"]["serving_default"]["inputs"] == {"text": {"dtype": "DT_STRING", "shape": [-1]}}
    assert listed["text"]["labels"] == ["negative", "positive"]
    assert listed["image"]["signature_defaults"] == IMAGE_DEFAULTS and listed["text"]["signature_defaults"] is None
    assert "version" not in listed["empty"]
    status, page = call(url, "GET", "/")
    assert status == 200 and "<title>keras-tasks model server</title>" in page


LONG = "word " * 300  # 1500 bytes, over the fixture's --max-string-bytes 1000
PIXELS = [[[0.5] * 3] * 4] * 4

# (method, path, body, status, a piece of the error message)
BAD_REQUESTS = {
    "malformed JSON": ("POST", "/v1/models/text:predict", b'{"instances": ["good"', 400, "malformed JSON"),
    "body not an object": ("POST", "/v1/models/text:predict", b'["good"]', 400, "must be a JSON object"),
    "both instances and inputs": (
        "POST", "/v1/models/text:predict", {"instances": ["a"], "inputs": ["a"]}, 400,
        "exactly one of 'instances' (row format) or 'inputs' (columnar format), got both"),
    "neither instances nor inputs": ("POST", "/v1/models/text:predict", {}, 400, "got neither"),
    "misspelt field": ("POST", "/v1/models/text:predict", {"instance": ["a"]}, 400, "unknown field(s) ['instance']"),
    "unknown signature": (
        "POST", "/v1/models/text:predict", {"signature_name": "nope", "instances": ["a"]}, 400,
        "unknown signature 'nope': model 'text' version 1 has ['serving_default']"),
    "signature name not a string": (
        "POST", "/v1/models/text:predict", {"signature_name": 3, "instances": ["a"]}, 400, "must be a string"),
    "number for a string input": (
        "POST", "/v1/models/text:predict", {"instances": ["a", 5]}, 400,
        "input 'text', example 1: expected a string or {\"b64\": ...} (DT_STRING), got a number"),
    "string for a float input": (
        "POST", "/v1/models/image:predict", {"signature_name": "serving_pixels", "instances": [[[["x"] * 3] * 4] * 4]},
        400, "input 'pixels', example 0: expected a number (DT_FLOAT), got a string"),
    "boolean for a float input": (
        "POST", "/v1/models/image:predict", {"signature_name": "serving_pixels", "inputs": [[[[True] * 3] * 4] * 4]},
        400, "expected a number (DT_FLOAT), got a boolean"),
    "wrong shape": (
        "POST", "/v1/models/image:predict", {"signature_name": "serving_pixels", "instances": [PIXELS[:3]]}, 400,
        "input 'pixels' expects shape [-1, 4, 4, 3] (-1: any size), got [1, 3, 4, 3]"),
    "list where a scalar string goes": (
        "POST", "/v1/models/text:predict", {"instances": [["a", "b"]]}, 400,
        "input 'text' expects shape [-1]: the values are nested deeper"),
    "ragged values": (
        "POST", "/v1/models/image:predict",
        {"signature_name": "serving_pixels", "instances": [PIXELS, PIXELS[:2] + [[[0.5] * 3] * 3] * 2]},
        400, "input 'pixels' is ragged: lists at level 3 have lengths [3, 4]"),
    "non-UTF-8 body": ("POST", "/v1/models/text:predict", b'{"instances": ["caf\xe9"]}', 400,
                       "the request body is not valid UTF-8 (byte 19)"),
    "non-UTF-8 text in b64": (
        "POST", "/v1/models/text:predict", {"instances": [b64(b"caf\xe9")]}, 400,
        "input 'text', example 0: the text is not valid UTF-8"),
    "unpaired surrogate": ("POST", "/v1/models/text:predict", b'{"instances": ["\\ud800"]}', 400,
                           "the text is not valid Unicode (unpaired surrogate)"),
    "empty bytes": ("POST", "/v1/models/echo:predict", {"instances": [b64(b"")]}, 400, "empty bytes"),
    "very long string": ("POST", "/v1/models/text:predict", {"instances": [LONG]}, 400,
                         "1500 bytes long; the limit is 1000 (--max-string-bytes)"),
    "too many instances": ("POST", "/v1/models/text:predict", {"instances": ["good"] * 9}, 400,
                           "too many instances: 9; the limit is 8 (--max-instances)"),
    "too many columnar values": ("POST", "/v1/models/text:predict", {"inputs": {"text": ["good"] * 9}}, 400,
                                 "input 'text' has 9; the limit is 8"),
    "no instances": ("POST", "/v1/models/text:predict", {"instances": []}, 400, "'instances' is empty"),
    "instances not a list": ("POST", "/v1/models/text:predict", {"instances": "good"}, 400,
                             "'instances' must be a list with one element per example, got a string"),
    "nested garbage": (
        "POST", "/v1/models/text:predict", {"instances": [{"text": {"a": [1, {"b": None}]}}]}, 400,
        "input 'text', example 0: expected a string or {\"b64\": ...} (DT_STRING), got an object"),
    "deeply nested JSON": ("POST", "/v1/models/text:predict", '{"instances": ' + "[" * 20000 + "]" * 20000 + "}",
                           400, "malformed JSON: nested too deeply"),
    "wrong input name": (
        "POST", "/v1/models/text:predict", {"instances": [{"txt": "good"}]}, 400,
        "instance 0: missing input(s) ['text']; unknown input(s) ['txt']; the signature's inputs are ['text']"),
    "text where bytes go": ("POST", "/v1/models/image:predict", {"instances": ["not base64"]}, 400,
                            'binary input: send it as {"b64": "<base64 of the bytes>"}'),
    "invalid base64": ("POST", "/v1/models/image:predict", {"instances": [{"b64": "***"}]}, 400,
                       "'b64' is not valid base64"),
    "image over the pixel limit": (
        "POST", "/v1/models/image:predict", {"instances": [b64(toy.png_bytes(9)), b64(toy.png_bytes(9, size=11))]},
        400, "input 'image_bytes', example 1: PNG image of 11 x 11 pixels = 121 pixels; the limit is 100 "
        "(--max-image-pixels)"),
    "image over the pixel limit, columnar": (
        "POST", "/v1/models/image:predict", {"inputs": {"image_bytes": [b64(toy.png_bytes(9, size=12))]}},
        400, "input 'image_bytes', example 0: PNG image of 12 x 12 pixels = 144 pixels; the limit is 100"),
    "bytes that are no image": (
        "POST", "/v1/models/image:predict", {"instances": [b64(b"GIF? no")]}, 400,
        "the model could not process the input: Unknown image file format"),
    "path traversal in the name": ("POST", "/v1/models/..%2F..%2Fetc%2Fpasswd:predict", {"instances": ["a"]}, 400,
                                   "invalid model name '..'"),
    "encoded dots as the name": ("GET", "/v1/models/%2E%2E/metadata", None, 400, "invalid model name '..'"),
    "invalid version": ("GET", "/v1/models/text/versions/latest", None, 400, "invalid version 'latest'"),
    "unsupported verb": ("POST", "/v1/models/text:classify", {"examples": []}, 400, "unsupported method ':classify'"),
    "unknown model": ("POST", "/v1/models/nope:predict", {"instances": ["a"]}, 404,
                      "model 'nope' not found under the model base path"),
    "unknown model status": ("GET", "/v1/models/nope", None, 404, "model 'nope' not found"),
    "unknown version": ("POST", "/v1/models/text/versions/7:predict", {"instances": ["a"]}, 404,
                        "version 7 of model 'text' is not loaded"),
    "unknown endpoint": ("GET", "/v2/anything", None, 404, "no such endpoint: GET /v2/anything"),
    "predict with GET": ("GET", "/v1/models/text:predict", None, 404, "no such endpoint"),
    "wrong method": ("DELETE", "/v1/models/text", None, 405, "DELETE is not allowed on /v1/models/text"),
    "body over the limit": ("POST", "/v1/models/text:predict",
                            json.dumps({"instances": ["good " * 20000]}), 413,
                            "the request body is larger than the limit of 65536 bytes (--max-body-bytes)"),
    "no version loaded yet": ("POST", "/v1/models/empty:predict", {"instances": ["a"]}, 503,
                              "model 'empty' has no loaded version yet"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_is_refused_with_status_and_message(url, case):
    method, path, body, status, message = BAD_REQUESTS[case]
    answer_status, answer = call(url, method, path, body)
    assert answer_status == status, answer
    assert set(answer) == {"error"} and message in answer["error"], answer["error"]


def test_bad_requests_leave_the_server_answering(url):
    for method, path, body, _, _ in BAD_REQUESTS.values():
        call(url, method, path, body)
    status, body = predict(url, "text", {"instances": ["good"]})
    assert (status, body["predictions"][0]["label"]) == (200, "positive")
