"""Reproduce Kim (2014)'s embedding table for TextCNN: rand / static / non-static / multichannel (a benchmark).

    python -m keras_tasks.scripts.benchmark_embeddings [--datasets mr,sst2,trec] [--folds 10] [--epochs N]

Vectors: word2vec trained with `keras-tasks embeddings train` on the IMDB training reviews (in-domain for MR;
trained first if missing), and the GloVe 6B 50d subset in `$KERAS_TASKS_DATA/glove_subset`. Every cell is a run of
`keras-tasks train text_classification --model textcnn` (MR by k-fold cross-validation, the others on their test
split). Runs are resumable and results are written after each cell, so an interrupted benchmark keeps what it has.
Writes `docs/benchmarks_embeddings.md` and `benchmarks/results/embeddings.json`.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DATASETS = {
    "mr": {"dataset": "mr", "title": "MR"},
    "sst2": {"dataset": "sst2", "title": "SST-2"},
    "trec": {"dataset": "trec", "title": "TREC"},
}
MODES = ("static", "non-static", "multichannel")
# Kim (2014), Table 2, with word2vec trained on 100 billion words of Google News.
KIM = {
    "rand": {"mr": 76.1, "sst2": 82.7, "trec": 91.2},
    "static": {"mr": 81.0, "sst2": 86.8, "trec": 92.8},
    "non-static": {"mr": 81.5, "sst2": 87.2, "trec": 93.6},
    "multichannel": {"mr": 81.1, "sst2": 88.1, "trec": 92.2},
}


def rescaled_glove(path, args, target=0.25):
    """The GloVe subset multiplied so that Kim's bound a = sqrt(3 var) is `target` (his random init's 0.25)."""
    from keras_tasks.pipelines import embeddings
    from keras_tasks.pipelines import word2vec

    vectors = embeddings.load_vectors(path)
    factor = target / embeddings.init_scale(vectors)
    output = os.path.join(args.work_dir, "glove_subset_rescaled.txt")
    if not os.path.exists(output):
        vectors.vectors *= factor
        word2vec.save_vectors(vectors, output)
    return {"name": "glove-rescaled", "path": output, "label": "GLOVE_RESCALED.txt", "factor": factor}


def word2vec_vectors(args):
    """The IMDB word2vec vectors, trained with the `embeddings train` command when not there yet."""
    from keras_tasks.scripts import embeddings_cmd

    path = os.path.join(args.work_dir, f"imdb_word2vec_{args.algorithm}{args.dim}.bin")
    argv = ["embeddings", "train", "--corpus", "imdb", "--algorithm", args.algorithm, "--dim", str(args.dim),
            "--epochs", str(args.w2v_epochs), "--min-count", "5", "--window", "5", "--output", path]
    # The corpus comes from $KERAS_TASKS_DATA, which the command reads by default.
    command = "keras-tasks " + " ".join(argv).replace(path, "VECTORS.bin")
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    if args.data_dir:
        command = command.replace(args.data_dir, "$KERAS_TASKS_DATA")  # no machine paths in the docs
    if not os.path.exists(path):
        start = time.perf_counter()
        if embeddings_cmd.main(argv) != 0:
            raise SystemExit("word2vec training failed")
        print(f"word2vec trained in {time.perf_counter() - start:.0f} s", flush=True)
    return path, command


def run_cell(dataset, mode, vectors, args, fold=None):
    """One training run: a dataset's standard split, or fold `fold` of MR's k-fold split."""
    from keras_tasks.tasks import base

    spec = DATASETS[dataset]
    flags = {"model.name": "textcnn", "data.dataset": spec["dataset"], "model.embedding_mode": mode,
             "data.data_dir": args.data_dir, "train.epochs": args.epochs, "train.verbose": "2"}
    if vectors:
        flags["model.embeddings_path"] = vectors["path"]
    if fold is not None:
        flags.update({"data.folds": args.folds, "data.fold": fold})
    config = base.resolve_config("text_classification", flags, None, [])
    run_dir = os.path.join(args.work_dir, "runs", f"{dataset}-{mode}" + (f"-{vectors['name']}" if vectors else ""))
    if fold is not None:
        run_dir = os.path.join(run_dir, f"fold_{fold}")
    print(f"=== {run_dir}", flush=True)
    metrics = base.train("text_classification", config, run_dir)
    coverage = None
    coverage_path = os.path.join(run_dir, "embedding_coverage.json")
    if vectors and os.path.exists(coverage_path):
        with open(coverage_path, encoding="utf-8") as f:
            report = json.load(f)
        coverage = {key: report[key] for key in ("vocabulary_size", "pretrained", "vocabulary_coverage",
                                                 "token_coverage", "init_scale", "top_missing")}
    return {
        "accuracy": 100 * metrics["test"]["accuracy"],
        "epochs_run": metrics["training"]["epochs_run"],
        "train_seconds": metrics["training"]["train_seconds"],
        "coverage": coverage,
    }


def summarize(dataset, mode, vectors, runs, args):
    """One table cell from its runs (one, or the folds done so far)."""
    accuracies = [run["accuracy"] for run in runs]
    folds = args.folds if dataset == "mr" else None
    command = f"keras-tasks train text_classification --model textcnn --dataset {DATASETS[dataset]['dataset']}"
    if folds:
        command += f" --folds {folds}"
    command += f" --embedding-mode {mode}" + (f" --embeddings {vectors['label']}" if vectors else "")
    command += f" --epochs {args.epochs}"
    result = {
        "dataset": dataset,
        "mode": mode,
        "vectors": vectors["name"] if vectors else None,
        "accuracy": round(statistics.fmean(accuracies), 2),
        "accuracy_std": round(statistics.pstdev(accuracies), 2) if folds else None,
        "folds": folds,
        "folds_run": len(runs) if folds else None,
        "per_fold": [round(a, 2) for a in accuracies] if folds else None,
        "kim": KIM[mode][dataset],
        "epochs_run": [run["epochs_run"] for run in runs],
        "train_seconds": round(sum(run["train_seconds"] for run in runs), 1),
        "coverage": runs[0]["coverage"],
        "command": command,
    }
    print(json.dumps(result), flush=True)
    return result


def markdown(results, meta):
    titles = [DATASETS[d]["title"] for d in meta["datasets"]]
    lines = [
        "# Pretrained embeddings: Kim (2014)'s table for TextCNN",
        "",
        "Test accuracy (%) of TextCNN (filter widths 3, 4, 5; 100 maps each; dropout 0.5; max-norm 3; Adam 1e-3, "
        f"batch 50, at most {meta['epochs']} epochs, stopped after {meta['patience']} without improvement, best "
        f"validation epoch kept) with each embedding mode. MR: {meta['folds']}-fold cross-validation split, mean ± "
        "standard deviation over the folds run (a cell that ran fewer folds than Kim's 10 says how many, "
        "**to fit the CPU time available**)"
        + "; SST-2: sentence-level training set (6,920 sentences; Kim also trained on phrases); TREC: 500-question "
        "test set. Kim's figures, in brackets, used word2vec trained on 100 billion words of Google News.",
        "",
        "Vectors:",
        f"- **word2vec IMDB**: {meta['word2vec']['description']}, trained with `{meta['word2vec']['command']}`.",
        "- **GloVe 50d subset**: the 5,000 most frequent words of GloVe 6B 50d plus 50 listed words (5,050 in all), "
        "`$KERAS_TASKS_DATA/glove_subset/glove.6B.50d.subset.txt`; the full 400,000-word file is not available here.",
        "",
        "| embedding | vectors | " + " | ".join(titles) + " |",
        "|---|---|" + "---|" * len(titles),
    ]
    by_key = {(r["dataset"], r["mode"], r["vectors"]): r for r in results}
    rows = [("rand", None)] + [(mode, name) for name in ("word2vec", "glove") for mode in MODES]
    names = NAMES
    for mode, name in rows:
        cells = []
        for dataset in meta["datasets"]:
            result = by_key.get((dataset, mode, name))
            if result is None:
                cells.append(f"not run [{KIM[mode][dataset]}]")
                continue
            cell = f"{result['accuracy']:.1f}"
            if result["folds"] and result["folds_run"] == 1:
                cell += f" (fold 1 of {result['folds']})"
            elif result["folds"]:
                cell += f" ± {result['accuracy_std']:.1f}"
                if result["folds_run"] < result["folds"]:
                    cell += f" ({result['folds_run']} of {result['folds']} folds)"
            cells.append(f"{cell} [{result['kim']}]")
        lines.append(f"| CNN-{mode} | {names[name]} | " + " | ".join(cells) + " |")
    lines += _goal(by_key)
    lines += _scale_experiment(by_key, meta)
    lines += ["", "## Coverage of the task vocabularies", "",
              "Vocabulary: share of the training vocabulary with a pretrained vector (after lowercasing); tokens: "
              "share of the training tokens. Words without a vector are initialised as Kim did, "
              "U[-a, a] with a = sqrt(3 var) of the pretrained vectors.", "",
              "| dataset | vectors | vocabulary | words with a vector | vocabulary coverage | token coverage | a | "
              "most frequent missing words |",
              "|---|---|---|---|---|---|---|---|"]
    for dataset in meta["datasets"]:
        for name in ("word2vec", "glove"):
            result = next((r for r in results if r["dataset"] == dataset and r["vectors"] == name
                           and r["coverage"]), None)
            if result is None:
                continue
            c = result["coverage"]
            missing = ", ".join(f"{w} ({n})" for w, n in c["top_missing"][:8])
            lines.append(
                f"| {DATASETS[dataset]['title']} | {names[name]} | {c['vocabulary_size']:,} | {c['pretrained']:,} | "
                f"{100 * c['vocabulary_coverage']:.1f}% | {100 * c['token_coverage']:.1f}% | {c['init_scale']:.3f} | "
                f"{missing} |"
            )
    lines += ["", "## How it was run", "",
              f"`python -m keras_tasks.scripts.benchmark_embeddings {meta['argv']}`".replace(" `", "`")
              + f" on {meta['machine']}, "
              f"{meta['date']}. Each cell is one command (run directories hold configs, histories, metrics and "
              "`embedding_coverage.json`):", ""]
    lines += [
        f"- `{r['command']}`"
        + (f" (folds run: {r['folds_run']})" if r["folds"] and r["folds_run"] < r["folds"] else "")
        + f": {r['train_seconds']:,.0f} s of training, epochs run {r['epochs_run']}"
        for r in results
    ]
    if meta.get("notes"):
        lines += ["", "Notes:"] + [f"- {note}" for note in meta["notes"]]
    lines.append("")
    return "\n".join(lines)


NAMES = {
    None: "none (random)",
    "word2vec": "word2vec IMDB 300d",
    "glove": "GloVe 50d subset",
    "glove-rescaled": "GloVe 50d subset, rescaled to a = 0.25",
}


def _scale_experiment(by_key, meta):
    rescaled = [r for (d, m, n), r in by_key.items() if n == "glove-rescaled"]
    if not rescaled:
        return []
    lines = [
        "",
        "## Scale of the pretrained vectors",
        "",
        "GloVe's entries have a variance five times word2vec's (Kim's bound a = sqrt(3 var) is 1.25 against "
        "0.28 for the IMDB word2vec vectors and Kim's 0.25), and Adam moves every weight by about the same "
        "step whatever its scale; words without a vector also get random vectors of GloVe's scale. The same "
        f"GloVe subset multiplied by {meta.get('rescale_factor', 0):.3f} (so a = 0.25; "
        "`align_vectors(..., rescale_to=0.25)` does the same in the library), on the same folds:",
        "",
        "| dataset | embedding | GloVe 50d subset as published | rescaled to a = 0.25 | rand |",
        "|---|---|---|---|---|",
    ]
    for result in rescaled:
        others = [by_key.get((result["dataset"], result["mode"], "glove")), result,
                  by_key.get((result["dataset"], "rand", None))]
        folds = min((len(r["per_fold"]) for r in others if r and r["per_fold"]), default=None)
        cells = [
            "not run" if r is None else f"{statistics.fmean(r['per_fold'][:folds]) if folds else r['accuracy']:.1f}"
            for r in others
        ]
        where = DATASETS[result["dataset"]]["title"] + (f" (first {folds} of {result['folds']} folds)" if folds else "")
        lines.append(f"| {where} | CNN-{result['mode']} | " + " | ".join(cells) + " |")
    return lines


def _goal(by_key):
    """The issue's goal: on MR, non-static beats rand by at least 2 points and reaches 79."""
    rand = by_key.get(("mr", "rand", None))
    if rand is None:
        return []
    lines = ["", "Goal (MR): non-static at least 2 points above rand and at least 79%."]
    for name, title in (("word2vec", "word2vec IMDB"), ("glove", "GloVe 50d subset")):
        tuned = by_key.get(("mr", "non-static", name))
        if tuned is None:
            continue
        gain = tuned["accuracy"] - rand["accuracy"]
        met = gain >= 2 and tuned["accuracy"] >= 79
        lines.append(
            f"- {title}: non-static {tuned['accuracy']:.1f} vs rand {rand['accuracy']:.1f} ({gain:+.1f} points): "
            + ("**met**" if met else "**not met**")
            + ("" if tuned["folds_run"] == tuned["folds"] else f" (on {tuned['folds_run']} of {tuned['folds']} folds)")
        )
    return lines


def write_outputs(results, meta, args):
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
        f.write("\n")
    os.makedirs(os.path.dirname(args.markdown) or ".", exist_ok=True)
    with open(args.markdown, "w", encoding="utf-8") as f:
        f.write(markdown(results, meta))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mr,sst2,trec")
    parser.add_argument("--vectors", default="word2vec,glove", help="which pretrained vectors: word2vec, glove")
    parser.add_argument("--modes", default="rand," + ",".join(MODES))
    parser.add_argument("--folds", type=int, default=10, help="MR cross-validation folds (Kim: 10)")
    parser.add_argument("--max-folds", type=int, default=None, help="run only the first folds of MR's split")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data-dir", default=os.environ.get("KERAS_TASKS_DATA"))
    parser.add_argument("--work-dir", default=os.path.join("runs", "benchmark_embeddings"))
    parser.add_argument("--algorithm", default="skipgram", choices=("cbow", "skipgram"))
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--w2v-epochs", type=int, default=10)
    parser.add_argument("--markdown", default=os.path.join("docs", "benchmarks_embeddings.md"))
    parser.add_argument("--json", default=os.path.join("benchmarks", "results", "embeddings.json"))
    parser.add_argument("--rescale-folds", type=int, default=3,
                        help="MR folds for the rescaled-GloVe experiment (non-static), 0 to skip")
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON results")
    parser.add_argument("--note", action="append", help="with --render: add a note to the results (repeatable)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.render:
        with open(args.json, encoding="utf-8") as f:
            saved = json.load(f)
        saved["meta"]["notes"] = saved["meta"].get("notes", []) + (args.note or [])
        write_outputs(saved["results"], saved["meta"], args)
        return 0
    if not args.data_dir:
        raise SystemExit("set KERAS_TASKS_DATA or pass --data-dir")
    datasets = args.datasets.split(",")
    modes = args.modes.split(",")
    vectors = []
    from keras_tasks.tasks.text_classification import TextClassificationConfig

    meta = {
        "datasets": datasets,
        "folds": args.folds,
        "max_folds": args.max_folds,
        "epochs": args.epochs,
        "patience": TextClassificationConfig().train.early_stopping_patience,
        "argv": " ".join(argv) if argv is not None else " ".join(sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
        "date": datetime.date.today().isoformat(),
    }
    if "word2vec" in args.vectors:
        path, command = word2vec_vectors(args)
        vectors.append({"name": "word2vec", "path": path, "label": "VECTORS.bin"})
        meta["word2vec"] = {"command": command, "description": f"{args.algorithm}, {args.dim} dims, window 5, "
                            f"min count 5, {args.w2v_epochs} epochs on the 25,000 IMDB training reviews"}
    else:
        meta["word2vec"] = {"command": "(not run)", "description": "not used in this run"}
    if "glove" in args.vectors:
        glove_path = os.path.join(args.data_dir, "glove_subset", "glove.6B.50d.subset.txt")
        label = "$KERAS_TASKS_DATA/glove_subset/glove.6B.50d.subset.txt"
        vectors.append({"name": "glove", "path": glove_path, "label": label})
    # MR's first fold for every embedding first, then the other datasets, then MR's other folds: an interrupted
    # benchmark still has a whole table.
    configs = [(m, v) for m, v in [("rand", None)] + [(m, v) for v in vectors for m in MODES] if m in modes]
    cells = [(d, m, v, 0 if d == "mr" else None) for d in datasets for m, v in configs]
    cells.sort(key=lambda cell: cell[0] != "mr")
    extra = []
    if "glove" in args.vectors and "mr" in datasets and "non-static" in modes:
        extra.append(rescaled_glove(glove_path, args))
        meta["rescale_factor"] = extra[0]["factor"]
    folds = range(args.max_folds or args.folds)
    cells += [("mr", "non-static", extra[0], fold) for fold in folds if fold < args.rescale_folds] if extra else []
    cells += [("mr", m, v, fold) for fold in folds[1:] for m, v in configs if "mr" in datasets]
    name_to_vectors = {v["name"]: v for v in vectors + extra}
    runs = {}
    for dataset, mode, vector, fold in cells:
        key = (dataset, mode, vector["name"] if vector else None)
        runs.setdefault(key, []).append(run_cell(dataset, mode, vector, args, fold))
        results = [summarize(d, m, name_to_vectors.get(n), r, args) for (d, m, n), r in runs.items()]
        write_outputs(results, meta, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
