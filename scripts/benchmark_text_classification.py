"""Reproduce the text classification results table (a benchmark, not a test).

    python -m keras_tasks.scripts.benchmark_text_classification [--rows mr,sst2,...] [--models textcnn,...]

Trains every (model, dataset) row through the same `keras-tasks train` path a
user runs (MR by 10-fold cross-validation, the others on their standard test
split), then measures training throughput of the full pipeline from files
against `model.fit` on pre-tokenised in-memory tensors, side by side in one
process. Writes `docs/benchmarks.md` and `benchmarks/results/text_classification.json`.
Runs are resumable: finished rows are read back from their run directories, and
rows measured by earlier invocations are kept in the table.
"""

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (dataset, command dataset, flags): targets are Kim (2014)'s CNN-rand column and the keras-io IMDB 1D CNN.
ROWS = {
    "mr": {"dataset": "mr", "folds": 10, "target": 76.1},
    "sst2": {"dataset": "sst2_phrases", "target": 82.7},
    "sst1": {"dataset": "sst1", "target": 45.0},
    "trec": {"dataset": "trec", "target": 91.2},
    "imdb": {"dataset": "imdb", "target": 86.4, "models": ("textcnn", "bilstm_attention", "fasttext")},
}
MODELS = ("textcnn", "bilstm_attention", "fasttext")  # table order; rows run their own "models" (default: the first two)


def row_models(row):
    return ROWS[row].get("models", MODELS[:2])


def machine():
    import keras
    import tensorflow as tf

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "gpu": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def run_row(model, row, runs_dir, overrides, note=""):
    from keras_tasks.tasks import base

    spec = ROWS[row]
    flags = {"model.name": model, "data.dataset": spec["dataset"]}
    config = base.resolve_config("text_classification", flags, None, overrides)
    run_dir = os.path.join(runs_dir, f"{model}-{row}")
    command = f"keras-tasks train text_classification --model {model} --dataset {spec['dataset']}"
    if spec.get("folds"):
        command += f" --folds {spec['folds']}"
    command += "".join(f" --set {o}" for o in overrides)
    start = time.perf_counter()
    if spec.get("folds"):
        metrics = base.train_cv("text_classification", config, run_dir, spec["folds"])
    else:
        metrics = base.train("text_classification", config, run_dir)
    wall = time.perf_counter() - start
    accuracy = 100 * metrics["test"]["accuracy"]
    result = {
        "model": model,
        "row": row,
        "dataset": spec["dataset"],
        "accuracy": round(accuracy, 2),
        "accuracy_std": round(100 * metrics["test"].get("accuracy_std", 0.0), 2) if spec.get("folds") else None,
        "target": spec["target"],
        "met": accuracy >= spec["target"],
        "epochs": config.train.epochs,
        "train_seconds": metrics.get("train_seconds") or metrics.get("training", {}).get("train_seconds"),
        "wall_seconds_this_invocation": round(wall, 1),
        "command": command,
        "run_dir": run_dir,
        "note": note,
    }
    print(json.dumps(result), flush=True)
    return result


def throughput(model_name, dataset, epochs=5, max_examples=None):
    """Examples/s of model.fit from the file pipeline vs from in-memory token tensors, same model."""
    import keras
    import numpy as np
    import tempfile

    from keras_tasks.tasks import base

    config = base.resolve_config(
        "text_classification",
        {"model.name": model_name, "data.dataset": dataset, "data.max_examples": max_examples},
    )
    task = base.get_task_class("text_classification")(config)
    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as assets:
        splits = task.load_data()
        task.adapt(splits, assets)
        task.restore(assets)
        n = len(splits.texts["train"])
        # In-memory: token ids computed once, padded to the longest example.
        ids = task.vectorizer(splits.texts["train"]).numpy()
        labels = np.asarray(splits.label_ids("train"), "int32")

        batch = config.train.batch_size
        pipeline = task.make_dataset(splits, "train", training=True)
        feeds = {
            "pipeline": lambda m: m.fit(pipeline, epochs=1, verbose=0, shuffle=False),
            "in_memory": lambda m: m.fit(ids, labels, batch_size=batch, epochs=1, verbose=0, shuffle=True),
        }
        models = {}
        for name in feeds:
            models[name] = task.build_model()
            models[name].compile(**task.compile_args())
        seconds = {name: [] for name in feeds}
        # Alternate epochs of the two feeds so machine noise hits both alike; the first
        # epoch of each (tracing, cache fill) is dropped and the median epoch is used.
        for _ in range(epochs + 1):
            for name, fit in feeds.items():
                begin = time.perf_counter()
                fit(models[name])
                seconds[name].append(time.perf_counter() - begin)
        results = {f"{name}_examples_per_second": n / float(np.median(s[1:])) for name, s in seconds.items()}
        results["epoch_seconds"] = {name: [round(x, 2) for x in s] for name, s in seconds.items()}
    pipeline_rate = results["pipeline_examples_per_second"]
    results = {k: round(v, 1) if isinstance(v, float) else v for k, v in results.items()}
    results.update(
        {
            "model": model_name,
            "dataset": dataset,
            "train_examples": n,
            "in_memory_padded_length": int(ids.shape[1]),
            "ratio_pipeline_over_in_memory": round(pipeline_rate / results["in_memory_examples_per_second"], 3),
        }
    )
    print(json.dumps(results), flush=True)
    return results


def write_outputs(results, speed, info, md_path, json_path):
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    os.makedirs(os.path.dirname(md_path), exist_ok=True)
    with open(json_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"machine": info, "accuracy": results, "throughput": speed}, f, indent=2)
    os.replace(json_path + ".tmp", json_path)  # a concurrent invocation never reads a half-written file
    lines = [
        "# Text classification benchmarks",
        "",
        "Produced by `python -m keras_tasks.scripts.benchmark_text_classification` "
        f"(raw numbers in `{json_path}`).",
        "",
        f"Machine: {info['processor']}, {info['cpus']} CPU cores, {info['platform']}; "
        f"TensorFlow {info['tensorflow']}, Keras {info['keras']} ({info['backend']} backend); "
        f"GPU: {', '.join(info['gpu']) or 'none'}.",
        "",
        "Test accuracy (%) on the standard test split; MR is the mean of 10-fold cross-validation (± std over folds).",
        "Targets: Kim (2014) CNN-rand for MR/SST-2/SST-1/TREC; the keras-io 1D CNN for IMDB.",
        "",
        "| model | dataset | accuracy | target | met | max epochs (early stopping, patience 3) | train time (s) | command | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        acc = f"{r['accuracy']:.2f}" + (f" ± {r['accuracy_std']:.2f}" if r.get("accuracy_std") else "")
        lines.append(
            f"| {r['model']} | {r['dataset']} | {acc} | {r['target']} | {'yes' if r['met'] else '**no**'} | "
            f"{r['epochs']} | {r['train_seconds']} | `{r['command']}` | {r.get('note', '')} |"
        )
    missing = [
        f"{m} on {r}" for r in ROWS for m in row_models(r) if not any(x["row"] == r and x["model"] == m for x in results)
    ]
    if missing:
        lines += ["", "Not measured yet (CPU time ran out; rerun the command to add them): " + ", ".join(missing) + "."]
    if speed:
        lines += [
            "",
            "## Input pipeline throughput",
            "",
            "Training examples per second of `model.fit` fed by the full pipeline from files (in-graph "
            "tokenisation, cached, shuffled, padded to each batch's own length) against `model.fit` on "
            "pre-tokenised in-memory arrays (padded to the longest example), same model, same process, "
            "alternating epoch by epoch; the first epoch of each is dropped and the median epoch is used.",
            "",
            "| model | dataset | pipeline ex/s | in-memory ex/s | ratio | in-memory padded length |",
            "|---|---|---|---|---|---|",
        ]
        for s in speed:
            lines.append(
                f"| {s['model']} | {s['dataset']} | {s['pipeline_examples_per_second']:.0f} | {s['in_memory_examples_per_second']:.0f} | "
                f"{s['ratio_pipeline_over_in_memory']:.2f} | {s['in_memory_padded_length']} |"
            )
    lines.append("")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated: " + ",".join(ROWS))
    parser.add_argument("--models", default="", help="comma-separated subset of each row's models (default: all of them)")
    parser.add_argument("--runs-dir", default=os.path.join("runs", "benchmark"))
    parser.add_argument("--set", action="append", default=[], help="config override for every row")
    parser.add_argument("--note", default="", help="a remark stored with each row measured now (e.g. what ran beside it)")
    parser.add_argument("--throughput", default="textcnn:mr,bilstm_attention:mr", help="model:dataset pairs, or ''")
    parser.add_argument("--markdown", default=os.path.join("docs", "benchmarks.md"))
    parser.add_argument("--json", default=os.path.join("benchmarks", "results", "text_classification.json"))
    args = parser.parse_args(argv)

    info = machine()
    wanted = [m for m in args.models.split(",") if m]

    def previous():
        # Rows measured by earlier (or concurrent) invocations stay in the table: read back before every write.
        if not os.path.exists(args.json):
            return [], []
        with open(args.json, encoding="utf-8") as f:
            data = json.load(f)
        return data.get("accuracy", []), data.get("throughput", [])

    def put(items, item, keys):
        items[:] = [i for i in items if any(i[k] != item[k] for k in keys)] + [item]

    results, speed = previous()
    for row in [r for r in args.rows.split(",") if r]:
        for model in [m for m in row_models(row) if not wanted or m in wanted]:
            result = run_row(model, row, args.runs_dir, args.set, args.note)
            results, speed = previous()
            put(results, result, ("model", "row"))
            results.sort(key=lambda r: (list(ROWS).index(r["row"]), MODELS.index(r["model"])))
            write_outputs(results, speed, info, args.markdown, args.json)
    for pair in [p for p in args.throughput.split(",") if p]:
        model, dataset = pair.split(":")
        measured = throughput(model, dataset)
        results, speed = previous()
        put(speed, measured, ("model", "dataset"))
        write_outputs(results, speed, info, args.markdown, args.json)
    write_outputs(*previous(), info, args.markdown, args.json)  # also: re-render only (--rows '' --throughput '')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
