"""Reproduce the image classification results table (a benchmark, not a test).

    python -m keras_tasks.scripts.benchmark_vision [--rows lenet5_mnist,cnn_mnist,resnet20_cifar10] [--speed]

Trains every row through the same path as `keras-tasks train image_classification`
and records test accuracy, wall time, training throughput and, for MNIST, the time
until the validation accuracy first reaches 99%. `--speed` also measures ResNet-20
training throughput with and without `--mixed-precision` and `--jit`. Writes
`docs/benchmarks_vision.md` and `benchmarks/results/vision.json`. Finished rows are
read back from their run directories, so an interrupted benchmark resumes.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after the log level is set)

from keras_tasks.scripts.benchmark_text_classification import machine  # noqa: E402

TASK = "image_classification"
ROWS = {
    "lenet5_mnist": {
        "model": "lenet5",
        "dataset": "mnist",
        "epochs": 20,
        "set": [],
        "target": 99.05,
        "target_source": "LeCun et al. (1998): LeNet-5, 0.95% test error",
    },
    "cnn_mnist": {
        "model": "cnn",
        "dataset": "mnist",
        "epochs": 15,
        "set": ["model.augmentation=shift:2,rotate:8,zoom:0.08"],
        "target": 99.6,
        "target_source": "issue: best MNIST model",
    },
    "resnet20_cifar10": {
        "model": "resnet20",
        "dataset": "cifar10",
        "epochs": 30,
        "set": [],
        "target": 91.25,
        "target_source": "He et al. (2016), ResNet-20 on full CIFAR-10 (8.75% error); not comparable on the subset",
    },
}
# (label, extra flags): ResNet-20 training throughput on the CIFAR-10 data.
SPEED_VARIANTS = (
    ("float32", {}),
    ("--mixed-precision", {"train.mixed_precision": True}),
    ("--jit", {"train.jit_compile": True}),
    ("--mixed-precision --jit", {"train.mixed_precision": True, "train.jit_compile": True}),
)


class EpochClock(keras.callbacks.Callback):
    """Seconds since the start of training and validation accuracy at the end of every epoch."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.epochs = []

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epochs.append(
            {"epoch": epoch + 1, "seconds": round(time.perf_counter() - self.start, 1),
             "val_accuracy": round(float(logs.get("val_accuracy", float("nan"))), 5)}
        )
        with open(self.path, "w", encoding="utf-8") as f:
            json.dump(self.epochs, f, indent=1)


def command_line(model, dataset, epochs, overrides, flags=""):
    sets = "".join(f" --set {o}" for o in overrides)
    return f"keras-tasks train {TASK} --model {model} --dataset {dataset} --epochs {epochs}{flags}{sets}"


def run_row(name, runs_dir, data_dir, extra):
    from keras_tasks.tasks import base

    spec = ROWS[name]
    overrides = spec["set"] + extra
    flags = {"model.name": spec["model"], "data.dataset": spec["dataset"], "train.epochs": spec["epochs"],
             "data.data_dir": data_dir}
    config = base.resolve_config(TASK, flags, None, overrides)
    run_dir = os.path.join(runs_dir, name)
    clock_path = os.path.join(run_dir, "epoch_clock.json")
    os.makedirs(run_dir, exist_ok=True)
    metrics = base.train(TASK, config, run_dir, callbacks=[EpochClock(clock_path)])
    with open(clock_path, encoding="utf-8") as f:
        clock = json.load(f)
    reached = [e["seconds"] for e in clock if e["val_accuracy"] >= 0.99]
    with open(os.path.join(run_dir, "assets", "image_spec.json"), encoding="utf-8") as f:
        origin = json.load(f)["origin"]
    model = base.load_trained_model(run_dir)
    accuracy = 100 * metrics["test"]["accuracy"]
    full_cifar = "cifar10_subset" not in origin
    target = spec["target"] if spec["dataset"] != "cifar10" or full_cifar else None
    result = {
        "row": name,
        "model": spec["model"],
        "dataset": spec["dataset"] if full_cifar else "cifar10 subset (4,000 train / 1,000 test)",
        "parameters": int(model.count_params()),
        "train_examples": metrics["training"]["train_examples"],
        "test_accuracy": round(accuracy, 2),
        "best_validation_accuracy": round(100 * max(e["val_accuracy"] for e in clock), 2),
        "target": target,
        "target_source": spec["target_source"],
        "met": None if target is None else accuracy >= target,
        "epochs": config.train.epochs,
        "train_seconds": metrics["training"]["train_seconds"],
        "examples_per_second": metrics["training"]["examples_per_second"],
        "seconds_to_99_validation": reached[0] if reached and spec["dataset"] == "mnist" else None,
        "epochs_to_99_validation": next((e["epoch"] for e in clock if e["val_accuracy"] >= 0.99), None),
        "command": command_line(spec["model"], spec["dataset"], spec["epochs"], overrides),
        "run_dir": run_dir,
    }
    print(json.dumps(result), flush=True)
    return result


def run_speed(runs_dir, data_dir, max_examples, epochs):
    """ResNet-20 training examples/s (epochs after the first) per precision/XLA variant."""
    from keras_tasks.tasks import base

    results = []
    for label, extra in SPEED_VARIANTS:
        flags = {"model.name": "resnet20", "data.dataset": "cifar10", "data.data_dir": data_dir,
                 "data.max_examples": max_examples, "train.epochs": epochs, **extra}
        # A token validation split: the epoch time is then almost all training.
        config = base.resolve_config(TASK, flags, None, ["train.verbose=0", "data.validation_fraction=0.01"])
        run_dir = os.path.join(runs_dir, "speed-" + label.replace("--", "").replace(" ", "_"))
        metrics = base.train(TASK, config, run_dir)
        results.append({
            "variant": label,
            "examples_per_second": metrics["training"]["examples_per_second"],
            "train_examples": metrics["training"]["train_examples"],
            "epochs": epochs,
            "command": command_line("resnet20", "cifar10", epochs, [], f" --max-examples {max_examples}"
                                    + ("" if label == "float32" else " " + label)),
        })
        print(json.dumps(results[-1]), flush=True)
    return results


def write_outputs(rows, speed, info, md_path, json_path):
    os.makedirs(os.path.dirname(json_path) or ".", exist_ok=True)
    os.makedirs(os.path.dirname(md_path) or ".", exist_ok=True)
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump({"machine": info, "accuracy": rows, "speed": speed}, f, indent=2)
        f.write("\n")
    gpu = ", ".join(info["gpu"]) or "none (no GPU was available to these runs; all figures are CPU figures)"
    lines = [
        "# Image classification benchmarks",
        "",
        f"Produced by `python -m keras_tasks.scripts.benchmark_vision` (raw numbers in `{json_path}`).",
        "",
        f"Machine: {info['processor']}, {info['cpus']} CPU cores (shared with other jobs while measured, so "
        f"times are upper bounds), {info['platform']}; TensorFlow {info['tensorflow']}, Keras {info['keras']} "
        f"({info['backend']} backend); GPU: {gpu}.",
        "",
        "Test accuracy (%) on the standard test split (MNIST: 10,000 digits). The best epoch is picked on a "
        "validation split held out from the end of the training data (10%), so the models train on 54,000 MNIST "
        "digits, or 3,600 CIFAR images. Time to 99% is the wall time from the start of training until the "
        "validation accuracy first reached 99% (validation included).",
        "",
        "| model | dataset | params | test acc. | target | met | best val. | epochs | train time (s) "
        "| train ex/s | time to 99% val. (s) | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "n/a" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['parameters']:,} | {r['test_accuracy']:.2f} | "
            f"{r['target'] if r['target'] is not None else 'n/a'} | {met} | {r['best_validation_accuracy']:.2f} | "
            f"{r['epochs']} | {r['train_seconds']:.0f} | {r['examples_per_second']} | "
            f"{r['seconds_to_99_validation'] if r['seconds_to_99_validation'] is not None else '-'} | "
            f"`{r['command']}` |"
        )
    lines += ["", "Targets: " + "; ".join(f"{r['model']}: {r['target_source']}" for r in rows) + "."]
    if speed:
        base_rate = speed[0]["examples_per_second"]
        lines += [
            "",
            "## ResNet-20 training throughput: mixed precision and XLA",
            "",
            f"Training examples per second on {speed[0]['train_examples']} CIFAR-10 images, epochs after the "
            "first (tracing and compilation excluded). On a CPU, float16 arithmetic is emulated and XLA's "
            "convolutions are not faster than oneDNN's, so these flags are for GPUs; no GPU was available here.",
            "",
            "| variant | train ex/s | vs float32 | command |",
            "|---|---|---|---|",
        ]
        for s in speed:
            ratio = s["examples_per_second"] / base_rate if base_rate else float("nan")
            lines.append(f"| {s['variant']} | {s['examples_per_second']} | {ratio:.2f} | `{s['command']}` |")
    lines.append("")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated: " + ",".join(ROWS))
    parser.add_argument("--runs-dir", default=os.path.join("runs", "benchmark_vision"))
    parser.add_argument("--data-dir", help="default: $KERAS_TASKS_DATA")
    parser.add_argument("--set", action="append", default=[], help="config override for every row")
    parser.add_argument("--speed", action="store_true", help="also measure --mixed-precision / --jit throughput")
    parser.add_argument("--speed-examples", type=int, default=1024)
    parser.add_argument("--speed-epochs", type=int, default=3)
    parser.add_argument("--markdown", default=os.path.join("docs", "benchmarks_vision.md"))
    parser.add_argument("--json", default=os.path.join("benchmarks", "results", "vision.json"))
    args = parser.parse_args(argv)
    rows = [run_row(name, args.runs_dir, args.data_dir, args.set) for name in filter(None, args.rows.split(","))]
    speed = run_speed(args.runs_dir, args.data_dir, args.speed_examples, args.speed_epochs) if args.speed else []
    write_outputs(rows, speed, machine(), args.markdown, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
