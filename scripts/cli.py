"""`keras-tasks`: one console script, one subcommand per verb (in the style of onmt-main).

    keras-tasks train TASK [--model M] [--dataset D] [--epochs N] ... [--set section.key=value] [--config FILE]
    keras-tasks evaluate --run-dir DIR
    keras-tasks export --run-dir DIR --name NAME [--version N]
    keras-tasks predict --model saved_models/NAME "text" ...
    keras-tasks list
"""

import argparse
import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Common flags: each maps onto one config key.
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
    "embeddings": "model.embeddings_path",
    "embeddings_format": "model.embeddings_format",
    "embedding_mode": "model.embedding_mode",
}

# Subcommands whose logic lives in another room: (command, module, help). The module
# provides `add_arguments(parser)` and `main(args)`.
_COMMANDS = (
    ("serve", "keras_tasks.serving.server", "serve SavedModels over the TF Serving REST API"),
    ("loadtest", "keras_tasks.serving.loadtest", "bounded load test of a server against in-process calls"),
)
# Modules that add their own subparser(s): `add_arguments(subparsers)`.
_SUBPARSER_MODULES = ("keras_tasks.scripts.embeddings_cmd",)


def _add_train(subparsers):
    p = subparsers.add_parser("train", help="train a task, evaluate it on the test split")
    p.add_argument("task", help="task name (see `keras-tasks list`)")
    p.add_argument("--model", help="model name, e.g. textcnn, bilstm_attention, lenet5, resnet20")
    p.add_argument("--dataset", help="dataset name, a path to your own data, or tfds:NAME")
    p.add_argument("--data-dir", help="folder holding the datasets (default: $KERAS_TASKS_DATA)")
    p.add_argument("--download", action="store_true", default=None, help="download a missing named dataset")
    p.add_argument("--max-examples", type=int, help="cap the training examples, for quick runs")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--mixed-precision", action="store_true", default=None, help="float16 compute (GPU)")
    p.add_argument("--jit", action="store_true", default=None, help="XLA-compile the train step")
    p.add_argument("--embeddings", help="pretrained word vectors (word2vec, GloVe, fastText, KeyedVectors)")
    p.add_argument("--embeddings-format", help="vector file format when it cannot be detected")
    p.add_argument("--embedding-mode", help="rand | static | non-static | multichannel")
    p.add_argument("--folds", type=int, help="k-fold cross-validation (datasets without a test split, e.g. mr)")
    p.add_argument("--run-dir", help="where config, checkpoints, logs and metrics go (default: runs/TASK-MODEL-DATASET)")
    p.add_argument("--config", help="YAML or JSON file of config sections")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one config value")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=_train)


def _train(args):
    import json

    from keras_tasks.tasks import base, config as config_lib

    flags = {key: getattr(args, name) for name, key in _FLAG_KEYS.items() if hasattr(args, name)}
    config = base.resolve_config(args.task, flags, args.config, args.set)
    if args.print_config:
        print(json.dumps(config_lib.to_dict(config), indent=2))
        return 0
    run_dir = args.run_dir or os.path.join(
        "runs", f"{args.task}-{config.model.name}-{_slug(config.data.dataset)}" + (f"-cv{args.folds}" if args.folds else "")
    )
    print(f"run directory: {run_dir}")
    if args.folds:
        metrics = base.train_cv(args.task, config, run_dir, args.folds)
        _print_metrics(metrics, f"{args.folds}-fold cross-validation")
    else:
        metrics = base.train(args.task, config, run_dir)
        _print_metrics(metrics, "test")
    return 0


def _slug(text):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in os.path.basename(str(text).rstrip("/")))


def _print_metrics(metrics, title):
    test = metrics.get("test", {})
    parts = [f"{k}={v:.4f}" for k, v in test.items() if isinstance(v, float)]
    print(f"{title}: " + ", ".join(parts))


def _add_evaluate(subparsers):
    p = subparsers.add_parser("evaluate", help="metrics of a trained run on its standard test split")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--folds", type=int, help="accepted for symmetry with train; a CV run dir is detected itself")
    p.set_defaults(func=_evaluate)


def _evaluate(args):
    from keras_tasks.tasks import base

    metrics = base.evaluate(args.run_dir)
    title = f"{metrics['folds']}-fold cross-validation" if "folds" in metrics else "test"
    _print_metrics(metrics, title)
    return 0


def _add_export(subparsers):
    p = subparsers.add_parser("export", help="write a TF Serving SavedModel: BASE/NAME/VERSION/")
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


def _add_predict(subparsers):
    p = subparsers.add_parser("predict", help="run an exported SavedModel (or a server) on inputs")
    p.add_argument("--model", required=True, help="saved_models/NAME (latest version), a version folder, or NAME with --server")
    p.add_argument("inputs", nargs="*", help="texts, or image files for image models")
    p.add_argument("--input-file", help="file with one input per line")
    p.add_argument("--server", help="TF-Serving REST URL, e.g. http://127.0.0.1:8501")
    p.add_argument("--signature", default="serving_default")
    p.add_argument("--top-words", type=int, default=5, help="attention models: how many top-weighted words to show")
    p.set_defaults(func=_predict)


def _predict(args):
    from keras_tasks.tasks import predict

    inputs = list(args.inputs)
    if args.input_file:
        with open(args.input_file, encoding="utf-8") as f:
            inputs += [line.rstrip("\n") for line in f if line.strip()]
    if not inputs:
        print("error: give inputs on the command line or with --input-file", file=sys.stderr)
        return 2
    if args.server:
        from keras_tasks.serving import client

        results = client.predict_columns(args.server, args.model, inputs, signature_name=args.signature)
    else:
        results = predict.predict(args.model, inputs, signature=args.signature)
    for line in predict.format_results(inputs, results, args.top_words):
        print(line)
    return 0


def _add_list(subparsers):
    p = subparsers.add_parser("list", help="tasks and named datasets")
    p.set_defaults(func=_list)


def _list(args):
    from keras_tasks.pipelines.text_datasets import DATASETS
    from keras_tasks.tasks import base

    base._import_builtin_tasks()
    print("tasks:", ", ".join(sorted(base.TASKS)))
    print("text datasets:")
    for name, spec in sorted(DATASETS.items()):
        print(f"  {name:14s} {spec.description}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="keras-tasks", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_evaluate, _add_export, _add_predict, _add_list):
        add(subparsers)
    for command, module_name, help_text in _COMMANDS:
        module = _optional_import(module_name)
        if module is not None:
            p = subparsers.add_parser(command, help=help_text)
            module.add_arguments(p)
            p.set_defaults(func=module.main)
    for module_name in _SUBPARSER_MODULES:
        module = _optional_import(module_name)
        if module is not None:
            module.add_arguments(subparsers)
    return parser


def _optional_import(name):
    """A room that is not installed (e.g. a trimmed install) just has no subcommand."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            return None
        raise


def main(argv=None):
    args = build_parser().parse_args(argv)
    from keras_tasks.pipelines.errors import DataError
    from keras_tasks.serving.client import ServingError

    try:
        return args.func(args) or 0
    except (DataError, FileNotFoundError, KeyError, ValueError, ServingError) as e:
        if os.environ.get("KERAS_TASKS_DEBUG"):
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message} (set KERAS_TASKS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
