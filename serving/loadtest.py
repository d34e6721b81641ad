"""`keras-tasks loadtest`: a bounded load test of the model server against in-process SavedModel calls.

Three modes, measured in one run with the same request, each sent `--requests` times by `--concurrency` concurrent
callers: the SavedModel's signature called in this process from threads; a server started on loopback without
batching, over HTTP; a second server with server-side batching. The modes take turns in `--rounds` interleaved
rounds, so that other load on the machine falls on all of them alike; everything stops at `--max-seconds`. Each
mode reports throughput, p50/p99 latency and errors, and the servers' figures also as ratios to in-process ones.
"""

import asyncio
import base64
import itertools
import json
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import aiohttp
import numpy as np
import tensorflow as tf

from keras_tasks.serving import models
from keras_tasks.serving import payload

_LISTENING = re.compile(r"listening on (http://\S+)")


def _request_body(signature, args):
    names = list(signature.inputs)
    spec = signature.inputs[names[0]]
    if len(names) != 1 or spec.dtype != tf.string:
        raise SystemExit(f"loadtest: needs a signature with one string input, {signature.name} has {names}")
    if names[0].endswith("_bytes"):
        if not args.image:
            raise SystemExit(f"loadtest: input '{names[0]}' takes encoded images: pass --image FILE")
        with open(args.image, "rb") as file:
            value = {"b64": base64.b64encode(file.read()).decode("ascii")}
    else:
        value = args.text
    body = {"instances": [value] * args.instances}
    if args.signature_name != "serving_default":
        body["signature_name"] = args.signature_name
    return body


def _summary(mode, latencies, errors, seconds):
    latencies_ms = np.asarray(latencies) * 1000.0
    done = len(latencies)
    return {
        "mode": mode,
        "requests": done + errors,
        "errors": errors,
        "seconds": round(seconds, 3),
        "throughput_rps": round(done / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": round(float(np.percentile(latencies_ms, 50)), 3) if done else None,
        "p99_ms": round(float(np.percentile(latencies_ms, 99)), 3) if done else None,
    }


# === One round of each mode ===


def in_process_round(signature, arrays, requests, concurrency, deadline):
    """Calls the signature `requests` times from `concurrency` threads; returns (latencies, errors, seconds)."""
    counter = itertools.count()
    latencies, failures = [], []
    lock = threading.Lock()

    def worker():
        mine, errors = [], 0
        while next(counter) < requests and time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                signature.call(arrays)
                mine.append(time.perf_counter() - start)
            except Exception:  # counted, like a failed HTTP request
                errors += 1
        with lock:
            latencies.extend(mine)
            failures.append(errors)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, sum(failures), time.perf_counter() - start


async def http_round(post, requests, concurrency, deadline):
    """Sends `requests` requests from `concurrency` coroutines; returns (latencies, errors, seconds)."""
    counter = itertools.count()
    latencies, errors = [], []

    async def worker():
        while next(counter) < requests and time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                status, _ = await post()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                status = None
            if status == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors.append(status)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, len(errors), time.perf_counter() - start


class ServerProcess:
    """`python -m keras_tasks.serving` on a free loopback port, stopped with SIGTERM.

    Starting returns at once; `wait()` returns once it listens, with `url` set.

    Args:
        model_base_path: passed as --model-base-path.
        extra_args: more command-line options, e.g. `["--max-batch-size", "16"]`.
    """

    def __init__(self, model_base_path, extra_args=()):
        command = [sys.executable, "-m", "keras_tasks.serving", "--model-base-path", os.fspath(model_base_path),
                   "--host", "127.0.0.1", "--port", "0", *extra_args]
        environment = dict(os.environ)
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.url = None
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, text=True, env=environment)
        self._lines = queue.Queue()
        threading.Thread(target=lambda: [self._lines.put(line) for line in self.process.stdout], daemon=True).start()

    def wait(self, timeout=180.0):
        deadline = time.monotonic() + timeout
        while self.url is None:
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                line = ""
            match = _LISTENING.search(line)
            self.url = match.group(1) if match else None
            if self.url is None and self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.url is None and time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start in {timeout:.0f}s:\n{self.log_tail()}")
        return self

    def log_tail(self, characters=3000):
        self.log.seek(0)
        return self.log.read()[-characters:]

    def stop(self, timeout=60.0):
        """Sends SIGTERM and returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


async def _server_stats(session, url, model):
    async with session.get(f"{url}/v1/models") as response:
        listed = {entry["name"]: entry for entry in (await response.json())["models"]}
    return listed.get(model, {}).get("batching", {}).get("serving_default")


async def measure(args, signature, arrays, body, urls):
    """Runs the modes in interleaved rounds; returns {mode: (latencies, errors, seconds)} and the first answers."""
    data = json.dumps(body).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=60)
    sessions = {mode: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency), timeout=timeout)
                for mode in urls}
    try:
        posts, first = {}, {}
        for mode, url in urls.items():
            async def post(session=sessions[mode], url=f"{url}/v1/models/{args.model}:predict"):
                async with session.post(url, data=data, headers=headers) as response:
                    return response.status, await response.read()

            status, answer = await post()
            if status != 200:
                raise RuntimeError(f"{mode}: the server answered {status}: {answer[:500]!r}")
            first[mode] = json.loads(answer)
            await asyncio.gather(*(post() for _ in range(4 * args.concurrency)))  # warm up connections and model
            posts[mode] = post
        for _ in range(10):
            signature.call(arrays)

        modes = ["in-process", *urls]
        totals = {mode: ([], 0, 0.0) for mode in modes}
        rounds = max(1, min(args.rounds, args.requests))
        deadline = time.perf_counter() + args.max_seconds
        for index in range(rounds):
            share = args.requests // rounds + (index < args.requests % rounds)
            for mode in modes[index % len(modes):] + modes[: index % len(modes)]:  # each mode goes first in turn
                if mode == "in-process":
                    result = await loop.run_in_executor(
                        None, in_process_round, signature, arrays, share, args.concurrency, deadline
                    )
                else:
                    result = await http_round(posts[mode], share, args.concurrency, deadline)
                latencies, errors, seconds = totals[mode]
                totals[mode] = (latencies + result[0], errors + result[1], seconds + result[2])
        stats = {mode: await _server_stats(sessions[mode], url, args.model) for mode, url in urls.items()}
        return totals, first, stats
    finally:
        for session in sessions.values():
            await session.close()


# === Report ===


def _with_ratios(results):
    base = results[0]
    for result in results[1:]:
        for key in ("throughput_rps", "p50_ms", "p99_ms"):
            if result[key] is not None and base[key]:
                result[key.split("_")[0] + "_ratio"] = round(result[key] / base[key], 3)
    return results


def markdown_table(results):
    columns = (
        ("mode", "mode"), ("requests", "requests"), ("errors", "errors"), ("throughput (req/s)", "throughput_rps"),
        ("p50 (ms)", "p50_ms"), ("p99 (ms)", "p99_ms"), ("throughput ÷ in-process", "throughput_ratio"),
        ("p50 ÷ in-process", "p50_ratio"), ("p99 ÷ in-process", "p99_ratio"),
        ("examples per model call", "examples_per_model_call"),
    )
    rows = ["| " + " | ".join(title for title, _ in columns) + " |", "| --- |" + " ---: |" * (len(columns) - 1)]
    for result in results:
        rows.append("| " + " | ".join(str(result.get(key, "")) for _, key in columns) + " |")
    return "\n".join(rows)


def _close(first, reference):
    """Whether the server's first answer has the in-process probabilities (None when there are none)."""
    predictions = first["predictions"][0]
    if not isinstance(predictions, dict) or "probabilities" not in predictions:
        return None
    return bool(np.allclose(predictions["probabilities"], reference["probabilities"][0], atol=1e-5))


def _write_json(path, report):
    """Keeps one report per model name in `{"runs": {NAME: report}}`, so runs on several models share a file."""
    runs = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as file:
                runs = json.load(file).get("runs", {})
        except (OSError, ValueError, AttributeError):
            runs = {}
    runs[report["model"]] = report
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        json.dump({"runs": runs}, file, indent=2)
        file.write("\n")


def main(args):
    """Measures the three modes, prints the table and returns 0 when no request failed."""
    manager = models.ModelManager(args.model_base_path, settle_seconds=0.0)
    manager.poll()
    servable = manager.get(args.model)
    signature = servable.signatures.get(args.signature_name)
    if signature is None:
        raise SystemExit(f"loadtest: {args.model} has no signature {args.signature_name!r}")
    body = _request_body(signature, args)
    arrays, _, _ = payload.decode_request(body, signature)
    reference = signature.call(arrays)

    print(f"loadtest: {args.model} version {servable.version}, {args.requests} requests x {args.concurrency} "
          f"concurrent, {args.instances} example(s) each", flush=True)
    # Both servers start (and import TensorFlow) together, then take turns with the in-process calls.
    batch_flags = ["--max-batch-size", str(args.max_batch_size), "--batch-timeout-ms", str(args.batch_timeout_ms)]
    servers = {
        "server": ServerProcess(args.model_base_path),
        "server + batching": ServerProcess(args.model_base_path, batch_flags),
    }
    try:
        urls = {mode: server.wait().url for mode, server in servers.items()}
        totals, first, stats = asyncio.run(measure(args, signature, arrays, body, urls))
    finally:
        exit_statuses = {mode: server.stop() for mode, server in servers.items()}
    results = [_summary(mode, *totals[mode]) for mode in totals]
    for result in results[1:]:
        result["server_exit_status"] = exit_statuses[result["mode"]]
        calls = stats[result["mode"]]  # None without batching: one call per request
        result["examples_per_model_call"] = (
            round(calls["examples"] / max(1, calls["calls"]), 2) if calls else float(args.instances)
        )
    agreement = {mode: _close(answer, reference) for mode, answer in first.items()}
    _with_ratios(results)

    report = {
        "model": args.model,
        "version": servable.version,
        "signature_name": args.signature_name,
        "requests_per_mode": args.requests,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "examples_per_request": args.instances,
        "max_batch_size": args.max_batch_size,
        "batch_timeout_ms": args.batch_timeout_ms,
        "server_matches_in_process": agreement,
        "p99_goal_met": {result["mode"]: result.get("p99_ratio", 99) <= 2.0 for result in results[1:]},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
                    "platform": platform.platform(), "load_average_at_start": list(os.getloadavg())},
        "results": results,
    }
    print(markdown_table(results))
    print(f"server answers match in-process outputs: {agreement}; p99 <= 2x in-process: {report['p99_goal_met']}")
    if args.json:
        _write_json(args.json, report)
    return 0 if all(result["errors"] == 0 for result in results) else 1
