"""`keras-tasks`: one console script, one subcommand per verb (in the style of onmt-main).

    keras-tasks train TASK [--model M] [--dataset D] [--epochs N] ... [--set section.key=value] [--config FILE]
    keras-tasks evaluate --run-dir DIR
    keras-tasks export --run-dir DIR --name NAME [--version N]
    keras-tasks predict --model saved_models/NAME "text" ... [--signature S] [--set name=value ...]
    keras-tasks list
"""

import argparse
import contextlib
import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Flags every task has: each maps onto one config key. Tasks add their own (`Task.cli_flags`).
_FLAG_KEYS = {
    "model": "model.name",
    "dataset": "data.dataset",
    "data_dir": "data.data_dir",
    "max_examples": "data.max_examples",
    "download": "data.download",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "learning_rate": "train.learning_rate",
    "mixed_precision": "train.mixed_precision",
    "jit": "train.jit_compile",
    "distribution": "train.distribution",
}

# Subcommands whose logic lives in another room: (command, options module, main module, help). The options
# module's `add_arguments(parser)` is TensorFlow-free, so `--help` answers at once; the main module's
# `main(args)` is imported only to run.
_COMMANDS = (
    ("serve", "keras_tasks.serving.options:add_arguments", "keras_tasks.serving.server",
     "serve SavedModels over the TF Serving REST API"),
    ("loadtest", "keras_tasks.serving.options:loadtest_arguments", "keras_tasks.serving.loadtest",
     "bounded load test of a server against in-process calls"),
)
# Modules that add their own subparser(s): `add_arguments(subparsers)`.
_SUBPARSER_MODULES = (
    ("embeddings", "keras_tasks.scripts.embeddings_cmd", "train word2vec vectors, inspect pretrained vectors"),
)


def add_subcommand(subparsers, name, help_text):
    """A subcommand whose own `--help` opens with the line `keras-tasks --help` shows for it."""
    return subparsers.add_parser(name, help=help_text, description=help_text)


def _configure_train(p):
    from keras_tasks.tasks import catalog

    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK", help="one of: " + ", ".join(sorted(catalog.CARDS)))
    for name, card in sorted(catalog.CARDS.items()):
        t = tasks.add_parser(name, help=card.summary, description=card.summary)
        _add_common_train_flags(t, card)
        for flag in card.flags:
            dest = flag.key.replace(".", "__")
            if flag.type is bool:
                t.add_argument(flag.flag, dest=dest, action="store_true", default=None, help=flag.help)
            else:
                t.add_argument(flag.flag, dest=dest, type=flag.type, help=flag.help)
        if card.supports_folds:
            t.add_argument("--folds", type=int, help="k-fold cross-validation (datasets without a test split, e.g. mr)")
        t.set_defaults(func=_train, task_flags=[f.key for f in card.flags])


def _add_common_train_flags(p, card):
    p.add_argument("--model", help="one of: " + ", ".join(card.models))
    p.add_argument("--dataset", help="one of: " + ", ".join(sorted(card.datasets())) + " (see `keras-tasks list`), or tfds:NAME")
    p.add_argument("--data-dir", help="folder holding the datasets (default: $KERAS_TASKS_DATA)")
    p.add_argument(
        "--download", action=argparse.BooleanOptionalAction, default=None,
        help="fetch a missing named dataset into the data folder, checksum verified (default: yes)",
    )
    p.add_argument("--max-examples", type=int, help="cap the training examples, for quick runs")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--mixed-precision", action="store_true", default=None, help="float16 compute (GPU)")
    p.add_argument("--jit", action="store_true", default=None, help="XLA-compile the train step")
    p.add_argument(
        "--distribution", choices=("none", "mirrored", "multi_worker"),
        help="tf.distribute: mirrored (local GPUs), multi_worker (cluster from TF_CONFIG); --batch-size is per replica",
    )
    p.add_argument("--run-dir", help="where config, checkpoints, logs and metrics go (default: runs/TASK-MODEL-DATASET)")
    p.add_argument("--config", help="YAML or JSON file of config sections")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values: --set model.dropout=0.3 train.epochs=5 (repeatable)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def _train(args):
    import json

    from keras_tasks.tasks import base, config as config_lib

    flags = {key: getattr(args, name) for name, key in _FLAG_KEYS.items() if hasattr(args, name)}
    for key in args.task_flags:
        flags[key] = getattr(args, key.replace(".", "__"))
    if flags.get("data.data_dir"):  # recorded in config.json: absolute, so a resume from another folder finds it
        from keras_tasks.pipelines.data_dir import resolve

        flags["data.data_dir"] = resolve(flags["data.data_dir"])
    config = base.resolve_config(args.task, flags, args.config, args.set)
    if args.print_config:
        print(json.dumps(config_lib.to_dict(config), indent=2))
        return 0
    folds = getattr(args, "folds", None)
    run_dir = args.run_dir or os.path.join(
        "runs", f"{args.task}-{config.model.name}-{_slug(config.data.dataset)}" + (f"-cv{folds}" if folds else "")
    )
    print(f"run directory: {run_dir}")
    if folds:
        metrics = base.train_cv(args.task, config, run_dir, folds)
        _print_metrics(metrics, f"{folds}-fold cross-validation")
    else:
        metrics = base.train(args.task, config, run_dir)
        _print_metrics(metrics)
    return 0


def _slug(text):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in os.path.basename(str(text).rstrip("/")))


def _print_metrics(metrics, title=None):
    """One line per split: every numeric metric (model.evaluate's and the task's own, e.g. perplexity)."""
    for split in ("validation", "test"):
        values = metrics.get(split, {})
        parts = [f"{k}={v:.4f}" for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if parts:
            print(f"{split}{f' ({title})' if title else ''}: " + ", ".join(parts))
    for key, value in metrics.items():  # e.g. sacreBLEU's signature strings, which say how BLEU was computed
        if key.endswith("_signature") and isinstance(value, str):
            print(f"{key}: {value}")


def _configure_evaluate(p):
    p.add_argument("--run-dir", required=True)
    p.set_defaults(func=_evaluate)


def _evaluate(args):
    from keras_tasks.tasks import base

    metrics = base.evaluate(args.run_dir)
    _print_metrics(metrics, f"{metrics['folds']}-fold cross-validation" if "folds" in metrics else None)
    return 0


def _configure_export(p):
    p.add_argument("--run-dir", required=True)
    p.add_argument("--name", required=True, help="model name (the folder under --base-dir)")
    p.add_argument("--version", type=int, help="integer version (default: the next one)")
    p.add_argument("--base-dir", default="saved_models")
    p.set_defaults(func=_export)


def _export(args):
    from keras_tasks.tasks import base

    path = base.export(args.run_dir, args.name, args.version, args.base_dir)
    print(f"exported {path}")
    return 0


def _configure_predict(p):
    p.add_argument("--model", required=True, help="saved_models/NAME (latest version), a version folder, or NAME with --server")
    p.add_argument("inputs", nargs="*", help="texts (or prompts), or image files for image models")
    p.add_argument("--input-file", help="file with one input per line")
    p.add_argument("--server", help="TF-Serving REST URL, e.g. http://127.0.0.1:8501")
    p.add_argument("--signature", default="serving_default", help="e.g. generate, score (see the task's docs)")
    p.add_argument(
        "--set", action="extend", nargs="+", default=[], metavar="NAME=VALUE",
        help="other signature inputs (e.g. --set max_length=300 temperature=0.8) or output options (top_words=3); "
        "a value without '=' after --set is taken as one more input",
    )
    p.add_argument("--top-words", type=int, help="attention models: how many top-weighted words to show")
    p.set_defaults(func=_predict)


def _predict_options(args):
    import yaml

    from keras_tasks.pipelines.errors import ConfigError

    options = {}
    for item in args.set:
        for part in item.split():
            key, sep, text = part.partition("=")
            if not sep or not key:
                raise ConfigError(f"--set expects NAME=VALUE, got {part!r}")
            options[key] = yaml.safe_load(text) if text else ""
    if args.top_words is not None:
        options["top_words"] = args.top_words
    return options


def _predict(args):
    from keras_tasks.tasks import predict

    # `--set` takes every word after it, so an input written after the settings lands there: it has no '='.
    inputs = list(args.inputs) + [item for item in args.set if "=" not in item]
    args.set = [item for item in args.set if "=" in item]
    if args.input_file:
        with open(args.input_file, encoding="utf-8") as f:
            inputs += [line.rstrip("\n") for line in f if line.strip()]
    if not inputs:
        print("error: give inputs on the command line or with --input-file", file=sys.stderr)
        return 2
    options = _predict_options(args)
    if args.server:
        results, task_name = predict.predict_server(args.server, args.model, inputs, args.signature, options)
    else:
        results = predict.predict(args.model, inputs, signature=args.signature, options=options)
        task_name = predict.export_task_name(args.model)
    options["signature"] = args.signature
    for line in predict.format_results(task_name, inputs, results, options):
        print(line)
    return 0


def _configure_list(p):
    p.set_defaults(func=_list)


def _list(args):
    from keras_tasks.tasks import catalog

    for name, card in sorted(catalog.CARDS.items()):
        print(f"{name}: {card.summary}")
        print(f"  models: {', '.join(card.models)}")
        for dataset, description in sorted(card.datasets().items()):
            print(f"  {dataset:16s} {description}")
    return 0


_BUILTIN = (
    ("train", _configure_train, "train a task, evaluate it on the test split"),
    ("evaluate", _configure_evaluate, "metrics of a trained run (or every fold of a CV run) on its standard splits"),
    ("export", _configure_export, "write a TF Serving SavedModel: BASE/NAME/VERSION/"),
    ("predict", _configure_predict, "run an exported SavedModel (or a server) on inputs"),
    ("list", _configure_list, "tasks and their named datasets"),
)


def build_parser(argv=None):
    """The `keras-tasks` parser. Given the command line, only the chosen subcommand is built in full: `--help`
    and a mistyped command then answer without importing TensorFlow (the tasks and the server import it)."""
    parser = argparse.ArgumentParser(prog="keras-tasks", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    chosen = None
    if argv is not None:
        chosen = next((a for a in argv if not a.startswith("-")), "")

    def full(name):
        return chosen is None or chosen == name

    for name, configure, help_text in _BUILTIN:
        p = add_subcommand(subparsers, name, help_text)
        if full(name):
            configure(p)
    for name, options_name, main_module, help_text in _COMMANDS:
        p = add_subcommand(subparsers, name, help_text)
        if full(name):
            module_name, _, function = options_name.partition(":")
            getattr(importlib.import_module(module_name), function)(p)
            p.set_defaults(func=_run_main(main_module))
    for name, module_name, help_text in _SUBPARSER_MODULES:
        if not full(name):
            add_subcommand(subparsers, name, help_text)
            continue
        module = _optional_import(module_name)
        if module is not None:
            module.add_arguments(subparsers)
    return parser


def _run_main(module_name):
    def run(args):
        return importlib.import_module(module_name).main(args)

    return run


def _optional_import(name):
    """A room that is not installed (e.g. a trimmed install) just has no subcommand."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            return None
        raise


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    from keras_tasks.pipelines.errors import UserError
    from keras_tasks.scripts.quiet_stderr import filtered_stderr
    from keras_tasks.serving.client import ServingError

    # TensorFlow's start-up lines (CUDA stubs on a CPU machine) are dropped, unless KERAS_TASKS_DEBUG is set.
    noisy = "tensorflow" in sys.modules or os.environ.get("KERAS_TASKS_DEBUG")
    quiet = contextlib.nullcontext() if noisy else filtered_stderr()
    # Only the project's user-facing errors become one line; anything else is a bug and keeps its traceback.
    with quiet:
        try:
            return args.func(args) or 0
        except (UserError, ServingError) as e:
            if os.environ.get("KERAS_TASKS_DEBUG"):
                raise
            print(f"error: {e} (set KERAS_TASKS_DEBUG=1 for the traceback)", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
