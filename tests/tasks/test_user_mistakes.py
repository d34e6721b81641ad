"""Bad values, kills and reruns a new user runs into: one clear line (exit 2), and no run lost or locked."""

import os
import time

import keras
import pytest
from toy_spine import ToyTask, quiet, toy_config  # registers the toy task

from keras_tasks.pipelines.errors import ConfigError, RunDirError
from keras_tasks.scripts import cli
from keras_tasks.tasks import base

# (--set value, the message's key part): every one a ConfigError naming the field, never a traceback.
BAD_VALUES = [
    ("model.hidden_dim=[1,2]", "bad value for 'model.hidden_dim': expected an integer, got [1, 2]"),
    ("train.batch_size=0", "bad value for 'train.batch_size': 0; it must be at least 1"),
    ("train.epochs=-3", "bad value for 'train.epochs': -3; it must be at least 1"),
    ("train.epochs=true", "bad value for 'train.epochs': expected an integer, got True"),
    ("train.epochs=2.5", "bad value for 'train.epochs': expected an integer, got 2.5"),
    ("train.learning_rate=0", "bad value for 'train.learning_rate': 0.0; it must be greater than 0"),
    ("train.learning_rate=fast", "bad value for 'train.learning_rate': expected a number, got 'fast'"),
    ("train.warmup_fraction=1", "bad value for 'train.warmup_fraction': 1.0; it must be at least 0 and less than 1"),
    ("train.lr_decay_factor=0", "bad value for 'train.lr_decay_factor': 0.0; it must be greater than 0 and at most 1"),
    ("train.clipnorm=-1", "bad value for 'train.clipnorm': -1.0; it must be greater than 0"),
    ("train.mixed_precision=yes please", "bad value for 'train.mixed_precision': expected true or false"),
    ("train.optimizer=[adam]", "bad value for 'train.optimizer': expected a string, got ['adam']"),
    ("data.max_examples=0", "bad value for 'data.max_examples': 0; it must be at least 1"),
]


@pytest.fixture(autouse=True)
def _reset_toy():
    yield
    ToyTask.scores, ToyTask.extra_callbacks = None, ()


@pytest.mark.parametrize("setting, message", BAD_VALUES, ids=[s for s, _ in BAD_VALUES])
def test_bad_values_are_one_line_naming_the_field(setting, message, tmp_path, capsys):
    with pytest.raises(ConfigError) as caught:
        base.resolve_config("toy_spine", {}, overrides=[setting])
    assert message in str(caught.value)
    assert cli.main(["train", "toy_spine", "--set", setting, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "run")  # nothing written for a refused command


@pytest.mark.parametrize("task, setting, message", [
    ("text_classification", "data.encoding=nonsense-enc", "'nonsense-enc' is not a text encoding Python knows"),
    ("text_classification", "model.dropout=1", "bad value for 'model.dropout': 1.0; it must be at least 0 and less"),
    ("text_classification", "model.filter_sizes=[3,0]", "bad value for 'model.filter_sizes': (3, 0); it must be at"),
    ("text_classification", "data.folds=1", "bad value for 'data.folds': 1; it must be at least 2"),
    ("text_classification", "data.bucket_boundaries=[100,50]", "bad value for 'data.bucket_boundaries': (100, 50); it"
     " must be increasing whole token counts"),
    ("sequence_tagging", "data.bucket_boundaries=[0,8]", "bad value for 'data.bucket_boundaries': (0, 8)"),
    ("image_classification", "data.validation_fraction=1.5", "bad value for 'data.validation_fraction': 1.5"),
    ("language_model", "data.sequence_length=0", "bad value for 'data.sequence_length': 0; it must be at least 1"),
    ("language_model", "data.max_tokens=2", "bad value for 'data.max_tokens': 2; it must be at least 3"),
])
def test_every_task_checks_its_own_fields(task, setting, message):
    with pytest.raises(ConfigError) as caught:
        base.resolve_config(task, {}, overrides=[setting])
    assert message in str(caught.value)


def test_an_unknown_key_in_a_config_file_lists_the_known_ones(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  dropuot: 0.5\n")
    with pytest.raises(ConfigError) as caught:
        base.resolve_config("toy_spine", {}, config_file=str(path))
    assert str(caught.value) == f"{path}: unknown config key 'model.dropuot'; known here: ['hidden_dim', 'name']"


def test_a_run_that_failed_before_training_takes_the_corrected_config(tmp_path):
    class BrokenData(ToyTask):
        def load_data(self):
            raise ConfigError("data.size: pretend the data could not be read; fix it with --set data.size=96")

    base.register_task("toy_broken_data")(BrokenData)
    run_dir = str(tmp_path / "run")
    with pytest.raises(ConfigError, match="pretend"):
        base.train("toy_broken_data", base.resolve_config("toy_broken_data", {}), run_dir, log=quiet)
    assert os.path.exists(os.path.join(run_dir, "config.json"))
    said = []
    metrics = base.train("toy_spine", toy_config(**{"data.size": 120}), run_dir, log=said.append)  # the fix
    assert metrics["training"]["epochs_run"] == 2 and any("training never started" in line for line in said)
    # Once training has started, a different config is refused: the run would mix two settings.
    with pytest.raises(ConfigError, match="different config"):
        base.train("toy_spine", toy_config(**{"data.size": 96}), run_dir, log=quiet)


def test_a_run_recorded_with_a_relative_data_dir_resumes_with_the_absolute_one(tmp_path, monkeypatch):
    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    with pytest.raises(KeyboardInterrupt):  # an older version recorded --data-dir as given
        base.train("toy_spine", toy_config(**{"data.data_dir": "data"}), "run", log=quiet, callbacks=[Kill()])
    metrics = base.train("toy_spine", toy_config(**{"data.data_dir": str(tmp_path / "data")}), "run", log=quiet)
    assert metrics["training"]["epochs_run"] == 2


def test_evaluate_and_export_of_an_untrained_run_say_to_finish_training(tmp_path):
    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    run_dir = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        base.train("toy_spine", toy_config(), run_dir, log=quiet, callbacks=[Kill()])
    for call in (lambda: base.evaluate(run_dir), lambda: base.export(run_dir, "toy", base_dir=str(tmp_path / "sm"))):
        with pytest.raises(RunDirError, match="has not finished training .* rerun the same `keras-tasks train"):
            call()


def test_export_removes_what_killed_exports_left(tmp_path):
    run_dir = str(tmp_path / "run")
    base.train("toy_spine", toy_config(), run_dir, log=quiet)
    model_dir = tmp_path / "sm" / "toy"
    dead = model_dir / ".tmp-1-999999999"  # no such process
    old = model_dir / f".tmp-1-{os.getppid()}"  # a live process, but a day old
    fresh = model_dir / f".tmp-2-{os.getppid()}"  # a live process exporting right now: left alone
    for folder in (dead, old, fresh):
        (folder / "variables").mkdir(parents=True)
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    assert base.export(run_dir, "toy", base_dir=str(tmp_path / "sm")) == str(model_dir / "1")
    assert sorted(os.listdir(model_dir)) == [".tmp-2-" + str(os.getppid()), "1"]


def test_early_stopping_says_when_and_why(tmp_path):
    class Worse(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = 1.0 + epoch  # never improves after the first epoch

    ToyTask.extra_callbacks = (Worse(),)
    said = []
    config = toy_config(**{"train.epochs": 6, "train.early_stopping_patience": 1})
    metrics = base.train("toy_spine", config, str(tmp_path / "run"), log=said.append)
    assert metrics["training"]["epochs_run"] == 2
    assert "early stopping after epoch 2 of 6: val_loss did not improve for 1 epochs" in "\n".join(said)
