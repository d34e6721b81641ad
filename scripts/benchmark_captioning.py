"""Image-captioning benchmark: does the whole pipeline learn (COCO-mini), and how fast is the exported `caption` endpoint.

    python -m keras_tasks.scripts.benchmark_captioning --data-dir $KERAS_TASKS_DATA --out runs/benchmark_captioning

Rows (each is kept in benchmarks/results/captioning.json as soon as it is measured, and
docs/benchmarks_captioning.md is rendered from that file):

- `coco_mini_fit`: Show, Attend and Tell trained through `base.train` on COCO-MINI's 80 training images
  (400 captions), frozen random-init CNN features cached (no ImageNet weights offline), the best epoch by
  training loss; then BLEU-1..4 (sacreBLEU, all 5 references) of greedy and beam-3 captions of those same
  training images (target: BLEU-4 >= 0.5, i.e. the model can fit what it sees), and of the held-out
  val2017 images (no target: 80 images teach no general captioner).
- `caption_speed`: images per second of the exported `caption` endpoint on this CPU, greedy and beam 3,
  batches of real COCO JPEGs (decoding and resizing in the graph included).
"""

import argparse
import json
import os
import sys
import time

from keras_tasks.scripts.benchmark_rows import RowsFile

RESULTS = os.path.join("benchmarks", "results", "captioning.json")
DOC = os.path.join("docs", "benchmarks_captioning.md")
ROWS = RowsFile(RESULTS, lambda results: render(results))
TARGET_TRAIN_BLEU_4 = 0.5
FIT_SETTINGS = [
    "model.cache_features=true", "model.dropout=0.1", "model.decoder_dim=256", "model.embedding_dim=128",
    "model.attention_dim=128", "train.learning_rate=0.003", "train.monitor=loss",
]


def render(results):
    rows = results["rows"]
    lines = [
        "# Image-captioning benchmarks",
        "",
        "Written by `python -m keras_tasks.scripts.benchmark_captioning` from `benchmarks/results/captioning.json`;",
        "each row says the machine it ran on and its load average (2 cores shared by several jobs). BLEU is sacreBLEU corpus BLEU against every reference caption of an",
        "image (lower-cased words), given as a fraction (Xu et al.'s Flickr8k BLEU-4 of 19.5 is 0.195 here).",
        "",
        "| row | what | result | target |",
        "|---|---|---|---|",
    ]
    if "coco_mini_fit" in rows:
        r = rows["coco_mini_fit"]
        train, beam = r["train_greedy"], r["train_beam"]
        verdict = "met" if train["bleu_4"] >= TARGET_TRAIN_BLEU_4 else "**not met**"
        lines.append(
            f"| COCO-mini, {r['epochs_run']} epochs ({r['train_seconds'] / 60:.1f} min) | BLEU-4 of the captions of "
            f"the 80 training images, greedy (beam 3) | **{train['bleu_4']:.3f}** ({beam['bleu_4']:.3f}) "
            f"| >= {TARGET_TRAIN_BLEU_4}: {verdict} |"
        )
        lines.append(
            f"| same model | BLEU-1/2/3/4 on training images, greedy | "
            f"{' / '.join(format(train['bleu_' + str(n)], '.3f') for n in range(1, 5))} | - |"
        )
        validation = r["validation"]
        lines.append(
            f"| same model | BLEU-1/4 on {r['validation_images']} held-out val2017 images, greedy | "
            f"{validation['bleu_1']:.3f} / {validation['bleu_4']:.3f} | none (80 training images) |"
        )
    if "caption_speed" in rows:
        r = rows["caption_speed"]
        searches = {"greedy": "greedy", "beam_3": "beam 3", "one_word": "one word only (decode, resize, encoder)"}
        lines.append("| | images/s below: the fastest of the calls (the median in brackets) | | |")
        for search, title in searches.items():
            if search in r:
                lines.append(
                    f"| exported `caption` endpoint, {title} | images/s on CPU, batches of {r['batch']} COCO JPEGs "
                    f"({r['image_size']} model input, {1 if search == 'one_word' else r['max_length']} words at most) "
                    f"| **{r[search]:.1f}** (median {r.get(search + '_median', float('nan')):.1f}) | - |"
                )
    lines += [
        "",
        "Anchors: Xu et al. (2015) report Flickr8k BLEU-4 19.5 (soft attention) and 21.3 (hard attention) with an",
        "ImageNet-trained encoder. Neither the Flickr8k images nor ImageNet weights are available offline here;",
        "docs/captioning.md gives the Flickr8k recipe for a machine with a network.",
        "",
        "Rows and their settings:",
        "",
        "```json",
        json.dumps(rows, indent=2, sort_keys=True),
        "```",
        "",
    ]
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    with open(DOC, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def coco_mini_fit(args):
    from keras_tasks.tasks import base

    run_dir = os.path.join(args.out, "coco_mini")
    load = round(os.getloadavg()[0], 1)
    settings = FIT_SETTINGS + [f"train.epochs={args.epochs}"]
    config = base.resolve_config(
        "image_captioning", {"data.dataset": "coco_captions_mini", "data.data_dir": args.data_dir},
        overrides=["train.verbose=2", *settings],
    )
    start = time.perf_counter()
    metrics = base.train("image_captioning", config, run_dir)
    task, _ = base.load_run(run_dir)
    task.restore(os.path.join(run_dir, "assets"))
    model = base.load_trained_model(run_dir)
    splits = task.load_data()
    greedy = task.evaluate_split(model, splits, "train")
    train_beam = dict(zip((f"bleu_{n}" for n in range(1, 5)), _bleu_of(task, model, splits, "train", 3)))
    samples = task.generate_captions(model, splits, "train")[:5]
    ROWS.save_row("coco_mini_fit", {
        "command": "keras-tasks train image_captioning --model show_attend_tell --dataset coco_captions_mini "
                   + " ".join(f"--set {s}" for s in settings),
        "epochs_run": metrics["training"]["epochs_run"],
        "train_seconds": metrics["training"]["train_seconds"],
        "wall_seconds": round(time.perf_counter() - start, 1),
        "load_average_before": load,
        "train_greedy": {k: round(v, 4) for k, v in greedy.items()},
        "train_beam": {k: round(v, 4) for k, v in train_beam.items()},
        "validation": {k: round(v, 4) for k, v in metrics["validation"].items() if k.startswith("bleu")},
        "validation_images": len(splits["validation"]),
        "test": {k: round(v, 4) for k, v in metrics["test"].items() if k.startswith("bleu")},
        "train_samples": [{"image": os.path.basename(p), "caption": c, "reference": refs[0]}
                          for p, c, refs in zip(splits["train"].image_paths, samples, splits["train"].captions)],
    })
    return run_dir


def _bleu_of(task, model, splits, split, beam_size):
    from keras_tasks.tasks.bleu import corpus_bleu_orders as corpus_bleu
    from keras_tasks.tasks.image_captioning import caption_words

    hypotheses = task.generate_captions(model, splits, split, beam_size)
    references = [[" ".join(caption_words(c)) for c in refs] for refs in splits[split].captions]
    return corpus_bleu(hypotheses, references)


def caption_speed(args, run_dir):
    import tensorflow as tf

    from keras_tasks.tasks import base

    path = base.export(run_dir, "captioner_bench", base_dir=os.path.join(args.out, "saved_models"))
    caption = tf.saved_model.load(path).signatures["caption"]
    folder = os.path.join(args.data_dir, "coco_captions_mini", "val2017")
    names = sorted(os.listdir(folder))[: args.batch]
    images = tf.constant([open(os.path.join(folder, n), "rb").read() for n in names])
    row = {"batch": len(names), "repeats": args.repeats, "max_length": 20}
    task, _ = base.load_run(run_dir)
    row["image_size"] = "x".join(str(s) for s in task.config.data.image_size)
    row["load_average_before"] = round(os.getloadavg()[0], 1)  # the machine is shared: how busy it was
    # `one_word`: decoding, resizing and the encoder, and a single decoder step: what the search adds is the rest.
    for name, beam_size, max_length in (("greedy", 1, 20), ("beam_3", 3, 20), ("one_word", 1, 1)):
        inputs = dict(image_bytes=images, beam_size=tf.fill([len(names)], beam_size),
                      max_length=tf.fill([len(names)], max_length))
        caption(**inputs)  # warm up
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            caption(**inputs)["caption"].numpy()
            seconds.append(time.perf_counter() - start)
        # The machine is shared: the fastest call is the least disturbed one; the median says how noisy it was.
        row[name] = len(names) / min(seconds)
        row[f"{name}_median"] = len(names) / sorted(seconds)[len(seconds) // 2]
    ROWS.save_row("caption_speed", row)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("KERAS_TASKS_DATA"))
    parser.add_argument("--out", default=os.path.join("runs", "benchmark_captioning"))
    parser.add_argument("--only", nargs="*", default=["fit", "speed"], help="rows: fit, speed (speed needs a fit run)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32, help="images per call of the speed test")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--render", action="store_true", help="only re-render the markdown from the JSON")
    args = parser.parse_args(argv)
    if args.render:
        render(ROWS.load())
        return 0
    if not args.data_dir:
        sys.exit("give --data-dir or set KERAS_TASKS_DATA")
    run_dir = os.path.join(args.out, "coco_mini")
    if "fit" in args.only:
        coco_mini_fit(args)
    if "speed" in args.only:
        caption_speed(args, run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
