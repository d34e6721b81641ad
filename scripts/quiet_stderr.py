"""Drop TensorFlow's start-up noise from standard error.

Importing TensorFlow on a machine without a GPU writes lines such as `cudart_stub.cc:31] Could not find cuda
drivers on your machine` and `failed call to cuInit` from C++ (absl logging), before and regardless of
`TF_CPP_MIN_LOG_LEVEL`. They are not errors of the user's command. `filtered_stderr()` passes file descriptor 2
through a pipe whose reader drops the lines matching `NOISE` and writes every other line, unchanged and in order,
to the real standard error.
"""

import contextlib
import os
import re
import sys
import threading

NOISE = re.compile(
    rb"All log messages before absl::InitializeLog\(\) is called|cudart_stub\.cc|failed call to cuInit|"
    rb"Unable to register cu(DNN|FFT|BLAS) factory|computation_placer\.cc|TF-TRT Warning|oneDNN custom operations|"
    rb"cuda_executor\.cc.*(NUMA|driver)|This TensorFlow binary is optimized to use available CPU instructions|"
    rb"To enable the following instructions: .*, in other operations, rebuild TensorFlow"
)


@contextlib.contextmanager
def filtered_stderr():
    """Within the block, lines written to fd 2 (by Python or C++) reach the terminal unless they are noise."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as lines, os.fdopen(os.dup(real), "wb", buffering=0) as out:
            for line in lines:
                if not NOISE.search(line):
                    out.write(line)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's write end: the reader drains what is left and stops
        thread.join(timeout=5)
        os.close(real)
