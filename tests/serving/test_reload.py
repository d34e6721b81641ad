"""Versions coming and going under a running server, while a client keeps asking."""

import os
import shutil
import threading

from serving_helpers import call
from serving_helpers import predict
from serving_helpers import wait_for

from keras_tasks.serving import server


def _label(url):
    status, body = predict(url, "sst", {"instances": ["good"]})
    assert status == 200, body
    return body["predictions"][0]["label"]


def _statuses(url):
    return {status["version"]: status for status in call(url, "GET", "/v1/models/sst")[1]["model_version_status"]}


def test_hot_reload_corrupt_version_and_fallback_without_a_failed_request(tmp_path, install, toy_exports):
    install(tmp_path, "sst", 1, "text")
    config = server.ServerConfig(model_base_path=str(tmp_path), port=0, poll_seconds=0.1)
    with server.ServerThread(config) as running:
        url = running.url
        failures, stop = [], threading.Event()

        def keep_asking():
            while not stop.is_set():
                status, body = predict(url, "sst", {"instances": ["good film"]})
                if status != 200:
                    failures.append(body)

        client = threading.Thread(target=keep_asking)
        client.start()
        try:
            assert _label(url) == "positive"

            install(tmp_path, "sst", 2, "text_v2")  # a new version appears
            wait_for(lambda: _label(url) == "pos_v2")
            assert _statuses(url)["1"]["state"] == "END"

            corrupt = install(tmp_path, "sst", 3, "text")
            with open(os.path.join(corrupt, "saved_model.pb"), "wb") as file:
                file.write(b"\x08\x01 truncated")
            os.utime(os.path.join(corrupt, "saved_model.pb"), (0, 0))
            status = wait_for(lambda: _statuses(url).get("3"))
            wait_for(lambda: _statuses(url)["3"]["state"] == "END")
            status = _statuses(url)["3"]["status"]
            assert status["error_code"] == "UNKNOWN"
            assert status["error_message"].startswith("failed to load version 3:")
            assert _label(url) == "pos_v2"  # the older version keeps answering

            half = tmp_path / "sst" / "4" / "variables"  # a copy in progress
            half.mkdir(parents=True)
            shutil.copy(toy_exports["text"] / "variables" / "variables.data-00000-of-00001", half)
            shutil.rmtree(corrupt)
            shutil.rmtree(tmp_path / "sst" / "2")  # the newest good version goes: fall back to 1
            wait_for(lambda: _label(url) == "positive")
            assert "4" not in _statuses(url)
            assert _statuses(url)["2"]["state"] == "END"
        finally:
            stop.set()
            client.join()
        assert failures == []
