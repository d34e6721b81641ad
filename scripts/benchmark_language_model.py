"""Language-model benchmark: Tiny Shakespeare against the keras-io example, generation speed, PTB perplexity.

    python -m keras_tasks.scripts.benchmark_language_model --data-dir $KERAS_TASKS_DATA --out runs/benchmark_lm
    python -m keras_tasks.scripts.benchmark_language_model --only ptb_small --ptb-epochs 13

Rows (each is kept in benchmarks/results/language_model.json as soon as it is measured, and
docs/benchmarks_language_model.md is rendered from that file):

- `shakespeare_side_by_side`: the keras-io `lstm_character_level_text_generation` model (one
  LSTM(128) over one-hot 40-character windows taken every 3 characters, RMSprop 0.01, batch 128)
  trained for its 2 epochs on the same training text, then ours trained for the same wall-clock
  time, in one process; both scored by next-character NLL (nats/char) on the same validation text.
- `shakespeare_budget`: ours trained for `--char-minutes` minutes (the goal: <= 1.55 nats/char in 30).
- `generation_speed`: characters per second of the exported `generate` endpoint against the keras-io
  loop of one `model.predict` per character.
- `ptb_small` (and `ptb_tied`): test perplexity of Zaremba et al.'s small LSTM (and a tied,
  dropout-regularised variant), through `base.train`.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from keras_tasks.scripts.benchmark_rows import RowsFile, history

RESULTS = os.path.join("benchmarks", "results", "language_model.json")
DOC = os.path.join("docs", "benchmarks_language_model.md")
ROWS = RowsFile(RESULTS, lambda results: render(results))


class TimeBudget:
    """A Keras callback that stops training after `seconds` of wall-clock time (checked every batch)."""

    def __new__(cls, seconds):
        import keras

        class _Budget(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                if time.perf_counter() - self.start > seconds:
                    self.model.stop_training = True

        return _Budget()


def load_results():
    return ROWS.load()


def save_row(name, row):
    ROWS.save_row(name, row)


def render(results):
    rows = results["rows"]
    lines = [
        "# Language-model benchmarks",
        "",
        "Written by `python -m keras_tasks.scripts.benchmark_language_model` from",
        "`benchmarks/results/language_model.json`; each row says the machine it ran on.",
        "",
        "| row | what | result | target |",
        "|---|---|---|---|",
    ]
    for key in sorted(k for k in rows if k.startswith("shakespeare_side_by_side")):
        r = rows[key]
        verdict = "met" if r["ours_val_nats"] < r["keras_io_val_nats"] else "**not met**"
        lines.append(
            f"| Tiny Shakespeare, same wall clock ({r['seconds']:.0f} s); ours: {r.get('ours_schedule', 'char preset')} "
            f"| validation nats/char: keras-io example vs ours | {r['keras_io_val_nats']:.3f} vs "
            f"**{r['ours_val_nats']:.3f}** | ours lower: {verdict} |"
        )
    if "shakespeare_budget" in rows:
        r = rows["shakespeare_budget"]
        lines.append(
            f"| Tiny Shakespeare, {r['minutes']:.0f} min of training | validation nats/char (bits/char); nanoGPT's "
            f"validation text | **{r['val_nats']:.3f}** ({r['val_bits']:.3f}); {r.get('nanogpt_val_nats', float('nan')):.3f} "
            f"| <= 1.55: {'met' if r['val_nats'] <= 1.55 else '**not met**'} |"
        )
    if "generation_speed" in rows:
        r = rows["generation_speed"]
        lines.append(
            f"| generation speed | characters/s: exported `generate` vs keras-io's predict-per-character loop | "
            f"**{r['ours_chars_per_second']:.0f}** vs {r['keras_io_chars_per_second']:.1f} "
            f"(**{r['speedup']:.0f}x**) | >= 20x: {'met' if r['speedup'] >= 20 else '**not met**'} |"
        )
    for key, title, target in (("ptb_small", "PTB, Zaremba small", 115.9), ("ptb_tied", "PTB, tied + locked dropout", 105)):
        if key in rows:
            r = rows[key]
            verdict = "met" if r["test_perplexity"] <= target else "**not met**"
            lines.append(
                f"| {title} ({r['epochs_run']} epochs, {r['train_seconds'] / 60:.0f} min) | test (validation) perplexity | "
                f"**{r['test_perplexity']:.1f}** ({r['validation_perplexity']:.1f}) | <= {target}: {verdict} |"
            )
    lines += ["", "Rows and their settings:", "", "```json", json.dumps(rows, indent=2, sort_keys=True), "```", ""]
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    with open(DOC, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))



# === keras-io's character-level example, adapted to a given training text ===


def keras_io_model(vocabulary_size, maxlen=40):
    import keras

    model = keras.Sequential(
        [keras.Input((maxlen, vocabulary_size)), keras.layers.LSTM(128), keras.layers.Dense(vocabulary_size, activation="softmax")]
    )
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(learning_rate=0.01))
    return model


def keras_io_windows(text, chars, maxlen=40, step=3):
    index = {c: i for i, c in enumerate(chars)}
    starts = range(0, len(text) - maxlen, step)
    x = np.zeros((len(starts), maxlen, len(chars)), dtype=bool)
    y = np.zeros((len(starts), len(chars)), dtype=bool)
    for row, start in enumerate(starts):
        for t, char in enumerate(text[start : start + maxlen]):
            x[row, t, index[char]] = 1
        y[row, index[text[start + maxlen]]] = 1
    return x, y


def keras_io_nats(model, text, chars, maxlen=40, batch=2048):
    """Mean NLL of every character of `text` after its first `maxlen`, from the 40 before it."""
    x, y = keras_io_windows(text, chars, maxlen, step=1)
    probabilities = model.predict(x, batch_size=batch, verbose=0)
    return float(-np.mean(np.log(np.maximum(probabilities[y], 1e-12))))


def shakespeare(args):
    from keras_tasks.pipelines import lm_datasets
    from keras_tasks.tasks import base

    corpus = lm_datasets.load_corpus("tinyshakespeare", data_dir=args.data_dir)
    train_text, valid_text = corpus.texts["train"], corpus.texts["validation"]
    chars = sorted(set(train_text))
    valid_text = "".join(c for c in valid_text if c in set(chars))

    if "shakespeare_side_by_side" in args.only:
        import keras

        keras.utils.set_random_seed(0)
        x, y = keras_io_windows(train_text, chars)
        model = keras_io_model(len(chars))
        start = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=2, verbose=2)
        seconds = time.perf_counter() - start
        del x, y
        keras_io_val = keras_io_nats(model, valid_text, chars)
        default_name = "shakespeare_side_by_side" if args.side_epochs == 3 else f"shakespeare_side_by_side_{args.side_epochs}"
        name = args.side_name or default_name
        run_dir = os.path.join(args.out, name)
        config = base.resolve_config(
            "language_model", {"data.dataset": "tinyshakespeare", "data.data_dir": args.data_dir},
            overrides=[f"train.epochs={args.side_epochs}", "train.verbose=2", *args.side_set],
        )
        metrics = base.train("language_model", config, run_dir, callbacks=[TimeBudget(seconds)])
        save_row(name, {
            "ours_schedule": f"char preset, cosine over {args.side_epochs} epochs (stopped by the time budget)"
            + (f", --set {' '.join(args.side_set)}" if args.side_set else ""),
            "seconds": seconds,
            "keras_io_val_nats": keras_io_val,
            "ours_val_nats": metrics["validation"]["nats_per_char"],
            "ours_train_seconds": metrics["training"].get("train_seconds"),
            "ours_config": "language_model char preset, " + json.dumps({"hidden_dim": config.model.hidden_dim, "num_layers": config.model.num_layers, "epochs": config.train.epochs}),
            "note": "keras-io scores each validation character from the 40 before it; ours from the carried stream state",
        })
        if "generation_speed" in args.only:
            generation_speed(args, model, chars, run_dir)

    if "shakespeare_budget" in args.only:
        run_dir = os.path.join(args.out, "shakespeare_budget")
        config = base.resolve_config(
            "language_model", {"data.dataset": "tinyshakespeare", "data.data_dir": args.data_dir},
            overrides=[f"train.epochs={args.char_epochs}", "train.verbose=2"],
        )
        metrics = base.train("language_model", config, run_dir, callbacks=[TimeBudget(args.char_minutes * 60)])
        save_row("shakespeare_budget", {
            "minutes": args.char_minutes,
            "val_nats": metrics["validation"]["nats_per_char"],
            "val_bits": metrics["validation"]["bits_per_char"],
            "test_nats": metrics["test"]["nats_per_char"],
            "nanogpt_val_nats": metrics.get("nanogpt_val", {}).get("nats_per_char"),
            "epochs_run": metrics["training"]["epochs_run"],
            "command": "keras-tasks train language_model --dataset tinyshakespeare "
                       f"--set train.epochs={args.char_epochs} (stopped after {args.char_minutes} min)",
        })


def generation_speed(args, keras_io, chars, run_dir):
    import tensorflow as tf

    from keras_tasks.tasks import base

    path = base.export(run_dir, "shakespeare_bench", base_dir=os.path.join(args.out, "saved_models"))
    generate = tf.saved_model.load(path).signatures["generate"]

    def call(n):
        return generate(prompt=tf.constant(["ROMEO:"]), max_length=tf.constant([n]), temperature=tf.constant([0.8]),
                        top_k=tf.constant([0]), seed=tf.constant([1]))

    call(10)  # warm up
    start = time.perf_counter()
    text = call(500)["generated"].numpy()[0].decode()
    ours = len(text) / (time.perf_counter() - start)

    # keras-io: one model.predict of the last 40 characters per generated character.
    index = {c: i for i, c in enumerate(chars)}
    sentence = list(("ROMEO:" * 7)[:40])
    keras_io.predict(np.zeros((1, 40, len(chars))), verbose=0)
    start = time.perf_counter()
    for _ in range(30):
        x = np.zeros((1, 40, len(chars)))
        for t, char in enumerate(sentence[-40:]):
            x[0, t, index[char]] = 1
        probabilities = keras_io.predict(x, verbose=0)[0].astype("float64")
        sentence.append(chars[int(np.argmax(probabilities))])
    theirs = 30 / (time.perf_counter() - start)
    save_row("generation_speed", {
        "ours_chars_per_second": ours, "keras_io_chars_per_second": theirs, "speedup": ours / theirs,
        "ours": "exported generate endpoint, 500 characters, one call", "keras_io": "30 characters, one model.predict each",
        "sample": text[:200],
    })


def ptb(args, name, overrides):
    from keras_tasks.tasks import base

    run_dir = os.path.join(args.out, name)
    config = base.resolve_config(
        "language_model", {"data.dataset": "ptb", "data.data_dir": args.data_dir},
        overrides=["train.verbose=2", *overrides],
    )
    metrics = base.train("language_model", config, run_dir)
    save_row(name, {
        "validation_per_epoch": validation_per_epoch(run_dir),
        "test_perplexity": metrics["test"]["perplexity"],
        "validation_perplexity": metrics["validation"]["perplexity"],
        "epochs_run": metrics["training"]["epochs_run"],
        "train_seconds": metrics["training"]["train_seconds"],
        "tokens_per_second": metrics["training"]["examples_per_second"],
        "command": "keras-tasks train language_model --dataset ptb " + " ".join(f"--set {o}" for o in overrides),
    })


def validation_per_epoch(run_dir):
    """Validation perplexity after each epoch, from the run's history.csv."""
    return [round(float(row["val_perplexity"]), 1) for row in history(run_dir)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("KERAS_TASKS_DATA"))
    parser.add_argument("--out", default=os.path.join("runs", "benchmark_lm"))
    parser.add_argument("--only", nargs="*", default=["shakespeare_side_by_side", "generation_speed", "shakespeare_budget", "ptb_small", "ptb_tied"])
    parser.add_argument("--side-epochs", type=int, default=3, help="ours: epochs of the schedule in the side-by-side run")
    parser.add_argument("--side-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="ours: config overrides in the side-by-side run (e.g. model.dropout=0)")
    parser.add_argument("--side-name", help="the result row's name (default: by --side-epochs)")
    parser.add_argument("--char-minutes", type=float, default=30.0)
    parser.add_argument("--char-epochs", type=int, default=20)
    parser.add_argument("--ptb-epochs", type=int, default=13)
    parser.add_argument("--tied-epochs", type=int, default=12,
                        help="ptb_tied: epochs (the rate is kept for 7, then halved each epoch)")
    parser.add_argument("--render", action="store_true", help="only re-render the markdown from the JSON")
    args = parser.parse_args(argv)
    if args.render:
        render(load_results())
        return 0
    if not args.data_dir:
        sys.exit("give --data-dir or set KERAS_TASKS_DATA")
    if {"shakespeare_side_by_side", "shakespeare_budget"} & set(args.only):
        shakespeare(args)
    if "ptb_small" in args.only:
        ptb(args, "ptb_small", [f"train.epochs={args.ptb_epochs}"])
    if "ptb_tied" in args.only:
        # Dropout slows learning, so the rate is kept 3 epochs longer than the small preset keeps it.
        ptb(args, "ptb_tied", [f"train.epochs={args.tied_epochs}", "model.tie_weights=true", "model.dropout=0.3",
                               "model.hidden_dim=300", "train.lr_decay_start=7"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
