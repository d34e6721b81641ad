"""The one training / evaluation / export path every task runs through.

A task (a `Task` subclass registered with `@register_task`) supplies data,
preprocessing, a model and its serving endpoints; this module does the rest
the same way for all of them:

    source -> preprocess -> batch -> model.fit (checkpoints, resume, TensorBoard,
    early stopping, NaN guard) -> evaluate on the standard test split -> export

Run directory layout (`--run-dir`):

    config.json          the resolved config (a rerun with another config is refused)
    assets/              what the preprocessor learned on the training split (vocabulary, labels)
    backup/              training state for resuming after a kill (removed when training ends)
    best.weights.h5      weights of the best epoch on the validation split
    model.keras          the final model (best weights); its presence marks training as done
    history.csv          one row per epoch
    logs/                TensorBoard
    metrics.json         test (and validation) metrics, timing, throughput
"""

import dataclasses
import json
import os
import shutil
import sys
import time

import keras

from keras_tasks.tasks import config as config_lib

TASKS = {}


def register_task(name):
    """Class decorator: make a `Task` subclass available as `keras-tasks train NAME`."""

    def decorator(cls):
        cls.name = name
        TASKS[name] = cls
        return cls

    return decorator


def get_task_class(name):
    _import_builtin_tasks()
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; available: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def _import_builtin_tasks():
    import importlib

    for module in ("text_classification", "image_classification"):
        try:
            importlib.import_module(f"keras_tasks.tasks.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"keras_tasks.tasks.{module}":
                raise


class Task:
    """Base class of a task. Subclasses fill in data, preprocessing, model and serving.

    Class attributes:
        name: the registry name (set by `@register_task`).
        config_class: a frozen dataclass with `data`, `model` and `train` sections.

    A subclass implements:
        load_data(): raw splits (`"train"`, `"validation"`, `"test"`).
        adapt(splits, assets_dir): fit the preprocessor on the training split, save it.
        restore(assets_dir): load the preprocessor saved by `adapt`.
        make_dataset(splits, split, training): batched `(inputs, targets)` tf.data.
        build_model(): an uncompiled `keras.Model`.
        compile_args(steps_per_epoch): `loss`, `metrics`, `optimizer` for `model.compile`.
        export_endpoints(model): `{name: (tf.function, input_signature)}`, first one
            is `serving_default`.
        label_names(): class names, or None.
    and may override `presets`, `num_examples`, `after_evaluate` and `export_assets`.
    """

    name = None
    config_class = None

    def __init__(self, config):
        self.config = config

    # === Config ===

    @classmethod
    def presets(cls, model=None, dataset=None):
        """Config overrides (`{"section.key": value}`) for a model/dataset pair."""
        return {}

    # === Hooks ===

    def load_data(self):
        raise NotImplementedError

    def adapt(self, splits, assets_dir):
        raise NotImplementedError

    def restore(self, assets_dir):
        raise NotImplementedError

    def make_dataset(self, splits, split, training):
        raise NotImplementedError

    def num_examples(self, splits, split):
        return None

    def build_model(self):
        raise NotImplementedError

    def compile_args(self, steps_per_epoch=None):
        raise NotImplementedError

    def export_endpoints(self, model):
        raise NotImplementedError

    def label_names(self):
        return None

    def after_evaluate(self, model, splits, run_dir):
        """Task-specific reports written after evaluation; returns extra metrics."""
        return {}

    def export_assets(self):
        """Extra files for `assets.extra/`: `{filename: text}`."""
        labels = self.label_names()
        return {"labels.txt": "\n".join(labels) + "\n"} if labels else {}

    # === Shared helpers for subclasses ===

    def make_optimizer(self, steps_per_epoch=None):
        train = self.config.train
        learning_rate = train.learning_rate
        if train.lr_schedule != "constant":
            total = max(1, (steps_per_epoch or 1) * train.epochs)
            warmup = int(total * train.warmup_fraction)
            if train.lr_schedule == "cosine":
                learning_rate = keras.optimizers.schedules.CosineDecay(
                    0.0 if warmup else train.learning_rate,
                    decay_steps=total - warmup,
                    warmup_target=train.learning_rate if warmup else None,
                    warmup_steps=warmup,
                )
            elif train.lr_schedule == "one_cycle":
                learning_rate = OneCycle(train.learning_rate, total, warmup or int(0.3 * total))
            else:
                raise ValueError(f"train.lr_schedule must be constant, cosine or one_cycle, got {train.lr_schedule!r}")
        kwargs = {"learning_rate": learning_rate}
        if train.weight_decay is not None:
            kwargs["weight_decay"] = train.weight_decay
        optimizer = keras.optimizers.get({"class_name": train.optimizer, "config": kwargs})
        return optimizer


@keras.saving.register_keras_serializable(package="keras_tasks")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle learning rate (Smith 2018): linear warm-up to the peak, then cosine down to ~0."""

    def __init__(self, peak, total_steps, warmup_steps):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = max(1, int(warmup_steps))

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.peak * (0.1 + 0.9 * step / self.warmup_steps)
        progress = keras.ops.clip((step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps), 0.0, 1.0)
        cool = self.peak * 0.5 * (1.0 + keras.ops.cos(3.141592653589793 * progress))
        return keras.ops.where(step < self.warmup_steps, warm, cool)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


# === Config resolution ===


def resolve_config(task_name, flags=None, config_file=None, overrides=None):
    """defaults -> presets(model, dataset) -> config file -> common flags -> --set, later wins."""
    task_class = get_task_class(task_name)
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    from_file = config_lib.load_config_file(task_class.config_class(), config_file) if config_file else None
    chosen = from_file or task_class.config_class()
    model = flags.get("model.name", chosen.model.name)
    dataset = flags.get("data.dataset", chosen.data.dataset)
    config = task_class.config_class()
    for key, value in task_class.presets(model, dataset).items():
        config = config_lib.replace_path(config, key, value)
    if config_file:
        config = config_lib.load_config_file(config, config_file)
    for key, value in flags.items():
        config = config_lib.replace_path(config, key, value)
    return config_lib.apply_overrides(config, overrides)


def load_run(run_dir):
    """The task (with its preprocessor restored) and config of a run directory."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json); train first")
    with open(path, encoding="utf-8") as f:
        payload = json.load(f)
    task_class = get_task_class(payload["task"])
    config = config_lib.from_dict(task_class.config_class, payload["config"])
    return task_class(config), payload


# === Training ===


def _setup_precision(train):
    keras.config.set_dtype_policy("mixed_float16" if train.mixed_precision else "float32")


def _verbosity(train):
    if train.verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(train.verbose)


class _Throughput(keras.callbacks.Callback):
    """Wall time and training examples per second of each epoch (first epoch includes tracing)."""

    def __init__(self, examples_per_epoch):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch
        self.epoch_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._start)


def _best_so_far(history_path, monitor):
    """Best monitored value in an earlier (killed) attempt's history, so resuming keeps the true best."""
    if not os.path.exists(history_path):
        return None
    import csv

    with open(history_path, encoding="utf-8") as f:
        values = [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor) not in (None, "")]
    if not values:
        return None
    return min(values) if "loss" in monitor else max(values)


def train(task_name, config, run_dir, log=print, callbacks=()):
    """Train (or resume) a task in `run_dir`, evaluate it on the test split, return the metrics.

    `callbacks` are extra Keras callbacks appended to the standard ones.
    """
    os.makedirs(run_dir, exist_ok=True)
    payload = {"task": task_name, "config": config_lib.to_dict(config)}
    config_path = os.path.join(run_dir, "config.json")
    if os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as f:
            previous = json.load(f)
        if previous != json.loads(json.dumps(payload, default=str)):
            raise ValueError(
                f"{run_dir} holds a run with a different config ({config_path}); "
                "start the new run in another --run-dir, or rerun with the same command to resume"
            )
    else:
        config_lib.write_json(config_path, payload)

    task = get_task_class(task_name)(config)
    metrics_path = os.path.join(run_dir, "metrics.json")
    model_path = os.path.join(run_dir, "model.keras")
    if os.path.exists(model_path) and os.path.exists(metrics_path):
        log(f"{run_dir} is already trained; metrics from {metrics_path}")
        with open(metrics_path, encoding="utf-8") as f:
            return json.load(f)

    train_cfg = config.train
    keras.utils.set_random_seed(train_cfg.seed)
    _setup_precision(train_cfg)
    splits = task.load_data()
    assets_dir = os.path.join(run_dir, "assets")
    if os.path.exists(os.path.join(assets_dir, "COMPLETE")):
        task.restore(assets_dir)  # resuming: the vocabulary must be the one the weights were trained with
    else:
        os.makedirs(assets_dir, exist_ok=True)
        task.adapt(splits, assets_dir)
        open(os.path.join(assets_dir, "COMPLETE"), "w").close()
        task.restore(assets_dir)

    train_ds = task.make_dataset(splits, "train", training=True)
    validation_ds = task.make_dataset(splits, "validation", training=False)
    n_train = task.num_examples(splits, "train")
    steps = train_cfg.steps_per_epoch or (-(-n_train // train_cfg.batch_size) if n_train else None)

    model = task.build_model()
    model.compile(jit_compile=train_cfg.jit_compile, **task.compile_args(steps))
    throughput = _Throughput(n_train)
    history_path = os.path.join(run_dir, "history.csv")
    best_path = os.path.join(run_dir, "best.weights.h5")
    mode = "min" if "loss" in train_cfg.monitor else "max"
    callbacks = [
        keras.callbacks.BackupAndRestore(
            os.path.join(run_dir, "backup"),
            save_freq=train_cfg.backup_every_steps or "epoch",
            double_checkpoint=True,
        ),
        keras.callbacks.ModelCheckpoint(
            best_path,
            monitor=train_cfg.monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=_best_so_far(history_path, train_cfg.monitor),
        ),
        keras.callbacks.CSVLogger(history_path, append=True),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")),
        keras.callbacks.TerminateOnNaN(),
        throughput,
        *callbacks,
    ]
    if train_cfg.early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=train_cfg.monitor, mode=mode, patience=train_cfg.early_stopping_patience
            )
        )
    # The model must be built before BackupAndRestore can load weights into it.
    for inputs, _ in train_ds.take(1):
        model(inputs)
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        validation_data=validation_ds,
        epochs=train_cfg.epochs,
        steps_per_epoch=train_cfg.steps_per_epoch,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles
        verbose=_verbosity(train_cfg),
    )
    train_seconds = time.perf_counter() - start
    if any(not _finite(v) for v in history.history.get("loss", [])):
        raise FloatingPointError(f"training diverged (NaN loss); see {history_path}; lower train.learning_rate")
    if os.path.exists(best_path):
        model.load_weights(best_path)
    _save_atomic(model, model_path)

    metrics = evaluate_model(task, model, splits, run_dir)
    timed = throughput.epoch_seconds[1:] or throughput.epoch_seconds
    metrics["training"] = {
        "epochs_run": len(history.history.get("loss", [])),
        "train_seconds": round(train_seconds, 2),
        "train_examples": n_train,
        "examples_per_second": round(n_train / (sum(timed) / len(timed)), 1) if n_train and timed else None,
        "backend": keras.backend.backend(),
    }
    config_lib.write_json(metrics_path, metrics)
    return metrics


def _finite(value):
    return value == value and value not in (float("inf"), float("-inf"))


def _save_atomic(model, path):
    tmp = path + ".tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)


def evaluate_model(task, model, splits, run_dir):
    results = {}
    for split in ("validation", "test"):
        dataset = task.make_dataset(splits, split, training=False)
        values = model.evaluate(dataset, verbose=0, return_dict=True)
        results[split] = {k: round(float(v), 6) for k, v in values.items()}
    results.update(task.after_evaluate(model, splits, run_dir) or {})
    return results


def load_trained_model(run_dir):
    path = os.path.join(run_dir, "model.keras")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: the run in {run_dir} has not finished training")
    return keras.saving.load_model(path, compile=True)


def evaluate(run_dir):
    """Re-evaluate a trained run on its standard splits; updates and returns metrics.json."""
    if is_cv_run(run_dir):
        return _aggregate_folds(run_dir, [evaluate(d) for d in fold_dirs(run_dir)])
    task, _ = load_run(run_dir)
    _setup_precision(task.config.train)
    task.restore(os.path.join(run_dir, "assets"))
    model = load_trained_model(run_dir)
    splits = task.load_data()
    metrics_path = os.path.join(run_dir, "metrics.json")
    metrics = {}
    if os.path.exists(metrics_path):
        with open(metrics_path, encoding="utf-8") as f:
            metrics = json.load(f)
    metrics.update(evaluate_model(task, model, splits, run_dir))
    config_lib.write_json(metrics_path, metrics)
    return metrics


# === Cross-validation ===


def fold_dirs(run_dir):
    with open(os.path.join(run_dir, "cv.json"), encoding="utf-8") as f:
        folds = json.load(f)["folds"]
    return [os.path.join(run_dir, f"fold_{i}") for i in range(folds)]


def is_cv_run(run_dir):
    return os.path.exists(os.path.join(run_dir, "cv.json"))


def train_cv(task_name, config, run_dir, folds, log=print):
    """k-fold cross-validation (Kim's protocol for MR): one resumable run per fold, mean reported."""
    os.makedirs(run_dir, exist_ok=True)
    cv_path = os.path.join(run_dir, "cv.json")
    payload = {"task": task_name, "folds": folds, "config": config_lib.to_dict(config)}
    if os.path.exists(cv_path):
        with open(cv_path, encoding="utf-8") as f:
            if json.load(f) != json.loads(json.dumps(payload, default=str)):
                raise ValueError(f"{run_dir} holds a different cross-validation run; use another --run-dir")
    else:
        config_lib.write_json(cv_path, payload)
    results = []
    for fold in range(folds):
        fold_config = dataclasses.replace(config, data=dataclasses.replace(config.data, folds=folds, fold=fold))
        log(f"=== fold {fold + 1}/{folds}")
        results.append(train(task_name, fold_config, os.path.join(run_dir, f"fold_{fold}"), log=log))
    return _aggregate_folds(run_dir, results)


def _aggregate_folds(run_dir, results):
    import statistics

    summary = {"folds": len(results)}
    for split in ("validation", "test"):
        keys = results[0].get(split, {}).keys()
        summary[split] = {}
        for key in keys:
            values = [r[split][key] for r in results]
            summary[split][key] = round(statistics.fmean(values), 6)
            summary[split][f"{key}_std"] = round(statistics.pstdev(values), 6)
    summary["per_fold_test"] = [r["test"] for r in results]
    seconds = [r.get("training", {}).get("train_seconds") for r in results]
    if all(s is not None for s in seconds):
        summary["train_seconds"] = round(sum(seconds), 2)
    config_lib.write_json(os.path.join(run_dir, "metrics.json"), summary)
    return summary


# === Export ===


def export(run_dir, name, version=None, base_dir="saved_models"):
    """Export a trained run to `base_dir/name/VERSION/` atomically; returns the version path."""
    if is_cv_run(run_dir):
        raise ValueError(f"{run_dir} is a cross-validation run; export one of its folds (e.g. {run_dir}/fold_0)")
    task, payload = load_run(run_dir)
    keras.config.set_dtype_policy("float32")
    task.restore(os.path.join(run_dir, "assets"))
    model = load_trained_model(run_dir)
    model_dir = os.path.join(base_dir, name)
    os.makedirs(model_dir, exist_ok=True)
    existing = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
    latest = max(existing, default=0)
    if version is None:
        version = latest + 1
    elif version <= latest:
        raise ValueError(
            f"version {version} is not newer than {os.path.join(model_dir, str(latest))}; "
            f"versions only grow (omit --version to use {latest + 1})"
        )
    target = os.path.join(model_dir, str(version))
    # Dot-prefixed and not an integer: servers polling model_dir never pick it up half-written.
    tmp = os.path.join(model_dir, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)

    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        for tracked in getattr(task, "exported_resources", lambda: [])():
            archive.track(tracked)
        for endpoint, (fn, signature) in task.export_endpoints(model).items():
            archive.add_endpoint(endpoint, fn, input_signature=signature)
        archive.write_out(tmp, verbose=False)

        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        for filename, text in task.export_assets().items():
            with open(os.path.join(extra, filename), "w", encoding="utf-8") as f:
                f.write(text)
        config_lib.write_json(os.path.join(extra, "config.json"), payload)
        metrics_path = os.path.join(run_dir, "metrics.json")
        if os.path.exists(metrics_path):
            shutil.copy(metrics_path, os.path.join(extra, "metrics.json"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.rename(tmp, target)
    return target
