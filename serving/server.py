"""`keras-tasks serve`: TF Serving's REST API for every model under a model base path, on aiohttp.

Endpoints (TF Serving's, so the same clients work against both):
  GET  /v1/models/NAME[/versions/V]            version status
  GET  /v1/models/NAME[/versions/V]/metadata   signatures: inputs and outputs with dtypes and shapes
  POST /v1/models/NAME[/versions/V]:predict    {"instances": [...]} or {"inputs": ...}
and two of its own: GET /v1/models lists the models for the demo page served at GET /.
Errors are `{"error": "..."}`: 400 bad request, 404 unknown model/version/endpoint, 413 body too large, 503 no
version loaded yet, 500 a model failure (logged with a request id; the answer names only the id). SIGTERM and
SIGINT stop accepting connections and let in-flight requests finish.
"""

import asyncio
import concurrent.futures
import json
import logging
import os
import secrets
import signal
import threading

import tensorflow as tf
from aiohttp import web

from keras_tasks.serving import batching
from keras_tasks.serving.options import ServerConfig, config_from_args
from keras_tasks.serving import models
from keras_tasks.serving import payload

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
_STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
_API_HINT = "the API is GET /v1/models/NAME[/versions/V][/metadata] and POST /v1/models/NAME[/versions/V]:predict"


class _HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _json(body, status=200):
    return web.Response(text=json.dumps(body, separators=(",", ":")), status=status, content_type="application/json")


def _error(status, message):
    return _json({"error": message}, status)


@web.middleware
async def _errors_as_json(request, handler):
    try:
        return await handler(request)
    except payload.BadRequest as error:
        return _error(400, str(error))
    except models.ModelNotFound as error:
        return _error(404, str(error))
    except models.ModelUnavailable as error:
        return _error(503, str(error))
    except _HTTPError as error:
        return _error(error.status, str(error))
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[_CONFIG].max_body_bytes
        return _error(413, f"the request body is larger than the limit of {limit} bytes (--max-body-bytes)")
    except web.HTTPNotFound:
        return _error(404, f"no such endpoint: {request.method} {request.path}; {_API_HINT}")
    except web.HTTPMethodNotAllowed as error:
        allowed = ", ".join(sorted(error.allowed_methods))
        return _error(405, f"{request.method} is not allowed on {request.path}; use {allowed}")
    except web.HTTPException as error:
        return _error(error.status, error.reason)
    except Exception:  # one failing request must never take the server down
        # The exception's text may hold paths, hostnames or model internals: it goes to the log, not the client.
        request_id = secrets.token_hex(8)
        logger.exception("request %s: %s %s failed", request_id, request.method, request.path)
        return _error(500, f"internal error (request id {request_id}); the server's log has the details")


# === Routing ===


def _parse_path(tail, method):
    """Splits `NAME[/versions/V][/metadata][:verb]` into (name, version or None, "status"|"metadata"|"predict")."""
    path, _, verb = tail.partition(":")
    parts = path.split("/")
    name, rest = parts[0], parts[1:]
    try:
        models.check_model_name(name)
    except ValueError as error:
        raise payload.BadRequest(str(error)) from None
    version = None
    if rest[:1] == ["versions"] and len(rest) >= 2:
        if not models.VERSION_NAME.fullmatch(rest[1]):
            raise payload.BadRequest(f"invalid version {rest[1]!r}: a version is a non-negative integer")
        version, rest = int(rest[1]), rest[2:]
    if method == "GET" and not verb and rest in ([], ["metadata"]):
        return name, version, "metadata" if rest else "status"
    if method == "POST" and not rest and verb:
        if verb != "predict":
            raise payload.BadRequest(f"unsupported method ':{verb}': this server answers ':predict'")
        return name, version, "predict"
    raise _HTTPError(404, f"no such endpoint: {method} /v1/models/{tail}; {_API_HINT}")


# === Handlers ===


async def _index(request):
    return web.Response(
        text=request.app[_PAGE],
        content_type="text/html",
        headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "img-src 'self' data:",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def _list_models(request):
    manager = request.app[_MANAGER]
    listed = []
    for name in manager.names():
        try:
            entry = {"name": name, "model_version_status": manager.status(name)}
        except models.ModelNotFound:  # removed since names() was read
            continue
        try:
            servable = manager.get(name)
        except (models.ModelNotFound, models.ModelUnavailable):
            servable = None
        if servable is not None:
            entry.update(
                version=str(servable.version),
                signatures={key: _signature_summary(signature) for key, signature in servable.signatures.items()},
                labels=servable.labels,
                metrics=servable.metrics,
                signature_defaults=servable.signature_defaults,
            )
            if servable.batchers:
                entry["batching"] = {
                    key: {"calls": batcher.calls, "examples": batcher.examples}
                    for key, batcher in servable.batchers.items()
                }
        listed.append(entry)
    return _json({"models": listed})


async def _get(request):
    name, version, endpoint = _parse_path(request.match_info["tail"], "GET")
    manager = request.app[_MANAGER]
    if endpoint == "status":
        return _json({"model_version_status": manager.status(name, version)})
    servable = manager.get(name, version)
    return _json(
        {
            "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {
                "signature_def": {
                    "signature_def": {key: _signature_def(sig) for key, sig in servable.signatures.items()}
                },
                "assets_extra": {
                    "labels": servable.labels,
                    "config": servable.config,
                    "metrics": servable.metrics,
                    "signature_defaults": servable.signature_defaults,
                },
            },
        }
    )


async def _predict(request):
    name, version, _ = _parse_path(request.match_info["tail"], "POST")
    app = request.app
    servable = app[_MANAGER].get(name, version)
    body = _parse_body(await request.read())
    signature_name = body.get("signature_name") or DEFAULT_SIGNATURE
    if not isinstance(signature_name, str):
        raise payload.BadRequest("'signature_name' must be a string")
    signature = servable.signatures.get(signature_name)
    if signature is None:
        raise payload.BadRequest(
            f"unknown signature {signature_name!r}: model '{name}' version {servable.version} has "
            f"{sorted(servable.signatures)}"
        )
    arrays, rows, row_format = payload.decode_request(body, signature, app[_LIMITS])
    try:
        outputs = await _run(app, servable, signature, arrays, rows)
    except tf.errors.InvalidArgumentError as error:
        raise payload.BadRequest(f"the model could not process the input: {_op_error_message(error)}") from None
    return _json(payload.encode_response(outputs, rows, row_format))


def _op_error_message(error):
    # TensorFlow wraps the op's own message in graph context and stack lines; keep the op's words.
    context = ("Graph execution error", "Detected at node", "<stack traces", "[[")
    lines = [line for line in error.message.splitlines() if line.strip() and not line[0].isspace()]
    useful = [line.strip() for line in lines if not line.startswith(context)]
    return (useful or lines or [type(error).__name__])[-1][:300]


def _parse_body(raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise payload.BadRequest(f"the request body is not valid UTF-8 (byte {error.start}); send UTF-8 JSON") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise payload.BadRequest(f"malformed JSON: {error}") from None
    except RecursionError:
        raise payload.BadRequest("malformed JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise payload.BadRequest('the request body must be a JSON object such as {"instances": [...]}')
    unknown = sorted(set(body) - {"signature_name", "instances", "inputs"})
    if unknown:
        raise payload.BadRequest(
            f"unknown field(s) {unknown}: a request has 'instances' or 'inputs' and optionally 'signature_name'"
        )
    return body


async def _run(app, servable, signature, arrays, rows):
    config = app[_CONFIG]
    if config.max_batch_size <= 0:
        return await asyncio.get_running_loop().run_in_executor(app[_EXECUTOR], signature.call, arrays)
    batcher = servable.batchers.get(signature.name)
    if batcher is None:
        batcher = servable.batchers[signature.name] = batching.Batcher(
            signature.call, config.max_batch_size, config.batch_timeout_ms / 1000.0, app[_EXECUTOR]
        )
    return await batcher.submit(arrays, rows)


def _shape(spec):
    return [-1 if size is None else size for size in spec.shape.as_list()]


def _signature_summary(signature):
    def describe(specs):
        return {name: {"dtype": payload.dtype_name(spec.dtype), "shape": _shape(spec)} for name, spec in specs.items()}

    return {"inputs": describe(signature.inputs), "outputs": describe(signature.outputs)}


def _signature_def(signature):
    def tensor_info(spec, name):
        dims = [{"size": str(size), "name": ""} for size in _shape(spec)]
        shape = {"dim": dims, "unknown_rank": False}
        return {"dtype": payload.dtype_name(spec.dtype), "tensor_shape": shape, "name": name}

    return {
        "inputs": {name: tensor_info(spec, name) for name, spec in signature.inputs.items()},
        "outputs": {name: tensor_info(spec, name) for name, spec in signature.outputs.items()},
        "method_name": "tensorflow/serving/predict",
    }


# === Application ===

_MANAGER = web.AppKey("manager", models.ModelManager)
_CONFIG = web.AppKey("config", ServerConfig)
_LIMITS = web.AppKey("limits", payload.Limits)
_EXECUTOR = web.AppKey("executor", concurrent.futures.Executor)
_PAGE = web.AppKey("page", str)


def make_app(manager, config, executor):
    """The aiohttp application answering for `manager`'s models."""
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[_errors_as_json])
    app[_MANAGER] = manager
    app[_CONFIG] = config
    app[_LIMITS] = payload.Limits(config.max_instances, config.max_string_bytes, config.max_image_pixels)
    app[_EXECUTOR] = executor
    with open(os.path.join(_STATIC, "index.html"), encoding="utf-8") as file:
        app[_PAGE] = file.read()
    app.router.add_get("/", _index)
    app.router.add_get("/v1/models", _list_models)
    app.router.add_get("/v1/models/{tail:.+}", _get)
    app.router.add_post("/v1/models/{tail:.+}", _predict)
    return app


def manager_of(app):
    """The ModelManager behind an application made by `make_app` (e.g. `ServerThread(...).app`)."""
    return app[_MANAGER]


async def serve(config, stop=None, on_ready=None, handle_signals=True):
    """Serves until `stop` (an asyncio.Event) is set or, with `handle_signals`, SIGTERM/SIGINT arrives.

    `on_ready(url, app)` is called once the port is open and the models found at start are loaded.
    """
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    manager = models.ModelManager(config.model_base_path, config.poll_seconds)
    executor = concurrent.futures.ThreadPoolExecutor(max(1, config.num_threads), thread_name_prefix="predict")
    await loop.run_in_executor(None, manager.poll)
    manager.start()
    app = make_app(manager, config, executor)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=config.shutdown_timeout)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, config.host, config.port).start()
        except OSError as error:
            raise OSError(error.errno, f"cannot listen on {config.host}:{config.port}: {error.strerror}") from None
        if handle_signals:
            for number in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(number, stop.set)
        host, port = runner.addresses[0][:2]
        url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        logger.info("serving %s on %s (models: %s)", config.model_base_path, url, ", ".join(manager.names()) or "none")
        if on_ready is not None:
            on_ready(url, app)
        await stop.wait()
        logger.info("shutting down: finishing in-flight requests")
    finally:
        await runner.cleanup()
        manager.stop()
        executor.shutdown(wait=True)
    logger.info("stopped")


class ServerThread:
    """Runs `serve` on its own event loop in a background thread (for tests and notebooks).

    Example:
    ```python
    with ServerThread(ServerConfig(model_base_path="saved_models", port=0)) as server:
        print(server.url)
    ```
    """

    def __init__(self, config):
        self.config = config
        self.url = None
        self.app = None
        self._ready = threading.Event()
        self._failure = None
        self._thread = threading.Thread(target=self._main, name="model-server", daemon=True)

    def _main(self):
        async def run():
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.config, self._stop, self._on_ready, handle_signals=False)

        try:
            asyncio.run(run())
        except BaseException as error:  # raised by start(), or logged if serving had begun
            if self._ready.is_set():
                logger.exception("the server thread failed")
            self._failure = error
            self._ready.set()

    def _on_ready(self, url, app):
        self.url, self.app = url, app
        self._ready.set()

    def start(self):
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self):
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


# === Command line ===


def main(args):
    """Runs `keras-tasks serve` with parsed arguments until SIGTERM or SIGINT; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_from_args(args)

    def ready(url, _):
        print(f"listening on {url}", flush=True)

    try:
        asyncio.run(serve(config, on_ready=ready))
    except OSError as error:
        logger.error("%s", error.strerror or error)
        return 1
    return 0
