"""The client behind `keras-tasks predict --server`."""

import pytest
import serving_toy_models as toy

from keras_tasks.serving import client
from keras_tasks.serving import server


@pytest.fixture(scope="module")
def url(tmp_path_factory, install):
    base = tmp_path_factory.mktemp("client_models")
    install(base, "sst", 1, "text")
    install(base, "echo", 1, "echo")
    install(base, "image", 2, "image")
    with server.ServerThread(server.ServerConfig(model_base_path=str(base), port=0, poll_seconds=60)) as running:
        yield running.url


def test_predict_texts_and_bytes(url):
    predictions = client.predict(url, "sst", ["a good film", "a bad film"])
    assert [prediction["label"] for prediction in predictions] == ["positive", "negative"]
    (prediction,) = client.predict(url + "/", "sst", ["good"], signature_name="serving_default", version=1)
    assert prediction["label"] == "positive"
    assert client.predict(url, "echo", [b"\x00\x01"]) == [{"b64": "AQA="}]


def test_predict_columns_reads_image_files_for_bytes_inputs(url, tmp_path):
    outputs = client.predict_columns(url, "sst", ["a good film", "a bad film"])
    assert outputs["label"] == ["positive", "negative"] and len(outputs["tokens"]) == 2
    bright, dark = tmp_path / "bright.png", tmp_path / "dark.png"
    bright.write_bytes(toy.png_bytes(250))
    dark.write_bytes(toy.png_bytes(3))
    outputs = client.predict_columns(url, "image", [str(bright), str(dark)])
    assert outputs["label"] == ["bright", "dark"] and len(outputs["probabilities"][0]) == 2
    assert client.predict_columns(url, "echo", [b"ab"]) == {"data_bytes": [{"b64": "YmE="}]}
    with pytest.raises(ValueError, match="has no signature 'nope'"):
        client.predict_columns(url, "sst", ["good"], signature_name="nope")


def test_status_metadata_and_labels(url):
    assert client.status(url, "sst")[0]["state"] == "AVAILABLE"
    assert "serving_default" in client.metadata(url, "sst")["metadata"]["signature_def"]["signature_def"]
    assert client.labels(url, "sst") == ["negative", "positive"]
    assert client.labels(url, "echo") is None


def test_errors_carry_the_status_and_the_server_message(url):
    with pytest.raises(client.ServingError) as caught:
        client.predict(url, "nope", ["good"])
    assert caught.value.status == 404 and "model 'nope' not found" in caught.value.message
    with pytest.raises(client.ServingError) as caught:
        client.predict(url, "echo", [b""])
    assert caught.value.status == 400 and "empty bytes" in caught.value.message
    with pytest.raises(client.ServingError) as caught:
        client.predict(url, "../etc", ["good"])  # quoted, so it reaches the server as one name
    assert caught.value.status == 400 and "invalid model name" in caught.value.message


def test_unreachable_server():
    with pytest.raises(client.ServingError) as caught:
        client.predict("http://127.0.0.1:9", "sst", ["good"], timeout=5)
    assert caught.value.status is None and "cannot reach the server" in caught.value.message


def test_format_prediction():
    prediction = {"label": "positive", "probabilities": [0.2, 0.8]}
    assert client.format_prediction("good", prediction, ["negative", "positive"]) == (
        "'good': positive (positive 0.800, negative 0.200)"
    )
    assert client.format_prediction("x", [1, 2]) == "'x': [1, 2]"


def test_keras_tasks_predict_with_server(url, capsys):
    from keras_tasks.scripts import cli

    assert cli.main(["predict", "--server", url, "--model", "sst", "a good film", "bad"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["positive", "negative"]
    assert lines[0].split("\t")[2] == "a good film" and "[attention: good:" in lines[0]
    assert cli.main(["predict", "--server", url, "--model", "nope", "good"]) == 2
    assert "404: model 'nope' not found" in capsys.readouterr().err
