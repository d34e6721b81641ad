"""Finds, loads and unloads the SavedModel versions under a model base path (TF Serving's layout).

`BASE/NAME/VERSION/` holds one export, VERSION an integer directory. The manager serves the newest version of each
model that is complete and loads. It leaves a version directory alone until its files stop changing, keeps the
current version answering while a newer one loads (or fails to), retries a failed version only when its files
change, and falls back to the next version when the newest is removed.

TensorFlow Text is imported (when installed) before the first load, so SavedModels whose graphs tokenise with its
ops (SentencePiece and other tokenizers) load. What `assets.extra/` says about a version is served to clients with
the training machine's paths cut to their last component.
"""

import dataclasses
import functools
import json
import logging
import os
import re
import threading
import time

import tensorflow as tf

logger = logging.getLogger(__name__)

# Model names arrive in request URLs: only plain directory names are ever looked up, never paths.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MODEL_NAME_RULE = (
    "a model name is one directory name of 1 to 128 characters: letters, digits, '.', '_' and '-', starting with a "
    "letter or digit (no slashes, spaces or '..')"
)
VERSION_NAME = re.compile(r"[0-9]{1,18}")
_VARIABLE_SHARD = re.compile(r"variables/variables\.data-([0-9]+)-of-([0-9]+)")
_MISSING_OP = re.compile(r"Op type not registered '([^']+)'")

# TF Serving's version states (UNLOADING is instantaneous here).
START, LOADING, AVAILABLE, END = "START", "LOADING", "AVAILABLE", "END"


def check_model_name(name):
    """Returns `name` if the server would serve a model directory of that name; raises ValueError saying the rule
    otherwise. Exporters check names with it, so that every export can be served."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise ValueError(f"invalid model name {name!r}: {MODEL_NAME_RULE}")
    return name


class ModelNotFound(LookupError):
    """No such model, or the requested version is not loaded (HTTP 404)."""


class ModelUnavailable(LookupError):
    """The model exists but no version of it is loaded (HTTP 503)."""


@dataclasses.dataclass(frozen=True)
class Signature:
    """One signature of a loaded SavedModel.

    Args:
        name: the signature key, e.g. `serving_default`.
        function: the concrete function; call it with one keyword tensor per input.
        inputs: input name -> `tf.TensorSpec`, in name order.
        outputs: output name -> `tf.TensorSpec`, in name order.
    """

    name: str
    function: object
    inputs: dict
    outputs: dict

    def call(self, arrays):
        """Runs the signature on numpy arrays by input name; returns numpy arrays by output name."""
        tensors = {name: tf.constant(value, dtype=self.inputs[name].dtype) for name, value in arrays.items()}
        outputs = self.function(**tensors)
        return {name: outputs[name].numpy() for name in self.outputs}


class LoadedVersion:
    """One loaded version: its signatures and what `assets.extra/` says about it.

    Args:
        name: the model name.
        version: the integer version.
        path: the version directory.
        saved_model: the object `tf.saved_model.load` returned (kept so its resources stay alive).
        signatures: signature name -> `Signature`.
        labels: class names from `assets.extra/labels.txt`, or None.
        config: `assets.extra/config.json` with paths cut to their last component (see `without_paths`), or None.
        metrics: `assets.extra/metrics.json`, likewise, or None.
        signature_defaults: `assets.extra/signature_defaults.json`, signature name -> {input: value} for the inputs a
            client may leave to the exporter's defaults (generation length, temperature, ...), or None.
    """

    def __init__(
        self, name, version, path, saved_model, signatures, labels=None, config=None, metrics=None,
        signature_defaults=None,
    ):
        self.name = name
        self.version = version
        self.path = path
        self.saved_model = saved_model
        self.signatures = signatures
        self.labels = labels
        self.config = config
        self.signature_defaults = signature_defaults
        self.metrics = metrics
        # Signature name -> Batcher; created and used only by the server's event loop.
        self.batchers = {}


@functools.cache
def import_text_ops():
    """Imports TensorFlow Text, which registers its ops with TensorFlow; returns None, or why it could not be.

    A SavedModel keeps only the names of the ops in its graph: the ops themselves must be registered before it
    loads, and TensorFlow Text's (SentencePiece and other tokenizers, UTF-8 normalisation) are only once the
    `tensorflow_text` module has been imported.
    """
    try:
        import tensorflow_text  # noqa: F401
    except ImportError as error:
        return f"{type(error).__name__}: {error}"
    except Exception as error:  # e.g. built for another TensorFlow: its ops library fails to load
        logger.warning("importing tensorflow_text failed; models that use its ops will not load: %s", error)
        return f"{type(error).__name__}: {error}"
    return None


def load_version(name, version, path):
    """Loads one SavedModel version directory and reads its signatures and `assets.extra/`."""
    text_ops_error = import_text_ops()
    try:
        saved_model = tf.saved_model.load(path)
    except Exception as error:
        missing = _MISSING_OP.search(str(error))
        if missing is None:
            raise
        raise MissingOpError(missing.group(1), text_ops_error) from error
    signatures = {}
    for key, function in saved_model.signatures.items():
        _, inputs = function.structured_input_signature
        outputs = function.structured_outputs
        signatures[key] = Signature(key, function, dict(sorted(inputs.items())), dict(sorted(outputs.items())))
    if not signatures:
        raise ValueError("the SavedModel has no signatures; export it with at least `serving_default`")
    extra = os.path.join(path, "assets.extra")
    return LoadedVersion(
        name,
        version,
        path,
        saved_model,
        signatures,
        labels=_read_labels(os.path.join(extra, "labels.txt")),
        config=without_paths(_read_json(os.path.join(extra, "config.json"))),
        metrics=without_paths(_read_json(os.path.join(extra, "metrics.json"))),
        signature_defaults=_read_json(os.path.join(extra, "signature_defaults.json")),
    )


class MissingOpError(RuntimeError):
    """The SavedModel's graph uses an op this process has not registered; the message says how to get it."""

    def __init__(self, op, text_ops_error=None):
        if text_ops_error is not None:
            advice = (
                "TensorFlow Text's ops (SentencePiece and other tokenizers, normalize_utf8) need "
                f"`pip install tensorflow-text` (the release matching tensorflow {tf.__version__}) and a restart of "
                f"the server; importing tensorflow_text failed with {text_ops_error}"
            )
        else:
            advice = (
                "tensorflow-text is imported, so the op comes from elsewhere: install the package that defines it, "
                "or export the model with ops this server's TensorFlow has, then restart the server"
            )
        super().__init__(f"the SavedModel uses the op '{op}', which this server's TensorFlow does not have; {advice}")
        self.op = op


# A path separator in a string value marks a path on the training machine (data_dir, embeddings_path, a dataset
# given as a file); `tfds:` dataset names may hold a slash and are names, not paths.
_PATH_SEPARATORS = re.compile(r"[/\\]")


def without_paths(value):
    """Returns a JSON value with every string that holds a path separator cut to its last component.

    `assets.extra/config.json` records the training machine's paths (`data.data_dir`,
    `model.embeddings_path`, `data.dataset` when it is a file); clients see which file was used, not where it was.
    `tfds:` names are kept whole.
    """
    if isinstance(value, dict):
        return {key: without_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_paths(item) for item in value]
    if isinstance(value, str) and _PATH_SEPARATORS.search(value) and not value.startswith("tfds:"):
        return _PATH_SEPARATORS.split(value.rstrip("/\\"))[-1]
    return value


def _read_labels(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        return [line.rstrip("\r\n") for line in file if line.strip()]


def _read_json(path):
    # These files describe the model for people; a broken one must not stop the model from serving.
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        logger.warning("ignoring %s: %s", path, error)
        return None


def _without_location(message, path, shown):
    # Load errors reach clients in the version's status: name the version, not where the server keeps it, nor the
    # host TensorFlow reports an unregistered op on.
    for where in sorted({os.path.abspath(path), os.fspath(path)}, key=len, reverse=True):
        message = message.replace(where, shown)
    return re.sub(r" in binary running on \S+?\.", ".", message)


@dataclasses.dataclass
class _VersionStatus:
    number: int
    state: str = START
    error: str = ""
    failed_files: tuple = None  # the files that failed to load; retried only once they change

    def as_json(self):
        return {
            "version": str(self.number),
            "state": self.state,
            "status": {"error_code": "UNKNOWN" if self.error else "OK", "error_message": self.error},
        }


class _Model:
    def __init__(self, name):
        self.name = name
        self.statuses = {}  # version -> _VersionStatus, for every version ever attempted
        self.loaded = {}  # version -> LoadedVersion
        self.seen = {}  # version -> files at the last scan, to tell when a directory stops changing


def scan_version(path):
    """Returns (files, complete, newest_mtime) for a version directory.

    `files` is a sorted tuple of (relative path, size, mtime_ns); `complete` says saved_model.pb, the variables
    index and every variables shard it names are present, which a SavedModel writer creates last.
    """
    files = []
    for root, _, names in os.walk(path):
        for file_name in names:
            full = os.path.join(root, file_name)
            try:
                stat = os.stat(full)
            except OSError:  # removed or renamed while we look
                continue
            relative = os.path.relpath(full, path).replace(os.sep, "/")
            files.append((relative, stat.st_size, stat.st_mtime_ns))
    files.sort()
    names = {entry[0] for entry in files}
    shards = [_VARIABLE_SHARD.fullmatch(name) for name in names]
    totals = {int(match.group(2)) for match in shards if match}
    complete = (
        "saved_model.pb" in names
        and "variables/variables.index" in names
        and len(totals) == 1
        and sum(1 for match in shards if match) == totals.pop()
    )
    newest = max((entry[2] for entry in files), default=0) / 1e9
    return tuple(files), complete, newest


class ModelManager:
    """Keeps the newest loadable version of every model under `base_path` loaded.

    Args:
        base_path: the directory holding `NAME/VERSION/` exports.
        poll_seconds: how often `start()` rescans the directory.
        settle_seconds: a version directory first seen while its newest file is younger than this waits for
            the next scan and loads only if its files did not change in between.

    Example:
    ```python
    manager = ModelManager("saved_models")
    manager.poll()  # load what is there now
    manager.start()  # then rescan every poll_seconds
    signature = manager.get("sst").signatures["serving_default"]
    ```
    """

    def __init__(self, base_path, poll_seconds=2.0, settle_seconds=1.0):
        self.base_path = os.fspath(base_path)
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self._models = {}
        self._lock = threading.Lock()  # guards _models and every _Model's statuses/loaded
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._warned_missing = False

    # === Polling ===

    def start(self):
        """Rescans every `poll_seconds` in a background thread until `stop()`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="model-poller", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # a scan that fails must not end polling; the next one retries
                logger.exception("scanning %s failed", self.base_path)

    def poll(self):
        """Scans the base path once: loads new versions, unloads removed ones."""
        with self._poll_lock:
            names = self._model_directories()
            with self._lock:
                for name in set(self._models) - names:
                    logger.info("model %s: directory removed, unloading", name)
                    del self._models[name]
                for name in names:
                    self._models.setdefault(name, _Model(name))
                models = [self._models[name] for name in sorted(names)]
            for model in models:
                self._poll_model(model)

    def _model_directories(self):
        try:
            entries = list(os.scandir(self.base_path))
        except FileNotFoundError:
            if not self._warned_missing:
                logger.warning("model base path %s does not exist (yet)", self.base_path)
                self._warned_missing = True
            return set()
        return {entry.name for entry in entries if entry.is_dir() and MODEL_NAME.fullmatch(entry.name)}

    def _poll_model(self, model):
        directory = os.path.join(self.base_path, model.name)
        try:
            entries = [entry for entry in os.scandir(directory) if entry.is_dir()]
        except FileNotFoundError:
            entries = []
        on_disk = {int(entry.name): entry.path for entry in entries if VERSION_NAME.fullmatch(entry.name)}
        now = time.time()
        ready = []
        for number, path in on_disk.items():
            files, complete, newest = scan_version(path)
            unchanged = model.seen.get(number) == files
            model.seen[number] = files
            status = model.statuses.get(number)
            if not complete or (status is not None and status.failed_files == files):
                continue
            if unchanged or now - newest >= self.settle_seconds:
                ready.append(number)
        for number in set(model.seen) - set(on_disk):
            del model.seen[number]

        current = max((number for number in model.loaded if number in on_disk), default=None)
        for number in sorted(ready, reverse=True):
            if current is not None and number <= current:
                break
            if self._load(model, number, on_disk[number]):
                current = number
                break
        for number in list(model.loaded):
            if number != current:
                self._unload(model, number, "removed" if number not in on_disk else f"replaced by {current}")

    def _load(self, model, number, path):
        with self._lock:
            status = model.statuses.setdefault(number, _VersionStatus(number))
            status.state, status.error = LOADING, ""
        logger.info("model %s: loading version %d from %s", model.name, number, path)
        try:
            loaded = load_version(model.name, number, path)
        except Exception as error:  # any failure is reported in the version's status; the old version serves on
            message = " ".join(_without_location(str(error), path, f"{model.name}/{number}").split())[:500]
            with self._lock:
                status.state = END
                status.error = f"failed to load version {number}: {type(error).__name__}: {message}"
                status.failed_files = model.seen.get(number)
            logger.error("model %s: %s", model.name, status.error)
            return False
        with self._lock:
            model.loaded[number] = loaded
            status.state, status.failed_files = AVAILABLE, None
        logger.info("model %s: version %d is available", model.name, number)
        return True

    def _unload(self, model, number, reason):
        with self._lock:
            del model.loaded[number]
            model.statuses[number].state = END
        logger.info("model %s: version %d unloaded (%s)", model.name, number, reason)

    # === Queries (called from request handlers) ===

    def names(self):
        with self._lock:
            return sorted(self._models)

    def get(self, name, version=None):
        """Returns the `LoadedVersion` to answer a request; raises ModelNotFound or ModelUnavailable."""
        with self._lock:
            model = self._model(name)
            if version is None:
                if not model.loaded:
                    raise ModelUnavailable(f"model '{name}' has no loaded version{self._why(model)}")
                return model.loaded[max(model.loaded)]
            loaded = model.loaded.get(version)
            if loaded is None:
                status = model.statuses.get(version)
                state = f" (state {status.state}{': ' + status.error if status.error else ''})" if status else ""
                raise ModelNotFound(f"version {version} of model '{name}' is not loaded{state}")
            return loaded

    def status(self, name, version=None):
        """Returns TF Serving's `model_version_status` list, newest version first."""
        with self._lock:
            model = self._model(name)
            statuses = sorted(model.statuses.values(), key=lambda status: -status.number)
            if version is not None:
                statuses = [status for status in statuses if status.number == version]
                if not statuses:
                    raise ModelNotFound(f"version {version} of model '{name}' was never loaded")
            return [status.as_json() for status in statuses]

    def _model(self, name):
        model = self._models.get(name)
        if model is None:
            raise ModelNotFound(f"model '{name}' not found under the model base path")
        return model

    @staticmethod
    def _why(model):
        if not model.statuses:
            return " yet: no complete version directory (NAME/VERSION/ with saved_model.pb and variables/)"
        latest = model.statuses[max(model.statuses)]
        return f": version {latest.number} is {latest.state}" + (f" ({latest.error})" if latest.error else "")
