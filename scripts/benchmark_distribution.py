"""Examples/s of one process against two MultiWorkerMirroredStrategy workers on loopback, same global batch.

    python scripts/benchmark_distribution.py [--size 30000] [--hidden 256] [--batch 128] [--epochs 3]

Trains the toy spine task (tests/toy_spine.py: an MLP on random numbers, in memory) through `keras-tasks`'
one training path, via tests/distributed_worker.py, in fresh processes: one process with `--batch` per step, then
two workers of `--batch / 2` each (the same global batch). The figure is the training throughput the run itself
records (`training.examples_per_second`: every epoch after the first, so tracing and the cluster start are out).
Writes benchmarks/results/distribution.json and docs/benchmarks_distribution.md.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from scripts.benchmark_rows import RowsFile  # noqa: E402

WORKER = os.path.join(ROOT, "tests", "distributed_worker.py")
RESULTS = os.path.join(ROOT, "benchmarks", "results", "distribution.json")
TABLE = os.path.join(ROOT, "docs", "benchmarks_distribution.md")


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(run_dir, settings, workers):
    env = {**{k: v for k, v in os.environ.items() if k != "TF_CONFIG"}, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, WORKER, run_dir] + [a for s in settings for a in ("--set", s)]
    if workers == 1:
        processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    else:
        cluster = {"worker": [f"127.0.0.1:{_port()}" for _ in range(workers)]}
        command += ["--set", "train.distribution=multi_worker"]
        processes = [
            subprocess.Popen(command, env={**env, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for i in range(workers)
        ]
    start = time.perf_counter()
    outputs = [p.communicate()[0] for p in processes]
    wall = time.perf_counter() - start
    for p, out in zip(processes, outputs):
        if p.returncode:
            raise SystemExit(f"a worker failed:\n{out[-3000:]}")
    return json.loads(outputs[0].strip().splitlines()[-1]), wall


def render(results):
    lines = [
        "# Distributed training: one process vs two workers",
        "",
        "Written by `scripts/benchmark_distribution.py`. The toy spine task (an MLP on in-memory random numbers) through",
        "the one training path; two `MultiWorkerMirroredStrategy` workers on loopback (127.0.0.1) on the SAME machine,",
        "with the same global batch as the single process. Examples/s is the run's own `training.examples_per_second`",
        "(epochs after the first). Wall time includes process start, TensorFlow import and the cluster handshake.",
        "",
        "| setup | global batch | examples/s | test accuracy | wall (s) | machine | measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in results["rows"].items():
        lines.append(
            f"| {name} | {row['global_batch']} | {row['examples_per_second']} | {row['test_accuracy']} | "
            f"{row['wall_seconds']} | {row['machine']} | {row['measured']} |"
        )
    if "note" in results:
        lines += ["", results["note"]]
    os.makedirs(os.path.dirname(TABLE), exist_ok=True)
    with open(TABLE, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=30000, help="examples over all splits (a third trains)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128, help="global batch")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    rows = RowsFile(RESULTS, render)
    common = [f"data.size={args.size}", f"model.hidden_dim={args.hidden}", f"train.epochs={args.epochs}",
              "train.learning_rate=0.01"]
    for name, workers in (("one process", 1), ("two workers (loopback)", 2)):
        with tempfile.TemporaryDirectory() as folder:
            metrics, wall = _run(os.path.join(folder, "run"), common + [f"train.batch_size={args.batch // workers}"],
                                 workers)
        rows.save_row(name, {
            "workers": workers, "global_batch": args.batch, "examples_per_second": metrics["training"]["examples_per_second"],
            "train_seconds": metrics["training"]["train_seconds"], "test_accuracy": metrics["test"]["accuracy"],
            "wall_seconds": round(wall, 1), "settings": common,
        })


if __name__ == "__main__":
    main()
