"""SavedModels whose graphs use TensorFlow Text's ops load and serve; without tensorflow-text the status says so.

Each check runs the manager in a fresh Python process: once any code of a process has imported tensorflow_text, its
ops stay registered there, and the test would pass whether or not the server imports it itself.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf
import tensorflow_text as tf_text


class _TextOpsModel(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        tokens = tf_text.WhitespaceTokenizer().tokenize(tf_text.normalize_utf8(text, "NFKC"))
        return {"tokens": tokens.to_tensor(""), "count": tokens.row_lengths()}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("text_ops_models")
    module = _TextOpsModel()
    tf.saved_model.save(module, os.fspath(base / "tokens" / "1"), signatures={"serving_default": module.serve})
    return base


def _serve_in_fresh_process(base, block_tensorflow_text):
    script = textwrap.dedent(
        f"""
        import json, sys
        if {block_tensorflow_text!r}:
            sys.modules["tensorflow_text"] = None  # as if it were not installed
        import numpy as np
        from keras_tasks.serving import models

        manager = models.ModelManager({os.fspath(base)!r}, settle_seconds=0.0)
        manager.poll()
        (status,) = manager.status("tokens")
        answer = {{"status": status, "text_module_imported": sys.modules.get("tensorflow_text") is not None}}
        if status["state"] == "AVAILABLE":
            text = np.array(["ﬁne  day", "one"], dtype=object)  # the ligature becomes "fi" under NFKC
            outputs = manager.get("tokens").signatures["serving_default"].call({{"text": text}})
            answer["tokens"] = [[token.decode() for token in row] for row in outputs["tokens"]]
            answer["count"] = outputs["count"].tolist()
        print(json.dumps(answer))
        """
    )
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=environment, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_model_using_tensorflow_text_ops_loads_and_serves(base):
    answer = _serve_in_fresh_process(base, block_tensorflow_text=False)
    available = {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    assert answer["status"] == available
    assert answer["text_module_imported"]
    assert answer["tokens"] == [["fine", "day"], ["one", ""]]
    assert answer["count"] == [2, 1]


def test_without_tensorflow_text_the_status_says_what_to_install(base):
    answer = _serve_in_fresh_process(base, block_tensorflow_text=True)
    assert not answer["text_module_imported"]
    status = answer["status"]
    assert (status["state"], status["status"]["error_code"]) == ("END", "UNKNOWN")
    message = status["status"]["error_message"]
    assert message.startswith(
        "failed to load version 1: MissingOpError: the SavedModel uses the op 'NormalizeUTF8', which this server's "
        "TensorFlow does not have; TensorFlow Text's ops"
    )
    assert f"`pip install tensorflow-text` (the release matching tensorflow {tf.__version__})" in message
    assert "binary running on" not in message  # TensorFlow's own text names the host
