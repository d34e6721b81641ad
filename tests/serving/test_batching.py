"""Server-side batching: concurrent requests share one model call, and a bad one fails alone."""

import asyncio
import base64
import concurrent.futures

import numpy as np
import pytest
import serving_toy_models as toy
from serving_helpers import predict

from keras_tasks.serving import batching
from keras_tasks.serving import server


def _doubling(calls):
    def run(arrays):
        calls.append(len(arrays["x"]))
        if (arrays["x"] < 0).any():
            raise ValueError("negative input")
        return {"y": arrays["x"] * 2}

    return run


def _submit_all(batcher, requests):
    async def go():
        tasks = [batcher.submit({"x": np.array(values, dtype=np.float32)}, len(values)) for values in requests]
        return await asyncio.gather(*tasks, return_exceptions=True)

    return asyncio.run(go())


def test_concurrent_requests_merge_into_one_call_and_get_their_own_rows():
    calls = []
    batcher = batching.Batcher(_doubling(calls), max_batch_size=8, timeout_seconds=1.0)
    results = _submit_all(batcher, [[1.0], [2.0, 3.0], [4.0], [5.0, 6.0, 7.0, 8.0]])
    assert calls == [8]  # full batch: ran at once, without waiting for the timeout
    assert [result["y"].tolist() for result in results] == [[2.0], [4.0, 6.0], [8.0], [10.0, 12.0, 14.0, 16.0]]
    assert (batcher.calls, batcher.examples) == (1, 8)


def test_batches_split_at_max_batch_size_and_flush_on_timeout():
    calls = []
    batcher = batching.Batcher(_doubling(calls), max_batch_size=4, timeout_seconds=0.01)
    results = _submit_all(batcher, [[1.0, 2.0, 3.0], [4.0, 5.0], [6.0], [7.0, 8.0, 9.0, 10.0, 11.0]])
    assert sorted(calls) == [3, 3, 5]  # 3 (2 more would overflow), then 2+1 at the timeout; 5 alone
    assert results[3]["y"].tolist() == [14.0, 16.0, 18.0, 20.0, 22.0]


def test_a_failing_merged_call_is_retried_request_by_request():
    calls = []
    batcher = batching.Batcher(_doubling(calls), max_batch_size=8, timeout_seconds=0.05)
    good, bad, other = _submit_all(batcher, [[1.0], [-1.0], [2.0]])
    assert good["y"].tolist() == [2.0] and other["y"].tolist() == [4.0]
    assert isinstance(bad, ValueError)
    assert calls == [3, 1, 1, 1]


def test_server_merges_concurrent_http_requests(tmp_path, install):
    install(tmp_path, "text", 1, "text")
    install(tmp_path, "image", 1, "image")
    config = server.ServerConfig(
        model_base_path=str(tmp_path), port=0, poll_seconds=60, max_batch_size=8, batch_timeout_ms=500
    )
    with server.ServerThread(config) as running, concurrent.futures.ThreadPoolExecutor(8) as pool:
        texts = [f"{'good ' * (index % 3)}bad film number {index}" for index in range(8)]
        answers = list(pool.map(lambda text: predict(running.url, "text", {"instances": [text]}), texts))
        batcher = server.manager_of(running.app).get("text").batchers["serving_default"]
        assert (batcher.calls, batcher.examples) == (1, 8)
        for text, (status, body) in zip(texts, answers):
            assert status == 200
            (prediction,) = body["predictions"]
            expected = "positive" if text.count("good") > text.count("bad") else "negative"
            assert prediction["label"] == expected
            assert [token for token in prediction["tokens"] if token] == text.split()

        # One undecodable image among good ones: only its request fails.
        images = [toy.png_bytes(250), b"not an image", toy.png_bytes(5), toy.png_bytes(240)]
        bodies = [{"instances": [{"b64": base64.b64encode(image).decode()}]} for image in images]
        answers = list(pool.map(lambda body: predict(running.url, "image", body), bodies))
        assert [status for status, _ in answers] == [200, 400, 200, 200]
        assert "Unknown image file format" in answers[1][1]["error"]
        assert [answers[index][1]["predictions"][0]["label"] for index in (0, 2, 3)] == ["bright", "dark", "bright"]


@pytest.mark.parametrize("batch_size", [0, 4])
def test_batched_and_unbatched_answers_agree(tmp_path, install, batch_size):
    install(tmp_path, "text", 1, "text")
    config = server.ServerConfig(model_base_path=str(tmp_path), port=0, max_batch_size=batch_size)
    with server.ServerThread(config) as running, concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda text: predict(running.url, "text", {"instances": [text]}), ["good"] * 8))
    probabilities = [body["predictions"][0]["probabilities"] for _, body in answers]
    np.testing.assert_allclose(probabilities, [[0.11920291, 0.880797]] * 8, atol=1e-6)
