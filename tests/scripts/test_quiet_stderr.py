"""TensorFlow's start-up noise is dropped from standard error; every other line gets through, in order."""

import subprocess
import sys

CHILD = r"""
import os, sys
from keras_tasks.scripts.quiet_stderr import filtered_stderr
with filtered_stderr():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"I0000 00:00:1.0 1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n")
    print("error: the user's own message", file=sys.stderr)
    os.write(2, b"E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n")
    os.write(2, b"a C++ warning worth reading\n")
print("after the block", file=sys.stderr)
raise RuntimeError("a bug keeps its traceback")
"""


def test_noise_is_dropped_and_everything_else_kept_in_order():
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    lines = result.stderr.splitlines()
    assert lines[:3] == ["error: the user's own message", "a C++ warning worth reading", "after the block"]
    assert "RuntimeError: a bug keeps its traceback" in lines[-1]
    assert not any("cuda" in line.lower() or "absl" in line for line in lines)
