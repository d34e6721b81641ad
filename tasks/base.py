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
    training.json        epochs run, training time, throughput (written just before model.keras)
    model.keras          the final model (best weights); its presence marks training as done
    history.csv          one row per epoch
    logs/                TensorBoard
    metrics.json         test (and validation) metrics, timing, throughput; its presence marks the run as done

A task extends this path through hooks (callbacks, per-split metrics, an inference model
distinct from the training model, tracked export resources), never with a loop of its own.
"""

import contextlib
import csv
import dataclasses
import importlib
import json
import os
import pkgutil
import re
import shutil
import sys
import time
import warnings

import keras

from keras_tasks.pipelines import downloads
from keras_tasks.pipelines.data_dir import default_data_dir
from keras_tasks.pipelines.errors import ConfigError, RunDirError, UnknownKeyError
from keras_tasks.tasks import catalog
from keras_tasks.tasks import config as config_lib
from keras_tasks.tasks import distribution as distribution_lib
from keras_tasks.tasks.catalog import CLIFlag  # noqa: F401  (tasks import it from here)

TASKS = {}

# Which way each metric improves. Tasks add theirs in `Task.metric_modes`; the monitored
# metric (`train.monitor`, e.g. `val_perplexity`) is looked up without its `val_` prefix.
METRIC_MODES = {"loss": "min", "accuracy": "max"}


def register_task(name):
    """Class decorator: make a `Task` subclass available as `keras-tasks train NAME`."""

    def decorator(cls):
        cls.name = name
        TASKS[name] = cls
        return cls

    return decorator


def discover_tasks():
    """Import every module of the `keras_tasks.tasks` package, so their `@register_task` classes register."""
    package = importlib.import_module("keras_tasks.tasks")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"keras_tasks.tasks.{module.name}")
    return TASKS


def get_task_class(name):
    """The registered `Task` class of `name`, importing only its module (see `tasks/catalog.py`)."""
    if name not in TASKS and name in catalog.CARDS:
        importlib.import_module(catalog.CARDS[name].module)
    if name not in TASKS:
        raise UnknownKeyError(f"unknown task {name!r}; available: {', '.join(sorted(set(catalog.CARDS) | set(TASKS)))}")
    return TASKS[name]


class Task:
    """Base class of a task. Subclasses fill in data, preprocessing, model and serving.

    Class attributes:
        name: the registry name (set by `@register_task`).
        config_class: a frozen dataclass with `data`, `model` and `train` sections.
        metric_modes: `{metric: "min" | "max"}` for the task's own metrics (perplexity,
            BLEU, F1, ...), so `train.monitor` picks the best checkpoint the right way.
        validation_metrics_each_epoch: run `evaluate_split(model, splits, "validation")`
            at the end of every epoch and add its metrics (prefixed `val_`) to the epoch's
            logs, so they can be monitored (e.g. BLEU by decoding) and appear in history.csv.

    A subclass implements:
        load_data(): raw splits (`"train"`, `"validation"`, `"test"`).
        adapt(splits, assets_dir): fit the preprocessor on the training split, save it.
        restore(assets_dir): load the preprocessor saved by `adapt`.
        make_dataset(splits, split, training): batched `(inputs, targets)` tf.data.
        build_model(): an uncompiled, built `keras.Model` (the training graph).
        compile_args(steps_per_epoch): `loss`, `metrics`, `optimizer` for `model.compile`.
        export_endpoints(model): `{name: (tf.function, input_signature)}`, called with the
            inference model; `serving_default` is one of them.
    and may override the hooks below (`presets`, `num_examples`, `callbacks`, `evaluate_split`,
    `after_evaluate`, `build_inference_model`, `export_resources`, `export_assets`, `label_names`).

    What the command line shows without importing the task (summary, models, datasets, task
    flags, `--folds`, how `predict` prints outputs) is the task's card in `tasks/catalog.py`.
    """

    name = None
    config_class = None
    metric_modes = {}
    validation_metrics_each_epoch = False

    def __init__(self, config):
        self.config = config

    # === Config and command line ===

    @classmethod
    def presets(cls, draft):
        """Config overrides (`{"section.key": value}`) that suit the user's choices in `draft`.

        `draft` is the config with the user's file, flags and `--set` applied; they are
        applied again over the presets, so the user's values always win.
        """
        return {}

    @classmethod
    def monitor_mode(cls, monitor):
        """`"min"` or `"max"`: the direction in which `monitor` improves."""
        modes = {**METRIC_MODES, **cls.metric_modes}
        metric = monitor[4:] if monitor.startswith("val_") else monitor
        if metric not in modes:
            raise ConfigError(
                f"train.monitor={monitor!r}: task {cls.name} does not know whether {metric!r} should go up or down; "
                f"monitor one of {sorted('val_' + m for m in modes)}"
            )
        return modes[metric]

    # === Data and model ===

    def load_data(self):
        raise NotImplementedError

    def adapt(self, splits, assets_dir):
        raise NotImplementedError

    def restore(self, assets_dir):
        raise NotImplementedError

    def make_dataset(self, splits, split, training):
        raise NotImplementedError

    def num_examples(self, splits, split):
        """Examples in a split (for throughput figures), or None."""
        return None

    def build_model(self):
        raise NotImplementedError

    def compile_args(self, steps_per_epoch=None):
        raise NotImplementedError

    # === Training and evaluation hooks ===

    def callbacks(self, splits):
        """Extra Keras callbacks, run before checkpointing, CSV history and early stopping."""
        return []

    def evaluate_split(self, model, splits, split):
        """Metrics that `model.evaluate` cannot compute (BLEU by decoding, entity F1): `{name: float}`.

        They are merged into the split's results in `metrics.json`, printed by the CLI and
        averaged over folds; with `validation_metrics_each_epoch` also monitored per epoch.
        """
        return {}

    def after_evaluate(self, model, splits, run_dir):
        """Task-specific reports written after evaluation; returns extra top-level metrics."""
        return {}

    # === Export hooks ===

    def build_inference_model(self, model):
        """The model the export serves, given the trained model.

        By default the training architecture rebuilt in float32 with the trained weights
        (a run trained with mixed precision exports float32 compute). A task whose
        inference graph differs from its training graph (a teacher-forced decoder vs a
        step decoder, a stateful LM vs a stateless generator) builds that graph here and
        shares the weights by layer name.
        """
        with float32_policy():
            inference = self.build_model()
        inference.set_weights(model.get_weights())
        return inference

    def export_endpoints(self, model):
        raise NotImplementedError

    def export_resources(self):
        """Trackable objects the endpoints use besides the model (lookup tables, tokenizers).

        `tf.saved_model.Asset` files among them (e.g. a SentencePiece `.model`) are written to `assets/`.
        """
        return []

    def signature_defaults(self):
        """Values for a signature's optional inputs: `{signature: {input: value}}`.

        SavedModel signatures have no defaults; these go to `assets.extra/signature_defaults.json`,
        where `keras-tasks predict` and the server's demo page read them (a client of the REST
        API sends every input).
        """
        return {}

    def label_names(self):
        return None

    def export_assets(self):
        """Extra files for `assets.extra/`: `{filename: text}`."""
        labels = self.label_names()
        return {"labels.txt": "\n".join(labels) + "\n"} if labels else {}

    # === Shared helpers for subclasses ===

    def make_optimizer(self, steps_per_epoch=None):
        train = self.config.train
        learning_rate = train.learning_rate
        schedule = train.lr_schedule
        total = max(1, (steps_per_epoch or 1) * train.epochs)
        warmup = int(total * train.warmup_fraction)
        if schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(
                0.0 if warmup else train.learning_rate,
                decay_steps=total - warmup,
                warmup_target=train.learning_rate if warmup else None,
                warmup_steps=warmup,
            )
        elif schedule == "one_cycle":
            learning_rate = OneCycle(train.learning_rate, total, warmup or int(0.3 * total))
        elif schedule == "step":
            if not steps_per_epoch:
                raise ConfigError("train.lr_schedule=step needs a known number of steps per epoch (set train.steps_per_epoch)")
            learning_rate = EpochStepDecay(
                train.learning_rate, steps_per_epoch, train.lr_decay_factor, train.lr_decay_start
            )
        elif schedule not in ("constant", "plateau"):
            raise ConfigError(
                f"train.lr_schedule must be constant, cosine, one_cycle, step or plateau, got {schedule!r}"
            )
        kwargs = {"learning_rate": learning_rate}
        if train.weight_decay is not None:
            kwargs["weight_decay"] = train.weight_decay
        if train.clipnorm is not None:  # the norm of all gradients together, as Pascanu et al. and Zaremba et al.
            kwargs["global_clipnorm"] = train.clipnorm
        if train.optimizer == "lazy_adam":
            if keras.backend.backend() != "tensorflow":  # other backends' gradients are dense: Adam is the same
                return keras.optimizers.Adam(**kwargs)
            from keras_tasks.tasks.optimizers import LazyAdam

            return LazyAdam(**kwargs)
        return keras.optimizers.get({"class_name": train.optimizer, "config": kwargs})


def write_labels(assets_dir, labels):
    """Class names, one per line, into `assets_dir/labels.txt`."""
    with open(os.path.join(assets_dir, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(labels) + "\n")


def read_labels(assets_dir):
    with open(os.path.join(assets_dir, "labels.txt"), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


class float32_policy:
    """Context manager: build layers with the float32 dtype policy, then restore the previous one."""

    def __enter__(self):
        self.previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("float32")

    def __exit__(self, *exc):
        keras.config.set_dtype_policy(self.previous)


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


@keras.saving.register_keras_serializable(package="keras_tasks")
class EpochStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`initial * factor ** max(0, epoch - start + 1)`: constant for `start` epochs, then decayed every epoch.

    Zaremba et al. (2014)'s schedule: the small LM keeps rate 1 for 4 epochs, then halves it each epoch
    (`start=4, factor=0.5`).
    """

    def __init__(self, initial, steps_per_epoch, factor, start):
        self.initial = float(initial)
        self.steps_per_epoch = int(steps_per_epoch)
        self.factor = float(factor)
        self.start = int(start)

    def __call__(self, step):
        epoch = keras.ops.floor(keras.ops.cast(step, "float32") / self.steps_per_epoch)
        decays = keras.ops.maximum(0.0, epoch - self.start + 1)
        return self.initial * keras.ops.power(self.factor, decays)

    def get_config(self):
        return {"initial": self.initial, "steps_per_epoch": self.steps_per_epoch, "factor": self.factor, "start": self.start}


# === Config resolution ===


def resolve_config(task_name, flags=None, config_file=None, overrides=None):
    """defaults -> presets(draft) -> config file -> flags -> --set, later wins.

    `draft` is the config with the user's choices applied, so presets can follow any of
    them (model, dataset, `model.size`, ...), while the user's own values still win.
    """
    task_class = get_task_class(task_name)
    flags = {k: v for k, v in (flags or {}).items() if v is not None}

    def apply_user_choices(config):
        if config_file:
            config = config_lib.load_config_file(config, config_file)
        for key, value in flags.items():
            config = config_lib.replace_path(config, key, value)
        return config_lib.apply_overrides(config, overrides)

    config = task_class.config_class()
    for key, value in task_class.presets(apply_user_choices(config)).items():
        config = config_lib.replace_path(config, key, value)
    return apply_user_choices(config)


def load_run(run_dir):
    """The task (with its preprocessor restored) and config of a run directory."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise RunDirError(f"{run_dir} is not a run directory (no config.json); train first")
    with open(path, encoding="utf-8") as f:
        payload = json.load(f)
    task_class = get_task_class(payload["task"])
    # Fields added since the run was made take their defaults, so older run directories still load.
    config = config_lib.from_dict(task_class.config_class, payload["config"])
    return task_class(config), payload


# === Training ===


def _setup_precision(train):
    keras.config.set_dtype_policy("mixed_float16" if train.mixed_precision else "float32")


def _verbosity(train):
    if train.verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(train.verbose)


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch (the first one includes tracing)."""

    def __init__(self):
        super().__init__()
        self.epoch_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._start)
        if logs is not None:  # a history.csv column, so a resumed run's totals count every attempt
            logs["epoch_seconds"] = round(self.epoch_seconds[-1], 3)


class _ValidationMetrics(keras.callbacks.Callback):
    """Adds `task.evaluate_split(..., "validation")` to each epoch's logs as `val_NAME` (before checkpointing)."""

    def __init__(self, task, splits):
        super().__init__()
        self.task = task
        self.splits = splits

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for key, value in self.task.evaluate_split(self.model, self.splits, "validation").items():
            logs[f"val_{key}"] = float(value)


class _LogLearningRate(keras.callbacks.Callback):
    """The learning rate of the epoch in its logs (history.csv, TensorBoard), whatever the schedule."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        optimizer = self.model.optimizer
        schedule = getattr(optimizer, "_learning_rate", None)
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            # `optimizer.learning_rate` is the schedule at the next step: the next epoch's rate. Log this epoch's.
            rate = schedule(keras.ops.maximum(optimizer.iterations - 1, 0))
        else:
            rate = optimizer.learning_rate
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


def stateful_layers(model):
    return [layer for layer in model._flatten_layers() if getattr(layer, "stateful", False)]


def reset_states(model):
    """Zero the carried state of every stateful RNN layer of `model`."""
    for layer in stateful_layers(model):
        layer.reset_states()


class _ResetStates(keras.callbacks.Callback):
    """Stateful RNNs (contiguous-stream LMs) start every epoch and every evaluation from a zero state."""

    def on_epoch_begin(self, epoch, logs=None):
        reset_states(self.model)

    def on_test_begin(self, logs=None):
        reset_states(self.model)

    def on_epoch_end(self, epoch, logs=None):
        reset_states(self.model)


def _best_so_far(history_path, monitor, mode):
    """Best monitored value in an earlier (killed) attempt's history, so resuming keeps the true best."""
    if not os.path.exists(history_path):
        return None
    import csv

    with open(history_path, encoding="utf-8") as f:
        values = [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor) not in (None, "")]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def training_started(run_dir):
    """Whether a run directory holds any trace of training (a backup, history rows, weights)."""
    return any(
        os.path.exists(os.path.join(run_dir, name))
        for name in ("backup", "history.csv", "best.weights.h5", "model.keras", "metrics.json")
    )


def _absolute_data_dir(config):
    """`config` with `data.data_dir` made absolute: runs recorded before the CLI did so still resume."""
    from keras_tasks.pipelines.data_dir import resolve

    data = getattr(config, "data", None)
    if getattr(data, "data_dir", None):
        return dataclasses.replace(config, data=dataclasses.replace(data, data_dir=resolve(data.data_dir)))
    return config


def _check_same_config(run_dir, task_name, config, log=print):
    """Write config.json, or check that the one there resolves to the same config (older runs lack new fields).

    A run whose training never started (it failed while loading or preparing data) takes the new config, and its
    prepared assets are made again: rerunning with the fix an error message suggests must just work.
    """
    config_path = os.path.join(run_dir, "config.json")
    payload = {"task": task_name, "config": config_lib.to_dict(config)}
    if not os.path.exists(config_path):
        config_lib.write_json(config_path, payload)
        return
    with open(config_path, encoding="utf-8") as f:
        previous = json.load(f)
    same = previous.get("task") == task_name
    if same:
        try:
            same = _absolute_data_dir(config_lib.from_dict(type(config), previous["config"])) == _absolute_data_dir(
                config
            )
        except (KeyError, ValueError):
            same = False
    if not same and not training_started(run_dir):
        log(f"{run_dir}: training never started there; replacing its config with this one")
        shutil.rmtree(os.path.join(run_dir, "assets"), ignore_errors=True)
        config_lib.write_json(config_path, payload)
        return
    if not same:
        raise ConfigError(
            f"{run_dir} holds a run with a different config ({config_path}); "
            "start the new run in another --run-dir, or rerun with the same command to resume"
        )


def _steps_per_epoch(dataset, train_cfg, n_train):
    if train_cfg.steps_per_epoch:
        return train_cfg.steps_per_epoch
    cardinality = int(dataset.cardinality())
    if cardinality > 0:
        return cardinality
    return -(-n_train // train_cfg.batch_size) if n_train else None


def train(task_name, config, run_dir, log=print, callbacks=()):
    """Train (or resume) a task in `run_dir`, evaluate it on the test split, return the metrics.

    `callbacks` are extra Keras callbacks appended to the standard ones. With `train.distribution` set, every
    worker of the cluster runs this same call; only the chief writes `run_dir` (see tasks/distribution.py).
    """
    distribution = distribution_lib.make(config.train.distribution)  # before TensorFlow runs anything else
    with distribution.work_dir(run_dir, training_started) as work_dir, distribution.lost_worker_errors(run_dir):
        return _train(task_name, config, work_dir, distribution, log, callbacks)


def _train(task_name, config, run_dir, distribution, log, callbacks):
    os.makedirs(run_dir, exist_ok=True)
    _check_same_config(run_dir, task_name, config, log)
    # The task batches the global batch (train.batch_size per replica); config.json keeps the user's config.
    task = get_task_class(task_name)(distribution.global_config(config))
    metrics_path = os.path.join(run_dir, "metrics.json")
    model_path = os.path.join(run_dir, "model.keras")
    training_path = os.path.join(run_dir, "training.json")
    if os.path.exists(model_path) and os.path.exists(metrics_path):
        log(f"{run_dir} is already trained; metrics from {metrics_path}")
        with open(metrics_path, encoding="utf-8") as f:
            return json.load(f)

    train_cfg = config.train
    mode = task.monitor_mode(train_cfg.monitor)
    keras.utils.set_random_seed(train_cfg.seed)
    _setup_precision(train_cfg)
    splits = _load_data(task)
    assets_dir = os.path.join(run_dir, "assets")
    if os.path.exists(os.path.join(assets_dir, "COMPLETE")):
        task.restore(assets_dir)  # resuming: the vocabulary must be the one the weights were trained with
    else:
        os.makedirs(assets_dir, exist_ok=True)
        task.adapt(splits, assets_dir)
        open(os.path.join(assets_dir, "COMPLETE"), "w").close()
        task.restore(assets_dir)

    if os.path.exists(model_path):
        # Training finished but evaluation did not (a crash or kill in between): evaluate, do not retrain.
        log(f"{model_path} exists: training finished earlier; evaluating it")
        model = load_trained_model(run_dir)
        training = {}
        if os.path.exists(training_path):
            with open(training_path, encoding="utf-8") as f:
                training = json.load(f)
    else:
        model, training = _fit(task, splits, run_dir, mode, callbacks, log, distribution)

    metrics = evaluate_model(task, model, splits, run_dir)
    metrics["training"] = training
    config_lib.write_json(metrics_path, metrics)
    return metrics


def _fit(task, splits, run_dir, mode, extra_callbacks, log=print, distribution=distribution_lib.Distribution()):
    train_cfg = task.config.train
    train_ds = distribution.shard(task.make_dataset(splits, "train", training=True))
    validation_ds = distribution.shard(task.make_dataset(splits, "validation", training=False))
    n_train = task.num_examples(splits, "train")
    steps = _steps_per_epoch(train_ds, train_cfg, n_train)

    # Functional models are built on construction, from their inputs' specs: no warm-up call on real data.
    with distribution.scope():  # variables (model, optimizer, metrics) mirrored over the replicas
        model = task.build_model()
        if not model.built:
            raise TypeError(f"{type(task).__name__}.build_model() must return a built model (a functional keras.Model)")
        if distribution.strategy is not None and stateful_layers(model):
            raise ConfigError(
                f"train.distribution={train_cfg.distribution}: task {task.name} carries RNN state across batches "
                "(a stateful model), which replicas cannot share; use train.distribution=none"
            )
        model.compile(jit_compile=train_cfg.jit_compile, **task.compile_args(steps))
    distribution.prepare(model, train_ds)
    throughput = EpochTimer()
    history_path = os.path.join(run_dir, "history.csv")
    best_path = os.path.join(run_dir, "best.weights.h5")
    monitor = train_cfg.monitor
    callbacks = [
        keras.callbacks.BackupAndRestore(
            os.path.join(run_dir, "backup"),
            save_freq=train_cfg.backup_every_steps or "epoch",
            double_checkpoint=True,
        ),
        throughput,
        _LogLearningRate(),
    ]
    if stateful_layers(model):
        callbacks.append(_ResetStates())
    if task.validation_metrics_each_epoch:
        callbacks.append(_ValidationMetrics(task, splits))
    # Task callbacks come before anything that reads the epoch's logs.
    callbacks += list(task.callbacks(splits))
    callbacks += [
        keras.callbacks.ModelCheckpoint(
            best_path,
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=_best_so_far(history_path, monitor, mode),
        ),
        keras.callbacks.CSVLogger(history_path, append=True),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")),
        keras.callbacks.TerminateOnNaN(),
    ]
    if train_cfg.lr_schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, mode=mode, factor=train_cfg.lr_decay_factor, patience=train_cfg.lr_decay_patience
            )
        )
    early_stopping = None
    if train_cfg.early_stopping_patience is not None:
        early_stopping = keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=train_cfg.early_stopping_patience
        )
        callbacks.append(early_stopping)
    callbacks += list(extra_callbacks)
    start = time.perf_counter()
    with whole_passes() if not train_cfg.steps_per_epoch else contextlib.nullcontext():
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
    if early_stopping is not None and early_stopping.stopped_epoch > 0:
        log(
            f"early stopping after epoch {early_stopping.stopped_epoch + 1} of {train_cfg.epochs}: {monitor} did not "
            f"improve for {train_cfg.early_stopping_patience} epochs (train.early_stopping_patience); the best "
            f"epoch's weights are kept"
        )
    if os.path.exists(best_path):
        model.load_weights(best_path)
    timed = throughput.epoch_seconds[1:] or throughput.epoch_seconds
    examples_per_epoch = n_train if not train_cfg.steps_per_epoch else None
    # Over every attempt of a resumed run: history.csv has one row per finished epoch, with its seconds.
    epochs_run, seconds_before = _history_totals(history_path)
    training = {
        "epochs_run": epochs_run,
        "epochs_this_attempt": len(history.history.get("loss", [])),
        "train_seconds": round(seconds_before + train_seconds - sum(throughput.epoch_seconds), 2)
        if seconds_before
        else round(train_seconds, 2),
        "train_examples": n_train,
        "examples_per_second": round(examples_per_epoch / (sum(timed) / len(timed)), 1)
        if examples_per_epoch and timed
        else None,
        "backend": keras.backend.backend(),
    }
    # training.json first, then model.keras (the "training is done" marker): a rerun after a crash
    # in evaluation finds both and only evaluates.
    config_lib.write_json(os.path.join(run_dir, "training.json"), training)
    _save_atomic(model, os.path.join(run_dir, "model.keras"))
    return model, training


def _load_data(task):
    """The task's splits, after fetching a missing named dataset (`data.download`, checksum verified)."""
    data = task.config.data
    if data.download and data.dataset:
        downloads.prepare(data.dataset, data.data_dir or default_data_dir())
    return task.load_data()


def _history_totals(history_path):
    """(finished epochs, sum of their `epoch_seconds`) over every attempt logged in history.csv."""
    if not os.path.exists(history_path):
        return 0, 0.0
    with open(history_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    seconds = 0.0
    for row in rows:
        try:
            seconds += float(row.get("epoch_seconds") or 0)
        except ValueError:
            pass
    return len(rows), seconds


def _finite(value):
    return value == value and value not in (float("inf"), float("-inf"))


def _save_atomic(model, path):
    tmp = path + ".tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)


@contextlib.contextmanager
def whole_passes():
    """Keras calls without a step count, each a whole pass over its dataset.

    A dataset of unknown length (bucketed, filtered) ends a pass by running out, and Keras warns "Your input ran
    out of data" each time. Inside this block that is how a pass ends, so the warning is dropped; a call given
    more steps than the data holds (`train.steps_per_epoch`) stays outside it and keeps the warning.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        yield


def evaluate_model(task, model, splits, run_dir):
    """`model.evaluate` plus `task.evaluate_split` on the validation and test splits."""
    results = {}
    for split in ("validation", "test"):
        dataset = task.make_dataset(splits, split, training=False)
        reset_states(model)
        with whole_passes():
            values = model.evaluate(dataset, verbose=0, return_dict=True)
        reset_states(model)
        values.update(task.evaluate_split(model, splits, split))
        results[split] = {k: round(float(v), 6) for k, v in values.items()}
    results.update(task.after_evaluate(model, splits, run_dir) or {})
    return results


def require_trained(run_dir):
    """Raises RunDirError saying how to finish the run when `run_dir` has no trained model yet."""
    if not os.path.exists(os.path.join(run_dir, "model.keras")):
        raise RunDirError(
            f"the run in {run_dir} has not finished training (no model.keras): rerun the same "
            f"`keras-tasks train ... --run-dir {run_dir}` command to resume it, then try again"
        )


def load_trained_model(run_dir):
    require_trained(run_dir)
    return keras.saving.load_model(os.path.join(run_dir, "model.keras"), compile=True)


def evaluate(run_dir):
    """Re-evaluate a trained run on its standard splits; updates and returns metrics.json."""
    if is_cv_run(run_dir):
        return _aggregate_folds(run_dir, [evaluate(d) for d in fold_dirs(run_dir)])
    task, _ = load_run(run_dir)
    require_trained(run_dir)
    _setup_precision(task.config.train)
    task.restore(os.path.join(run_dir, "assets"))
    model = load_trained_model(run_dir)
    splits = _load_data(task)
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
    if not catalog.card(task_name).supports_folds:
        raise ConfigError(
            f"task {task_name} has no k-fold cross-validation (--folds); it evaluates on its dataset's test split"
        )
    if not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"--folds must be an integer of at least 2, got {folds!r}")
    os.makedirs(run_dir, exist_ok=True)
    cv_path = os.path.join(run_dir, "cv.json")
    payload = {"task": task_name, "folds": folds, "config": config_lib.to_dict(config)}
    if os.path.exists(cv_path):
        with open(cv_path, encoding="utf-8") as f:
            if json.load(f) != json.loads(json.dumps(payload, default=str)):
                raise ConfigError(f"{run_dir} holds a different cross-validation run; use another --run-dir")
    else:
        config_lib.write_json(cv_path, payload)
    results = []
    for fold in range(folds):
        fold_config = dataclasses.replace(config, data=dataclasses.replace(config.data, folds=folds, fold=fold))
        log(f"=== fold {fold + 1}/{folds}")
        results.append(train(task_name, fold_config, os.path.join(run_dir, f"fold_{fold}"), log=log))
    return _aggregate_folds(run_dir, results)


def _aggregate_folds(run_dir, results):
    """Mean and population standard deviation over folds of every numeric split metric."""
    import statistics

    summary = {"folds": len(results)}
    for split in ("validation", "test"):
        summary[split] = {}
        for key, first in results[0].get(split, {}).items():
            values = [r.get(split, {}).get(key) for r in results]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                continue
            summary[split][key] = round(statistics.fmean(values), 6)
            summary[split][f"{key}_std"] = round(statistics.pstdev(values), 6)
    summary["per_fold_test"] = [r["test"] for r in results]
    seconds = [r.get("training", {}).get("train_seconds") for r in results]
    if all(s is not None for s in seconds):
        summary["train_seconds"] = round(sum(seconds), 2)
    config_lib.write_json(os.path.join(run_dir, "metrics.json"), summary)
    return summary


# === Export ===


def _check_export_target(base_dir, name):
    """The model name must be one the server serves, and stay inside `base_dir`."""
    from keras_tasks.serving.models import check_model_name

    try:
        check_model_name(name)
    except ValueError as e:
        raise ConfigError(f"--name {name!r}: {e}") from None
    model_dir = os.path.join(base_dir, name)
    base_real = os.path.realpath(base_dir)
    if os.path.dirname(os.path.realpath(model_dir)) != base_real:
        raise ConfigError(f"--name {name!r} would write outside {base_dir}; give a plain model name")
    return model_dir


_TMP_EXPORT = re.compile(r"\.tmp-\d+-(\d+)")


def _remove_stale_exports(model_dir):
    """Removes `.tmp-VERSION-PID` folders left by killed exports: their process is gone, or they are a day old."""
    for entry in os.listdir(model_dir):
        match = _TMP_EXPORT.fullmatch(entry)
        if not match:
            continue
        path = os.path.join(model_dir, entry)
        pid = int(match.group(1))
        alive = pid != os.getpid()
        if alive:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive = False
            except PermissionError:  # another user's live process
                pass
        if not alive or time.time() - os.path.getmtime(path) > 86400:
            shutil.rmtree(path, ignore_errors=True)


def export(run_dir, name, version=None, base_dir="saved_models"):
    """Export a trained run to `base_dir/name/VERSION/` atomically; returns the version path."""
    if is_cv_run(run_dir):
        raise ConfigError(f"{run_dir} is a cross-validation run; export one of its folds (e.g. {run_dir}/fold_0)")
    model_dir = _check_export_target(base_dir, name)
    task, payload = load_run(run_dir)
    require_trained(run_dir)
    task.restore(os.path.join(run_dir, "assets"))
    model = load_trained_model(run_dir)
    # Serving computes in float32 whatever the training precision; the task may also swap graphs.
    inference_model = task.build_inference_model(model)
    os.makedirs(model_dir, exist_ok=True)
    existing = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
    latest = max(existing, default=0)
    if version is None:
        version = latest + 1
    elif version <= latest:
        raise ConfigError(
            f"version {version} is not newer than {os.path.join(model_dir, str(latest))}; "
            f"versions only grow (omit --version to use {latest + 1})"
        )
    target = os.path.join(model_dir, str(version))
    # Dot-prefixed and not an integer: servers polling model_dir never pick it up half-written.
    _remove_stale_exports(model_dir)
    tmp = os.path.join(model_dir, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)

    try:
        archive = keras.export.ExportArchive()
        archive.track(inference_model)
        resources = list(task.export_resources())
        for tracked in resources:
            archive.track(tracked)
        files = [r for r in resources if type(r).__name__ == "Asset"]  # tf.saved_model.Asset: a tokenizer's model file
        if files:
            # ExportArchive.track keeps lookup tables (TrackableResources) but not plain files; attached to the
            # archive's root object, they are written to assets/ and reloaded with the SavedModel.
            archive._tf_trackable.asset_files = files
        for endpoint, (fn, signature) in task.export_endpoints(inference_model).items():
            archive.add_endpoint(endpoint, fn, input_signature=signature)
        archive.write_out(tmp, verbose=False)

        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        for filename, text in task.export_assets().items():
            with open(os.path.join(extra, filename), "w", encoding="utf-8") as f:
                f.write(text)
        config_lib.write_json(os.path.join(extra, "config.json"), payload)
        defaults = task.signature_defaults()
        if defaults:
            config_lib.write_json(os.path.join(extra, "signature_defaults.json"), defaults)
        metrics_path = os.path.join(run_dir, "metrics.json")
        if os.path.exists(metrics_path):
            shutil.copy(metrics_path, os.path.join(extra, "metrics.json"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.rename(tmp, target)
    return target
