"""Frozen config dataclasses and the `--set section.key=value` / `--config FILE` overrides."""

import codecs
import dataclasses
import json
import os
import typing

import yaml

from keras_tasks.pipelines.errors import ConfigError, UnknownKeyError


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Fields every task's data section has."""

    dataset: str = ""  # a registered dataset name, a path to the user's data, or tfds:NAME
    data_dir: typing.Optional[str] = None  # folder holding the datasets; default $KERAS_TASKS_DATA
    max_examples: typing.Optional[int] = None  # cap on training examples, for quick runs
    download: bool = True  # fetch a missing named dataset from its canonical source (checksum verified); false: never


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to fit: shared by every task (defaults can be changed per task)."""

    epochs: int = 10  # passes over the training split
    batch_size: int = 50
    optimizer: str = "adam"  # any keras.optimizers name (adam, adamw, adadelta, sgd, ...) or lazy_adam (sparse rows)
    learning_rate: float = 1e-3
    weight_decay: typing.Optional[float] = None  # for optimizers that take it (adamw)
    lr_schedule: str = "constant"  # constant | cosine | one_cycle | step | plateau
    warmup_fraction: float = 0.0  # of all steps, for the cosine / one-cycle schedules
    lr_decay_factor: float = 0.5  # step: multiply per epoch from lr_decay_start; plateau: on each plateau
    lr_decay_start: int = 0  # step: first (0-based) epoch that runs at a decayed rate
    lr_decay_patience: int = 0  # plateau: epochs without improvement of `monitor` before decaying
    clipnorm: typing.Optional[float] = None  # rescale the gradients when their global L2 norm exceeds this (RNNs)
    label_smoothing: float = 0.0
    seed: int = 0  # weights init, shuffling and seeded splits
    early_stopping_patience: typing.Optional[int] = None  # epochs without improvement; None: off
    monitor: str = "val_accuracy"  # metric that picks the best checkpoint
    steps_per_epoch: typing.Optional[int] = None  # cap per epoch (quick runs, smoke tests)
    backup_every_steps: typing.Optional[int] = None  # also back up mid-epoch (resume after a kill)
    mixed_precision: bool = False  # float16 compute, float32 variables (GPU)
    jit_compile: bool = False  # XLA-compile the train step
    verbose: str = "auto"  # auto: progress bars on a terminal, a line per epoch otherwise
    distribution: str = "none"  # none | mirrored (local devices) | multi_worker (TF_CONFIG); batch_size is per replica


def _coerce(value, annotation):
    """Convert a parsed YAML scalar/list to a dataclass field's type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0]) if len(inner) == 1 else value
    if annotation in (int, float, str, bool) and isinstance(value, (list, tuple, dict)) or value is None:
        raise ConfigError(f"expected {_TYPE_NAMES.get(annotation, 'one value')}, got {value!r}")
    if annotation in (int, float) and (isinstance(value, (str, bool))):
        raise ConfigError(f"expected {_TYPE_NAMES[annotation]}, got {value!r}")
    if annotation is bool and not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"expected an integer, got {value!r}")
        return int(value)
    if annotation is float:
        return float(value)
    if annotation is str:
        return str(value)
    if origin is tuple:
        items = value if isinstance(value, (list, tuple)) else [value]
        item_type = args[0] if args else str
        return tuple(_coerce(v, item_type) for v in items)
    return value


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}

# Allowed ranges by field name, in every task's sections: (low, high, low excluded, high excluded); None is open.
_AT_LEAST_1 = (1, None, False, False)
_AT_LEAST_0 = (0, None, False, False)
_POSITIVE = (0, None, True, False)
_FRACTION = (0, 1, False, True)  # 0 <= x < 1
_RANGES = {
    "epochs": _AT_LEAST_1,
    "batch_size": _AT_LEAST_1,
    "learning_rate": _POSITIVE,
    "weight_decay": _AT_LEAST_0,
    "warmup_fraction": _FRACTION,
    "lr_decay_factor": (0, 1, True, False),  # 0 < x <= 1
    "lr_decay_start": _AT_LEAST_0,
    "lr_decay_patience": _AT_LEAST_0,
    "clipnorm": _POSITIVE,
    "label_smoothing": _FRACTION,
    "seed": _AT_LEAST_0,
    "early_stopping_patience": _AT_LEAST_0,
    "steps_per_epoch": _AT_LEAST_1,
    "backup_every_steps": _AT_LEAST_1,
    "max_examples": _AT_LEAST_1,
    "folds": (2, None, False, False),
    "fold": _AT_LEAST_0,
    "validation_fraction": _FRACTION,
    "test_fraction": _FRACTION,
    "max_tokens": (3, None, False, False),  # padding, out-of-vocabulary and at least one token
    "min_count": _AT_LEAST_1,
    "max_length": _AT_LEAST_1,
    "sequence_length": _AT_LEAST_1,
    "embedding_dim": _AT_LEAST_1,
    "hidden_dim": _AT_LEAST_1,
    "attention_dim": _AT_LEAST_1,
    "num_layers": _AT_LEAST_1,
    "num_filters": _AT_LEAST_1,
    "filter_sizes": _AT_LEAST_1,
    "filters": _AT_LEAST_1,
    "image_size": _AT_LEAST_1,
    "channels": (1, 4, False, False),
    "dropout": _FRACTION,
    "max_norm": _POSITIVE,
    "init_scale": _AT_LEAST_0,
    "vocabulary_size": (8, None, False, False),  # SentencePiece's 4 special pieces and a few more
    "decoder_dim": _AT_LEAST_1,
    "beam_size": (1, 32, False, False),
    "length_penalty": _AT_LEAST_0,
}


# Allowed values of string fields, by field name.
_CHOICES = {"distribution": ("none", "mirrored", "multi_worker")}


def _describe(rule):
    low, high, low_open, high_open = rule
    if high is None:
        return f"greater than {low}" if low_open else f"at least {low}"
    left = f"greater than {low}" if low_open else f"at least {low}"
    right = f"less than {high}" if high_open else f"at most {high}"
    return f"{left} and {right}"


def check_value(name, value, full):
    """Raises ConfigError naming `full` (section.key) when `value` is out of the field's range."""
    if value is None:
        return
    if name == "encoding":
        try:
            codecs.lookup(value)
        except LookupError:
            raise ConfigError(
                f"bad value for {full!r}: {value!r} is not a text encoding Python knows; use e.g. utf-8, latin-1 "
                "or cp1252"
            ) from None
        return
    if name.endswith("bucket_boundaries") and value:
        if any(not isinstance(b, int) or isinstance(b, bool) or b < 1 for b in value) or list(value) != sorted(set(value)):
            raise ConfigError(
                f"bad value for {full!r}: {value!r}; it must be increasing whole token counts of at least 1, "
                "e.g. [64,128,256] (or [] for no bucketing)"
            )
        return
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ConfigError(f"bad value for {full!r}: {value!r}; it must be one of {', '.join(_CHOICES[name])}")
    rule = _RANGES.get(name)
    if rule is None:
        return
    low, high, low_open, high_open = rule
    for item in value if isinstance(value, tuple) else (value,):
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            continue
        too_low = low is not None and (item <= low if low_open else item < low)
        too_high = high is not None and (item >= high if high_open else item > high)
        if too_low or too_high:
            raise ConfigError(f"bad value for {full!r}: {value!r}; it must be {_describe(rule)}")


def _parse_value(text):
    value = yaml.safe_load(text) if text.strip() else ""
    return value


def replace_path(config, path, value, _full=None):
    """A copy of a nested frozen dataclass with `path` ("section.key") set to `value`."""
    full = _full or path
    head, _, rest = path.partition(".")
    fields = {f.name: f for f in dataclasses.fields(config)}
    if head not in fields:
        raise UnknownKeyError(f"unknown config key {full!r}; known here: {sorted(fields)}")
    current = getattr(config, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise UnknownKeyError(f"{head!r} has no sub-keys (asked for {full!r})")
        return dataclasses.replace(config, **{head: replace_path(current, rest, value, full)})
    if dataclasses.is_dataclass(current):
        if not isinstance(value, dict):
            raise ConfigError(f"{head!r} is a section; give a mapping, got {value!r}")
        return apply_mapping(config, {head: value})
    hints = typing.get_type_hints(type(config))
    try:
        value = _coerce(value, hints[head])
    except (ValueError, TypeError) as e:
        raise ConfigError(f"bad value for {full!r}: {e}") from None
    check_value(head, value, full)
    return dataclasses.replace(config, **{head: value})


def apply_mapping(config, mapping, prefix=""):
    """Apply a nested dict (from a YAML/JSON file) onto a config."""
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        current = _get_path(config, path)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            config = apply_mapping(config, value, prefix=path + ".")
        else:
            config = replace_path(config, path, value)
    return config


def _get_path(config, path):
    for part in path.split("."):
        if not dataclasses.is_dataclass(config):
            raise UnknownKeyError(f"unknown config key {path!r}: {part!r} is under a value, not a section")
        known = sorted(f.name for f in dataclasses.fields(config))
        if part not in known:
            raise UnknownKeyError(f"unknown config key {path!r}; known here: {known}")
        config = getattr(config, part)
    return config


def apply_overrides(config, overrides):
    """Apply `["section.key=value", ...]` (values parsed as YAML: 128, 0.5, [3, 4, 5], null)."""
    for item in overrides or ():
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        config = replace_path(config, key.strip(), _parse_value(text))
    return config


def load_config_file(config, path):
    """Apply a YAML or JSON file of nested sections onto a config."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror})") from None
    try:
        mapping = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not valid {'JSON' if path.endswith('.json') else 'YAML'}: {e}") from None
    if mapping is None:
        return config
    if not isinstance(mapping, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data:, model:, train:)")
    try:
        return apply_mapping(config, mapping)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def to_dict(config):
    return dataclasses.asdict(config)


def from_dict(config_class, mapping):
    return apply_mapping(config_class(), mapping)


def write_json(path, payload):
    """Write JSON atomically (temp file + rename), so a kill never leaves half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    os.replace(tmp, path)
