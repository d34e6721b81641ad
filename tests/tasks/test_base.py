"""The spine (`tasks/base.py`, the CLI) on a toy task: hooks, metric modes, resume, export checks."""

import contextlib
import io
import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_case import run_task_test
from toy_spine import ToyTask, history, quiet, toy_config  # registers toy_spine

from keras_tasks.pipelines.errors import ConfigError
from keras_tasks.scripts import cli
from keras_tasks.tasks import base


@pytest.fixture(autouse=True)
def _reset_toy():
    ToyTask.scores, ToyTask.extra_callbacks = None, ()
    yield
    ToyTask.scores, ToyTask.extra_callbacks = None, ()
    keras.config.set_dtype_policy("float32")


def test_tasks_are_discovered_from_the_package():
    tasks = base.discover_tasks()
    assert {"text_classification", "image_classification", "toy_spine"} <= set(tasks)
    with pytest.raises(KeyError, match="unknown task 'nope'; available: .*text_classification"):
        base.get_task_class("nope")


def test_each_metric_declares_its_direction():
    assert ToyTask.monitor_mode("val_loss") == "min" and ToyTask.monitor_mode("val_accuracy") == "max"
    assert ToyTask.monitor_mode("val_perplexity") == "min"  # not "max" because the name lacks "loss"
    with pytest.raises(ConfigError, match="does not know whether 'wer'"):
        ToyTask.monitor_mode("val_wer")


def test_task_metric_is_logged_monitored_and_picks_the_best_epoch(tmp_path):
    ToyTask.validation_metrics_each_epoch = True
    weights_by_epoch = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights_by_epoch.append([w.copy() for w in self.model.get_weights()])

    try:
        # Validation perplexity per epoch 5, 3, 4: epoch 1 is best (min), though "perplexity" lacks "loss".
        ToyTask.scores = [5.0, 3.0, 4.0, 7.0, 7.0]
        ToyTask.extra_callbacks = (Record(),)
        run_dir = str(tmp_path / "run")
        metrics = base.train("toy_spine", toy_config(**{"train.epochs": 3, "train.monitor": "val_perplexity"}), run_dir, log=quiet)
    finally:
        ToyTask.validation_metrics_each_epoch = False
    assert [float(row["val_perplexity"]) for row in history(run_dir)] == [5.0, 3.0, 4.0]
    final = keras.saving.load_model(os.path.join(run_dir, "model.keras")).get_weights()
    for got, want in zip(final, weights_by_epoch[1]):
        np.testing.assert_allclose(got, want)
    # The per-split hook's metrics merge into metrics.json next to model.evaluate's.
    assert metrics["validation"]["perplexity"] == 7.0 and "accuracy" in metrics["test"] and "perplexity" in metrics["test"]


def test_task_callbacks_run_before_checkpointing(tmp_path):
    class AddScore(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_accuracy_bonus"] = 1.0 - epoch

    ToyTask.metric_modes = {"perplexity": "min", "accuracy_bonus": "max"}
    ToyTask.extra_callbacks = (AddScore(),)
    try:
        run_dir = str(tmp_path / "run")
        base.train("toy_spine", toy_config(**{"train.monitor": "val_accuracy_bonus"}), run_dir, log=quiet)
    finally:
        ToyTask.metric_modes = {"perplexity": "min"}
    assert os.path.exists(os.path.join(run_dir, "best.weights.h5"))  # the checkpoint saw the task's metric
    assert [row["val_accuracy_bonus"] for row in history(run_dir)] == ["1.0", "0.0"]


class _Fail(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        raise AssertionError("retrained")


def test_crash_between_model_and_metrics_only_evaluates_on_rerun(tmp_path):
    run_dir = str(tmp_path / "run")
    config = toy_config()
    first = base.train("toy_spine", config, run_dir, log=quiet)
    os.remove(os.path.join(run_dir, "metrics.json"))  # as if killed while evaluating
    again = base.train("toy_spine", config, run_dir, log=quiet, callbacks=[_Fail()])
    assert again["training"] == first["training"] and again["training"]["epochs_run"] == 2
    assert again["test"] == pytest.approx(first["test"])
    assert len(history(run_dir)) == 2


def test_older_run_dirs_resume_when_new_config_fields_appear(tmp_path):
    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    run_dir = str(tmp_path / "run")
    config = toy_config()
    with pytest.raises(KeyboardInterrupt):
        base.train("toy_spine", config, run_dir, log=quiet, callbacks=[Kill()])
    path = os.path.join(run_dir, "config.json")
    with open(path) as f:
        payload = json.load(f)
    del payload["config"]["train"]["clipnorm"]  # written by a version without the field
    with open(path, "w") as f:
        json.dump(payload, f)
    base.train("toy_spine", config, run_dir, log=quiet)
    assert [int(row["epoch"]) for row in history(run_dir)] == [0, 1]
    with pytest.raises(ConfigError, match="different config"):
        base.train("toy_spine", toy_config(**{"train.clipnorm": 1.0}), run_dir, log=quiet)


def test_folds_on_a_task_without_folds_is_a_clear_error(tmp_path):
    config = base.resolve_config("image_classification", {})
    with pytest.raises(ConfigError, match="no k-fold cross-validation"):
        base.train_cv("image_classification", config, str(tmp_path / "cv"), folds=3, log=quiet)
    assert not os.path.exists(tmp_path / "cv" / "cv.json")


@pytest.mark.parametrize("name", ["../escape", "a b", "", ".hidden", "a/b", ".."])
def test_export_refuses_names_the_server_would_not_serve(tmp_path, name):
    with pytest.raises(ConfigError, match="--name"):
        base.export(str(tmp_path / "no-run"), name, base_dir=str(tmp_path / "saved_models"))
    assert not os.path.exists(tmp_path / "escape")


def test_mixed_precision_run_exports_float32(tmp_path):
    run_dir = str(tmp_path / "run")
    base.train("toy_spine", toy_config(**{"train.mixed_precision": True}), run_dir, log=quiet)
    trained = base.load_trained_model(run_dir)
    assert trained.get_layer("hidden").dtype_policy.name == "mixed_float16"
    keras.config.set_dtype_policy("mixed_float16")  # export must not depend on the caller's policy
    task, _ = base.load_run(run_dir)
    task.restore(os.path.join(run_dir, "assets"))
    inference = task.build_inference_model(trained)
    assert {layer.dtype_policy.name for layer in inference.layers} == {"float32"}
    path = base.export(run_dir, "toy", base_dir=str(tmp_path / "saved_models"))
    assert keras.config.dtype_policy().name == "mixed_float16"  # the caller's policy is left alone
    keras.config.set_dtype_policy("float32")
    x = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")
    served = tf.saved_model.load(path).signatures["serving_default"](features=tf.constant(x))
    assert served["probabilities"].dtype == tf.float32
    np.testing.assert_allclose(served["probabilities"].numpy(), inference.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(served["probabilities"].numpy(), trained.predict(x, verbose=0), atol=2e-3)


def test_optimizer_clipnorm_and_schedules():
    task = ToyTask(toy_config(**{"train.clipnorm": 5.0, "train.optimizer": "sgd", "train.learning_rate": 1.0,
                                 "train.lr_schedule": "step", "train.lr_decay_start": 4, "train.lr_decay_factor": 0.5}))
    optimizer = task.make_optimizer(steps_per_epoch=10)
    assert optimizer.global_clipnorm == 5.0 and optimizer.clipnorm is None  # one norm over all gradients
    schedule = optimizer._learning_rate
    rates = [float(schedule(epoch * 10 + 3)) for epoch in range(7)]
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]  # Zaremba et al.'s small LM
    with pytest.raises(ConfigError, match="lr_schedule must be"):
        ToyTask(toy_config(**{"train.lr_schedule": "linear"})).make_optimizer(10)


def test_history_logs_the_rate_each_epoch_ran_at(tmp_path):
    run_dir = str(tmp_path / "run")
    config = toy_config(**{"train.lr_schedule": "step", "train.lr_decay_start": 1, "train.lr_decay_factor": 0.5,
                           "train.epochs": 3, "train.learning_rate": 0.08})
    base.train("toy_spine", config, run_dir, log=quiet)
    assert [float(row["learning_rate"]) for row in history(run_dir)] == pytest.approx([0.08, 0.04, 0.02])


def test_a_dataset_of_unknown_length_trains_without_a_false_ran_out_of_data_warning(tmp_path):
    ToyTask.unknown_length = True
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            base.train("toy_spine", toy_config(**{"train.epochs": 2}), str(tmp_path / "run"), log=quiet)
        assert len(history(str(tmp_path / "run"))) == 2
        assert not [w for w in caught if "ran out of data" in str(w.message)]
        # Asking for more steps than the data has is still warned about.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            base.train("toy_spine", toy_config(**{"train.epochs": 1, "train.steps_per_epoch": 1000}),
                       str(tmp_path / "run_steps"), log=quiet)
        assert [w for w in caught if "ran out of data" in str(w.message)]
    finally:
        ToyTask.unknown_length = False


def test_plateau_schedule_lowers_the_rate(tmp_path):
    class Worse(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = 1.0 + epoch  # never improves

    ToyTask.extra_callbacks = (Worse(),)
    run_dir = str(tmp_path / "run")
    config = toy_config(**{"train.lr_schedule": "plateau", "train.lr_decay_patience": 0, "train.epochs": 3,
                           "train.learning_rate": 0.1, "train.lr_decay_factor": 0.1})
    base.train("toy_spine", config, run_dir, log=quiet)
    rates = [float(row["learning_rate"]) for row in history(run_dir)]
    # Each row holds the rate its epoch ran at; the rate drops after every epoch without improvement.
    assert rates == pytest.approx([0.1, 0.1, 0.01])


def test_cli_shows_user_errors_in_one_line_and_bugs_with_a_traceback(monkeypatch, tmp_path, capsys):
    assert cli.main(["train", "toy_spine", "--set", "train.epochs=many", "--run-dir", str(tmp_path / "r")]) == 2
    assert "error: bad value for 'train.epochs'" in capsys.readouterr().err

    def bug(*args, **kwargs):
        raise ValueError("a programming error")

    monkeypatch.setattr(base, "train", bug)
    with pytest.raises(ValueError, match="a programming error"):
        cli.main(["train", "toy_spine", "--run-dir", str(tmp_path / "r2")])


def test_cli_task_flags_and_list():
    parser = cli.build_parser()
    args = parser.parse_args(["train", "text_classification", "--embeddings", "v.txt", "--folds", "10"])
    assert args.model__embeddings_path == "v.txt" and args.folds == 10
    with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
        parser.parse_args(["train", "image_classification", "--embeddings", "v.txt"])  # not its flag
    with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--run-dir", "x", "--folds", "3"])  # evaluate finds folds itself
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["list"]) == 0
    text = out.getvalue()
    assert "text_classification:" in text and "  trec " in text and "image_classification:" in text and "  mnist " in text


def test_toy_task_through_the_shared_task_test(tmp_path):
    x = np.random.default_rng(2).normal(size=(4, 3)).astype("float32")
    metrics, path, outputs = run_task_test("toy_spine", {}, {"serving_default": {"features": x}}, tmp_path)
    assert outputs["serving_default"]["probabilities"].shape == (4, 2)
    assert set(outputs["serving_default"]["label"].tolist()) <= {b"negative", b"positive"}


def test_every_task_has_a_card_pointing_at_its_module():
    """The command line reads tasks/catalog.py instead of importing tasks; the two must not drift apart."""
    from keras_tasks.tasks import catalog

    tasks = base.discover_tasks()
    for name, card in catalog.CARDS.items():
        assert tasks[name].__module__ == card.module, name
        assert card.summary and card.models and card.datasets(), name
    for name, task_class in tasks.items():
        if task_class.__module__.startswith("keras_tasks."):
            assert name in catalog.CARDS, f"task {name} has no card in tasks/catalog.py"
        for stale in ("cli_flags", "datasets", "format_predictions", "supports_folds"):
            assert not hasattr(task_class, stale), f"{name}.{stale} belongs in its card in tasks/catalog.py"
    assert catalog.card("toy_spine").format_predictions(["x"], {"label": [b"positive"]}) == ["label=positive\tx"]
