"""Time to accuracy against the keras-io examples users compare with, side by side in one process (a benchmark).

    python -m keras_tasks.scripts.benchmark_peers [--rows mnist,imdb] [--ours-set mnist:train.epochs=8 ...]

Each row trains the keras-io example's model (written here from its description: same layers, optimizer, batch
size and epochs, on the same files) and then keras-tasks' own default through `keras-tasks train`'s path. Both
clocks start before the data is read; after every epoch the test split is evaluated with the clock paused, so the
figure is training time (data loading included) until the test accuracy first reaches the row's target. The ratio
is ours / keras-io: below 1 is faster. Writes `docs/benchmarks_peers.md` and `benchmarks/results/peers.json`.
"""

import argparse
import json
import os
import re
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after the log level is set)
import numpy as np  # noqa: E402

from keras_tasks.scripts.benchmark_text_classification import machine  # noqa: E402

ROWS = {
    "mnist": {
        "title": "mnist_convnet: time to 99% test accuracy",
        "target": 0.99,
        "peer": "keras-io mnist_convnet (2 conv + dense, Adam, batch 128, 15 epochs)",
        # The small CNN is the fast route to 99%; LeNet-5 (the task's default model) for reference.
        "ours": [{"data.dataset": "mnist", "model.name": "cnn"}, {"data.dataset": "mnist", "model.name": "lenet5"}],
        "task": "image_classification",
    },
    "imdb": {
        "title": "text_classification_from_scratch (IMDB): time to 86% test accuracy",
        "target": 0.86,
        "peer": "keras-io text_classification_from_scratch (20k tokens, 500 steps, 2 strided Conv1D, 3 epochs)",
        "ours": [{"data.dataset": "imdb"}],  # the IMDB default: fasttext
        "task": "text_classification",
    },
}


class Clock:
    """Seconds since `start()`, less the time spent inside `paused()` blocks."""

    def __init__(self):
        self.began = time.perf_counter()
        self.excluded = 0.0

    def elapsed(self):
        return time.perf_counter() - self.began - self.excluded

    def pause(self, fn):
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.excluded += time.perf_counter() - start


class TestEachEpoch(keras.callbacks.Callback):
    """After every epoch, the test accuracy (`evaluate(model)`) with the clock paused, and the clock's reading."""

    def __init__(self, clock, evaluate):
        super().__init__()
        self.clock, self.evaluate, self.epochs = clock, evaluate, []

    def on_epoch_end(self, epoch, logs=None):
        seconds = self.clock.elapsed()
        accuracy = float(self.clock.pause(lambda: self.evaluate(self.model)))
        self.epochs.append({"epoch": epoch + 1, "seconds": round(seconds, 1), "test_accuracy": round(accuracy, 4)})
        print(f"  epoch {epoch + 1}: {seconds:.1f} s, test accuracy {accuracy:.4f}", flush=True)


def summary(epochs, target):
    reached = next((e for e in epochs if e["test_accuracy"] >= target), None)
    return {
        "epochs": epochs,
        "seconds_to_target": reached["seconds"] if reached else None,
        "epoch_at_target": reached["epoch"] if reached else None,
        "final_test_accuracy": epochs[-1]["test_accuracy"] if epochs else None,
        "seconds_total": epochs[-1]["seconds"] if epochs else None,
    }


# === The keras-io examples (their models and settings; data from the same files as ours) ===


def keras_io_mnist(data_dir, max_examples=None, epochs=15):
    from keras_tasks.pipelines.idx import read_idx_pair

    clock = Clock()
    folder = os.path.join(data_dir, "mnist")
    x_train, y_train = read_idx_pair(*(os.path.join(folder, f"train-{k}.gz") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")))
    x_test, y_test = read_idx_pair(*(os.path.join(folder, f"t10k-{k}.gz") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")))
    if max_examples:
        x_train, y_train = x_train[:max_examples], y_train[:max_examples]
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    y_train_1h, y_test_1h = keras.utils.to_categorical(y_train, 10), keras.utils.to_categorical(y_test, 10)
    tester = TestEachEpoch(clock, lambda m: m.evaluate(x_test, y_test_1h, batch_size=1024, verbose=0)[1])
    model.fit(x_train, y_train_1h, batch_size=128, epochs=epochs, validation_split=0.1, callbacks=[tester], verbose=0)
    return tester.epochs


def keras_io_imdb(data_dir, max_examples=None, epochs=3):
    import tensorflow as tf

    from keras_tasks.pipelines.text_datasets import load_text_splits

    clock = Clock()
    splits = load_text_splits("imdb", data_dir=data_dir, max_examples=max_examples)

    def standardize(text):  # the example's: lower case, <br /> and punctuation removed
        text = tf.strings.lower(text)
        text = tf.strings.regex_replace(text, "<br />", " ")
        return tf.strings.regex_replace(text, "[%s]" % re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"), "")

    vectorize = keras.layers.TextVectorization(
        standardize=standardize, max_tokens=20000, output_mode="int", output_sequence_length=500
    )
    vectorize.adapt(tf.data.Dataset.from_tensor_slices(splits.texts["train"]).batch(256))

    def dataset(split):
        labels = np.asarray([splits.label_names.index(label) for label in splits.labels[split]], "float32")
        data = tf.data.Dataset.from_tensor_slices((splits.texts[split], labels)).batch(32)
        return data.map(lambda x, y: (vectorize(x), y)).cache().prefetch(tf.data.AUTOTUNE)

    train, validation, test = dataset("train"), dataset("validation"), dataset("test")
    inputs = keras.Input((None,), dtype="int64")
    x = keras.layers.Embedding(20000, 128)(inputs)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = keras.layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    tester = TestEachEpoch(clock, lambda m: m.evaluate(test, verbose=0)[1])
    model.fit(train, validation_data=validation, epochs=epochs, callbacks=[tester], verbose=0)
    return tester.epochs


PEERS = {"mnist": keras_io_mnist, "imdb": keras_io_imdb}


# === keras-tasks, through the path `keras-tasks train` runs ===


def ours(row, data_dir, overrides, max_examples=None, variant=0):
    from keras_tasks.tasks import base

    spec = ROWS[row]
    flags = dict(spec["ours"][variant], **{"data.data_dir": data_dir, "train.verbose": "0"})
    if max_examples:
        flags["data.max_examples"] = max_examples
    config = base.resolve_config(spec["task"], flags, None, overrides)
    clock = Clock()
    with tempfile.TemporaryDirectory() as run_dir:
        test = {}

        def evaluate(model):
            if not test:  # the vocabulary/labels are in the run's assets once training has begun
                task = base.get_task_class(spec["task"])(config)
                task.restore(os.path.join(run_dir, "assets"))
                test["data"] = task.make_dataset(task.load_data(), "test", training=False)
            return model.evaluate(test["data"], verbose=0, return_dict=True)["accuracy"]

        tester = TestEachEpoch(clock, evaluate)
        base.train(spec["task"], config, run_dir, log=lambda *a: None, callbacks=[tester])
    command = f"keras-tasks train {spec['task']} --model {config.model.name} --dataset {config.data.dataset}"
    return tester.epochs, command + "".join(f" --set {o}" for o in overrides)


# === Table ===


def render(results):
    lines = [
        "# keras-tasks against the keras-io examples: time to accuracy",
        "",
        "Written by `python -m keras_tasks.scripts.benchmark_peers`. Both sides run in one process, one after the",
        "other, on the same files; the clock starts before the data is read and is paused while the test split is",
        "evaluated after each epoch. Ratio = ours / keras-io (below 1 is faster). Goal: at most 0.5 with a final",
        "accuracy at least as high.",
        "",
        "| row | keras-io: time to target (epoch), final | keras-tasks: time to target (epoch), final | ratio | goal |",
        "|---|---|---|---|---|",
    ]

    def cell(s):
        reached = f"{s['seconds_to_target']:.0f} s (epoch {s['epoch_at_target']})" if s["seconds_to_target"] else "not reached"
        return f"{reached}, final {100 * s['final_test_accuracy']:.2f}%"

    for row, r in results["rows"].items():
        peer = r["keras_io"]
        for own in r["keras_tasks"]:
            both = own["seconds_to_target"] and peer["seconds_to_target"]
            ratio = own["seconds_to_target"] / peer["seconds_to_target"] if both else None
            met = ratio is not None and ratio <= 0.5 and own["final_test_accuracy"] >= peer["final_test_accuracy"]
            lines.append(
                f"| {ROWS[row]['title']} | {cell(peer)} | {cell(own)} (`{own['command']}`) | "
                f"{f'{ratio:.2f}' if ratio else '—'} | {'met' if met else '**not met**'} |"
            )
    info = results["machine"]
    lines += ["", f"Machine: {info['platform']}, {info['cpus']} CPUs, TensorFlow {info['tensorflow']}, "
              f"Keras {info['keras']}; measured {results['date']}.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--data-dir", default=os.environ.get("KERAS_TASKS_DATA"))
    parser.add_argument("--max-examples", type=int, help="a quick check of the harness, not a figure")
    parser.add_argument("--peer-epochs", type=int, help="fewer keras-io epochs (quick checks)")
    parser.add_argument("--ours-set", action="append", default=[], metavar="ROW:KEY=VALUE",
                        help="an override for our side of one row, e.g. imdb:train.epochs=2")
    parser.add_argument("--output-dir", default=".")
    args = parser.parse_args(argv)
    json_path = os.path.join(args.output_dir, "benchmarks", "results", "peers.json")
    results = {"rows": {}}
    if os.path.exists(json_path):
        with open(json_path, encoding="utf-8") as f:
            results = json.load(f)
    for row in args.rows.split(","):
        print(f"=== {row}: keras-io", flush=True)
        peer_kwargs = {"epochs": args.peer_epochs} if args.peer_epochs else {}
        peer = PEERS[row](args.data_dir, args.max_examples, **peer_kwargs)
        print(f"=== {row}: keras-tasks", flush=True)
        overrides = [o.split(":", 1)[1] for o in args.ours_set if o.startswith(row + ":")]
        target = ROWS[row]["target"]
        own = []
        for variant in range(len(ROWS[row]["ours"])):
            epochs, command = ours(row, args.data_dir, overrides, args.max_examples, variant)
            own.append(dict(summary(epochs, target), command=command))
        results["rows"][row] = {
            "keras_io": summary(peer, target), "keras_tasks": own, "peer": ROWS[row]["peer"], "target": target,
        }
        results["machine"], results["date"] = machine(), time.strftime("%Y-%m-%d")
        if args.max_examples or args.peer_epochs:
            results["note"] = "quick check (--max-examples/--peer-epochs): not a figure"
        os.makedirs(os.path.dirname(json_path), exist_ok=True)
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        with open(os.path.join(args.output_dir, "docs", "benchmarks_peers.md"), "w", encoding="utf-8") as f:
            f.write(render(results))
        print(render(results))


if __name__ == "__main__":
    main()
