"""Reproduce the NER results table on CoNLL-2003 (a benchmark, not a test).

    python -m keras_tasks.scripts.benchmark_ner [--rows softmax,crf,crf_glove] [--epochs N] [--set KEY=VALUE ...]
    python -m keras_tasks.scripts.benchmark_ner --timing-only

Trains each row through the same `keras-tasks train sequence_tagging` path a user runs (best epoch on eng.testa
by entity F1, scored on eng.testb), then times training steps of the softmax BiLSTM and the BiLSTM-CRF (same
features, same batches) alternately in one process, so both see the same machine load. Writes
`docs/benchmarks_ner.md` and `benchmarks/results/ner.json`. Runs are resumable: a finished row is read back from
its run directory; rows measured by earlier invocations are kept.
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_tasks.scripts.benchmark_text_classification import machine  # noqa: E402

TASK = "sequence_tagging"
ROWS = {
    "softmax": {"model": "bilstm", "flags": {}, "target": 80.0,
                "label": "BiLSTM + char-CNN + casing, softmax, random embeddings"},
    "crf": {"model": "bilstm_crf", "flags": {}, "target": 84.0,
            "label": "BiLSTM + char-CNN + casing, CRF, random embeddings"},
    "crf_glove": {"model": "bilstm_crf", "flags": {"model.embeddings_path": "glove_subset/glove.6B.50d.subset.txt"},
                  "target": 86.0, "label": "BiLSTM + char-CNN + casing, CRF, GloVe 6B 50d subset (5,050 words)"},
}
ANCHORS = [
    ("Ma & Hovy 2016, BiLSTM-CNN-CRF, random embeddings", 80.76),
    ("Ma & Hovy 2016, BiLSTM-CNN-CRF, GloVe 100d", 91.21),
    ("Lample et al. 2016, LSTM-CRF, pretrained vectors", 90.94),
    ("keras-io ner_transformers (validation F1)", 67.94),
]


def run_row(name, runs_dir, data_dir, epochs, overrides):
    from keras_tasks.tasks import base

    spec = ROWS[name]
    flags = {"model.name": spec["model"], "data.dataset": "conll2003", "data.data_dir": data_dir}
    for key, value in spec["flags"].items():
        flags[key] = os.path.join(data_dir, value) if key == "model.embeddings_path" else value
    if epochs:
        flags["train.epochs"] = epochs
    config = base.resolve_config(TASK, flags, None, overrides)
    run_dir = os.path.join(runs_dir, name)
    command = f"keras-tasks train {TASK} --model {spec['model']} --dataset conll2003"
    if "model.embeddings_path" in spec["flags"]:
        command += f" --embeddings $KERAS_TASKS_DATA/{spec['flags']['model.embeddings_path']}"
    if epochs:
        command += f" --epochs {epochs}"
    command += "".join(f" --set {o}" for o in overrides)
    start = time.perf_counter()
    metrics = base.train(TASK, config, run_dir)
    test = metrics["test"]
    return {
        "row": name,
        "label": spec["label"],
        "command": command,
        "target": spec["target"],
        "test_f1": round(100 * test["f1"], 2),
        "test_precision": round(100 * test["precision"], 2),
        "test_recall": round(100 * test["recall"], 2),
        "test_f1_per_type": {k[3:]: round(100 * v, 2) for k, v in test.items() if k.startswith("f1_")},
        "validation_f1": round(100 * metrics["validation"]["f1"], 2),
        "epochs_run": metrics["training"].get("epochs_run"),
        "train_seconds": metrics["training"].get("train_seconds"),
        "epoch_seconds": _epoch_seconds(run_dir),
        "wall_seconds_this_invocation": round(time.perf_counter() - start, 1),
    }


def _epoch_seconds(run_dir):
    from keras_tasks.scripts.benchmark_rows import history

    return [round(float(row["epoch_seconds"]), 1) for row in history(run_dir) if row.get("epoch_seconds")]


def step_timing(data_dir, steps=40, rounds=3, overrides=()):
    """Seconds per training step of the softmax BiLSTM and the BiLSTM-CRF, measured alternately on the same batches."""
    import keras

    from keras_tasks.tasks import base
    from keras_tasks.tasks.sequence_tagging import SequenceTaggingTask

    import tempfile

    timings = {"bilstm": [], "bilstm_crf": []}
    models = {}
    with tempfile.TemporaryDirectory() as assets:
        for name in timings:
            config = base.resolve_config(TASK, {"model.name": name, "data.data_dir": data_dir}, None, overrides)
            task = SequenceTaggingTask(config)
            splits = task.load_data()
            if not models:
                task.adapt(splits, assets)
            task.restore(assets)
            keras.utils.set_random_seed(0)
            model = task.build_model()
            model.compile(**task.compile_args())
            dataset = task.make_dataset(splits, "train", training=True).repeat()
            model.fit(dataset, steps_per_epoch=5, epochs=1, verbose=0)  # tracing
            models[name] = (model, dataset)
        for _ in range(rounds):
            for name, (model, dataset) in models.items():
                start = time.perf_counter()
                model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
                timings[name].append((time.perf_counter() - start) / steps)
    softmax = statistics.median(timings["bilstm"])
    crf = statistics.median(timings["bilstm_crf"])
    return {
        "steps_per_round": steps,
        "rounds": rounds,
        "seconds_per_step": {k: [round(v, 4) for v in vs] for k, vs in timings.items()},
        "median_seconds_per_step": {"bilstm": round(softmax, 4), "bilstm_crf": round(crf, 4)},
        "crf_over_softmax": round(crf / softmax, 3),
        "target_ratio": 1.5,
    }


def write_outputs(results, timing, info, md_path, json_path):
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump({"machine": info, "rows": results, "timing": timing}, f, indent=2, sort_keys=True)
        f.write("\n")
    lines = [
        "# NER benchmark: CoNLL-2003 English (entity-level F1, conlleval rules via seqeval)",
        "",
        "Written by `python -m keras_tasks.scripts.benchmark_ner`. Best epoch chosen on eng.testa by entity F1; "
        "figures are eng.testb (test) unless marked.",
        "",
        f"Machine: {info['processor']}, {info['cpus']} CPUs (shared with other jobs), TensorFlow {info['tensorflow']}, "
        f"Keras {info['keras']} ({info['backend']}), GPU: {', '.join(info['gpu']) or 'none'}.",
        "",
        "| row | command | epochs | test P | test R | test F1 | PER | LOC | ORG | MISC | valid F1 | goal | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results.values():
        per = row["test_f1_per_type"]
        met = "yes" if row["test_f1"] >= row["target"] else "no"
        lines.append(
            f"| {row['label']} | `{row['command']}` | {row['epochs_run']} | {row['test_precision']:.2f} | "
            f"{row['test_recall']:.2f} | **{row['test_f1']:.2f}** | {per.get('PER', 0):.2f} | {per.get('LOC', 0):.2f} | "
            f"{per.get('ORG', 0):.2f} | {per.get('MISC', 0):.2f} | {row['validation_f1']:.2f} | ≥ {row['target']:.0f} | {met} |"
        )
    if not results:
        lines.append("| (no training row measured yet: run the script without `--timing-only`) |||||||||||||")
    lines += ["", "Epoch wall times (seconds, first epoch includes tracing):", ""]
    for row in results.values():
        lines.append(f"- {row['row']}: {row['epoch_seconds']} (total {row['train_seconds']} s)")
    if timing:
        ratio = timing["crf_over_softmax"]
        lines += [
            "",
            "## CRF cost",
            "",
            f"Training steps of the softmax BiLSTM and the BiLSTM-CRF (same features, same batches of 32 sentences), "
            f"{timing['rounds']} alternating rounds of {timing['steps_per_round']} steps in one process: median "
            f"{timing['median_seconds_per_step']['bilstm']:.4f} s vs {timing['median_seconds_per_step']['bilstm_crf']:.4f} s "
            f"per step, **CRF / softmax = {ratio:.2f}×** (goal ≤ 1.5×: {'met' if ratio <= 1.5 else 'not met'}).",
        ]
    lines += ["", "## Published anchors", ""]
    lines += [f"- {name}: {value}" for name, value in ANCHORS]
    lines.append("")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows of {', '.join(ROWS)}")
    parser.add_argument("--epochs", type=int, help="epochs per row (default: the task's)")
    parser.add_argument("--set", action="append", default=[], help="config override for every row")
    parser.add_argument("--runs-dir", default="runs/benchmark_ner")
    parser.add_argument("--data-dir", default=os.environ.get("KERAS_TASKS_DATA"))
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--md", default="docs/benchmarks_ner.md")
    parser.add_argument("--json", default="benchmarks/results/ner.json")
    args = parser.parse_args(argv)
    from keras_tasks.pipelines.data_dir import resolve

    data_dir = resolve(args.data_dir or "~/keras_tasks_data")
    previous = {}
    if os.path.exists(args.json):
        with open(args.json, encoding="utf-8") as f:
            previous = json.load(f)
    results = dict(previous.get("rows", {}))
    timing = previous.get("timing")
    info = machine()
    if not args.timing_only:
        for name in [r for r in args.rows.split(",") if r]:
            results[name] = run_row(name, args.runs_dir, data_dir, args.epochs, args.set)
            write_outputs(results, timing, info, args.md, args.json)
    if not args.no_timing:
        timing = step_timing(data_dir, overrides=args.set)
    write_outputs(results, timing, info, args.md, args.json)
    print(json.dumps({"rows": results, "timing": timing}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
