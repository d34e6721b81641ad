"""Length bucketing, measured: IMDB BiLSTM + attention training throughput with and without it, in one run.

    python -m keras_tasks.scripts.benchmark_bucketing [--data-dir DIR] [--examples 1000]

Both variants use the task's own pipeline (`make_dataset`: tokenised once, cached, shuffled, padded to
each batch's longest text) and model; the only difference is `data.bucket_boundaries`, which groups
texts of similar length before batching. Each variant trains two epochs on the first `--examples`
training reviews; the second epoch is timed (the first one traces the model and fills the cache).
Writes `docs/benchmarks_bucketing.md` and `benchmarks/results/bucketing.json`.
"""

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after the log level is set)
import numpy as np  # noqa: E402

from keras_tasks.scripts.benchmark_text_classification import machine  # noqa: E402
from keras_tasks.tasks import base  # noqa: E402
from keras_tasks.tasks import config as config_lib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOUNDARIES = (100, 150, 200, 250, 300, 400)


def padding_stats(dataset):
    """Real tokens and padded positions in one epoch of batches."""
    tokens = positions = batches = 0
    for token_ids, _ in dataset.as_numpy_iterator():
        tokens += int(np.count_nonzero(token_ids))
        positions += token_ids.size
        batches += 1
    return {"batches": batches, "tokens": tokens, "padded_positions": positions,
            "padding_fraction": round(1 - tokens / positions, 3)}


def measure(task, splits, boundaries, epochs=2):
    config = task.config
    variant = base.get_task_class(task.name)(
        config_lib.replace_path(config, "data.bucket_boundaries", tuple(boundaries))
    )
    variant.vectorizer, variant.labels, variant.pretrained = task.vectorizer, task.labels, task.pretrained
    dataset = variant.make_dataset(splits, "train", training=True)
    stats = padding_stats(dataset)
    keras.utils.set_random_seed(config.train.seed)
    model = variant.build_model()
    model.compile(**variant.compile_args(stats["batches"]))
    clock = base.EpochTimer()
    history = model.fit(dataset, epochs=epochs, callbacks=[clock], verbose=0)
    examples = variant.num_examples(splits, "train")
    return {
        "bucket_boundaries": list(boundaries),
        "examples_per_second": round(examples / clock.epoch_seconds[-1], 1),
        "epoch_seconds": [round(s, 2) for s in clock.epoch_seconds],
        "final_loss": round(float(history.history["loss"][-1]), 4),
        **stats,
    }


def write_results(results, json_path, md_path):
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    off, on = results["without_bucketing"], results["with_bucketing"]
    m = results["machine"]
    where = f"{m['processor']} ({m['cpus']} CPUs), TensorFlow {m['tensorflow']}, Keras {m['keras']}"
    lines = [
        "# Length bucketing: IMDB BiLSTM + attention",
        "",
        f"Machine: {where}. Command: `{results['command']}` (wall time {results['wall_seconds']:.0f} s).",
        "",
        f"Training throughput of the BiLSTM + attention classifier on the first {results['train_examples']} IMDB"
        f" training reviews (batch {results['batch_size']}, texts cut at {results['max_length']} tokens), the"
        " task's own pipeline and model, both variants in one run; the second of two epochs is timed. The machine"
        " is shared: absolute figures move with its load, the ratio of the two rows is the result.",
        "",
        "| batching | examples/s | epoch seconds | batches | padding (share of positions) |",
        "|---|---:|---:|---:|---:|",
        f"| padded to each batch's longest text | {off['examples_per_second']:.1f} | {off['epoch_seconds'][-1]:.1f}"
        f" | {off['batches']} | {off['padding_fraction']:.1%} |",
        f"| bucketed by length ({', '.join(map(str, on['bucket_boundaries']))}) | {on['examples_per_second']:.1f}"
        f" | {on['epoch_seconds'][-1]:.1f} | {on['batches']} | {on['padding_fraction']:.1%} |",
        "",
        f"Speed-up from bucketing: x{results['speedup']:.2f}. Switch: `--set data.bucket_boundaries=[100,150,200,250,300,400]`"
        " (empty, the default, is off).",
        "",
    ]
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("KERAS_TASKS_DATA"))
    parser.add_argument("--examples", type=int, default=1000, help="training reviews used (default 1000)")
    parser.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "bucketing.json"))
    parser.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks_bucketing.md"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    overrides = {"model.name": "bilstm_attention", "data.dataset": "imdb", "data.max_examples": args.examples}
    if args.data_dir:
        overrides["data.data_dir"] = os.path.abspath(args.data_dir)
    config = base.resolve_config("text_classification", overrides)
    task = base.get_task_class("text_classification")(config)
    splits = task.load_data()
    with tempfile.TemporaryDirectory() as assets_dir:
        task.adapt(splits, assets_dir)
        task.restore(assets_dir)
    without = measure(task, splits, ())
    print(f"without bucketing: {without}", flush=True)
    with_buckets = measure(task, splits, BOUNDARIES)
    print(f"with bucketing:    {with_buckets}", flush=True)
    results = {
        "machine": machine(),
        "command": "python -m keras_tasks.scripts.benchmark_bucketing"
        + (f" --examples {args.examples}" if args.examples != 1000 else ""),
        "train_examples": task.num_examples(splits, "train"),
        "batch_size": config.train.batch_size,
        "max_length": config.data.max_length,
        "without_bucketing": without,
        "with_bucketing": with_buckets,
        "speedup": round(with_buckets["examples_per_second"] / without["examples_per_second"], 3),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    write_results(results, args.json, args.markdown)
    print(f"wrote {args.markdown} and {args.json}")


if __name__ == "__main__":
    main()
