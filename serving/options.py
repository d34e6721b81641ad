"""The command-line options of `keras-tasks serve` and `keras-tasks loadtest`.

Kept apart from the server (which imports TensorFlow) so `keras-tasks serve --help` answers at once.
"""

import argparse
import dataclasses
import os

# aiohttp holds a whole body in memory (and JSON parsing multiplies it); 0 would switch its limit off.
MAX_BODY_BYTES = 1 << 30


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """What `keras-tasks serve` is told on its command line (see `add_arguments` for each field)."""

    model_base_path: str = "saved_models"
    host: str = "127.0.0.1"
    port: int = 8501
    poll_seconds: float = 2.0
    max_body_bytes: int = 10 << 20
    max_instances: int = 1024
    max_string_bytes: int = 1 << 20
    max_image_pixels: int = 40_000_000
    max_batch_size: int = 0
    batch_timeout_ms: float = 2.0
    num_threads: int = max(2, os.cpu_count() or 1)
    shutdown_timeout: float = 30.0

    def __post_init__(self):
        if not 1 <= self.max_body_bytes <= MAX_BODY_BYTES:
            raise ValueError(f"max_body_bytes must be from 1 to {MAX_BODY_BYTES}, got {self.max_body_bytes}")
        if self.max_image_pixels < 1:
            raise ValueError(f"max_image_pixels must be at least 1, got {self.max_image_pixels}")


def _number(kind, minimum=0, maximum=None):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (minimum <= value and (maximum is None or value <= maximum)):  # NaN fails too
            what = "a whole number" if kind is int else "a number"
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"must be {what} {bounds}, got {text!r}")
        return value

    return parse


# ServerConfig field, type, help; each becomes --field-name with the ServerConfig default.
_OPTIONS = (
    ("model_base_path", str, "directory holding NAME/VERSION/ SavedModels"),
    ("host", str, "address to listen on; the default accepts local connections only"),
    ("port", _number(int), "0 picks a free port"),
    ("poll_seconds", _number(float), "how often to look for new or removed versions"),
    ("max_body_bytes", _number(int, 1, MAX_BODY_BYTES), f"larger bodies are refused with 413; 1 to {MAX_BODY_BYTES}"),
    ("max_instances", _number(int), "most examples in one request"),
    ("max_string_bytes", _number(int), "longest string (text, or bytes after base64) in one input value"),
    (
        "max_image_pixels",
        _number(int, 1),
        "images in *_bytes inputs whose headers declare more pixels (width x height x frames) are refused with 400",
    ),
    ("max_batch_size", _number(int), "merge concurrent requests into calls of up to this many examples; 0: off"),
    ("batch_timeout_ms", _number(float), "longest a request waits for others to share its model call"),
    ("num_threads", _number(int), "threads running model calls"),
    ("shutdown_timeout", _number(float), "seconds in-flight requests get to finish after SIGTERM"),
)


def add_arguments(parser):
    """Adds `keras-tasks serve`'s options to an argparse parser."""
    defaults = ServerConfig()
    for field, kind, text in _OPTIONS:
        flag = "--" + field.replace("_", "-")
        parser.add_argument(flag, type=kind, default=getattr(defaults, field), help=text + " (default: %(default)s)")
    return parser


def config_from_args(args):
    return ServerConfig(**{field.name: getattr(args, field.name) for field in dataclasses.fields(ServerConfig)})


SAMPLE_TEXT = "a gripping , beautifully acted film whose story stays with you long after the credits"


def loadtest_arguments(parser):
    """Adds `keras-tasks loadtest`'s options to an argparse parser."""
    parser.add_argument("--model-base-path", default="saved_models", help="directory holding NAME/VERSION/")
    parser.add_argument("--model", required=True, help="the model's directory name under --model-base-path")
    parser.add_argument("--signature-name", default="serving_default")
    parser.add_argument("--requests", type=int, default=10000, help="requests per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent callers per phase")
    parser.add_argument("--instances", type=int, default=1, help="examples per request")
    parser.add_argument("--max-batch-size", type=int, default=16, help="the batching phase's --max-batch-size")
    parser.add_argument("--batch-timeout-ms", type=float, default=2.0, help="the batching phase's timeout")
    parser.add_argument("--text", default=SAMPLE_TEXT, help="the text sent to a text model")
    parser.add_argument("--image", help="an image file sent to a model whose input ends in _bytes")
    parser.add_argument("--rounds", type=int, default=10, help="the modes take turns this many times")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="the measurement stops here, finished or not")
    parser.add_argument("--json", help="also write the results to this JSON file (one entry per model)")
    return parser
