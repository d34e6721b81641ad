"""`python -m keras_tasks.serving` stops on SIGTERM only after its in-flight requests are answered."""

import concurrent.futures
import time

import pytest
from serving_helpers import call
from serving_helpers import predict

from keras_tasks.serving.loadtest import ServerProcess


def test_sigterm_lets_in_flight_requests_finish(tmp_path, install):
    install(tmp_path, "sst", 1, "text")
    # A long batching timeout keeps requests in flight for 1.5 s.
    process = ServerProcess(tmp_path, ["--max-batch-size", "64", "--batch-timeout-ms", "1500"]).wait()
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            pending = [pool.submit(predict, process.url, "sst", {"instances": [text]}) for text in ("good", "bad")]
            time.sleep(0.5)
            started = time.monotonic()
            assert process.stop() == 0
            assert time.monotonic() - started >= 0.5  # it waited for them
            answers = [future.result() for future in pending]
    finally:
        process.stop()
    assert [(status, body["predictions"][0]["label"]) for status, body in answers] == [
        (200, "positive"),
        (200, "negative"),
    ]
    assert "finishing in-flight requests" in process.log_tail()
    with pytest.raises(ConnectionError):
        call(process.url, "GET", "/v1/models/sst")
