import collections
import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tasks.pipelines.errors import ConfigError
from keras_tasks.tasks import base
from keras_tasks.tasks import config as config_lib
from keras_tasks.tasks import predict as predict_lib
from keras_tasks.tasks.text_classification import TextClassificationConfig, TextClassificationTask
from test_case import data_dir, run_task_test, tiny_sentiment_lines, write_lines

TINY_MODEL = {"model.embedding_dim": 8, "model.num_filters": 4, "model.hidden_dim": 4, "model.attention_dim": 4}


def tiny_config(dataset, model="textcnn", **overrides):
    flags = {"model.name": model, "data.dataset": dataset, "train.epochs": 1, "train.batch_size": 8}
    flags.update(TINY_MODEL)
    flags.update(overrides)
    return base.resolve_config("text_classification", flags)


@pytest.fixture
def tiny_dataset(tmp_path):
    return write_lines(tmp_path / "reviews.txt", tiny_sentiment_lines(60))


def test_config_overrides_and_file(tmp_path):
    config = TextClassificationConfig()
    config = config_lib.apply_overrides(config, ["model.filter_sizes=[2, 3]", "train.epochs=4", "data.max_length=null"])
    assert config.model.filter_sizes == (2, 3) and config.train.epochs == 4 and config.data.max_length is None
    with pytest.raises(KeyError, match="unknown config key 'model.filterz'"):
        config_lib.apply_overrides(config, ["model.filterz=3"])
    with pytest.raises(ValueError, match="bad value for 'train.epochs'"):
        config_lib.apply_overrides(config, ["train.epochs=many"])
    path = write_lines(tmp_path / "c.yaml", ["model:", "  name: bilstm_attention", "train:", "  batch_size: 7"])
    resolved = base.resolve_config("text_classification", {"train.epochs": 2}, path, ["model.hidden_dim=9"])
    assert (resolved.model.name, resolved.train.batch_size, resolved.train.epochs, resolved.model.hidden_dim) == (
        "bilstm_attention",
        7,
        2,
        9,
    )
    # Presets follow the chosen model/dataset, and flags still win over them.
    assert base.resolve_config("text_classification", {"data.dataset": "imdb"}).train.batch_size == 64  # fasttext
    imdb_textcnn = {"data.dataset": "imdb", "model.name": "textcnn"}
    assert base.resolve_config("text_classification", imdb_textcnn).train.batch_size == 32
    assert base.resolve_config("text_classification", {"data.dataset": "imdb", "train.batch_size": 5}).train.batch_size == 5


def test_bilstm_stays_cudnn_eligible(tiny_dataset, tmp_path):
    task = TextClassificationTask(tiny_config(tiny_dataset, "bilstm_attention"))
    splits = task.load_data()
    task.adapt(splits, str(tmp_path))
    task.restore(str(tmp_path))
    model = task.build_model()
    lstms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.LSTM)]
    assert len(lstms) == 2  # forward and backward
    for lstm in lstms:
        assert lstm.activation is keras.activations.tanh
        assert lstm.recurrent_activation is keras.activations.sigmoid
        assert lstm.recurrent_dropout == 0 and not lstm.unroll and lstm.use_bias
        assert lstm.use_cudnn in ("auto", True)
    # ... and the pipeline pads on the right: every row is ids then zeros.
    for ids, _ in task.make_dataset(splits, "train", training=True).take(3):
        ids = ids.numpy()
        lengths = (ids != 0).sum(axis=1)
        for row, length in zip(ids, lengths):
            assert np.all(row[:length] != 0) and np.all(row[length:] == 0)


@pytest.mark.parametrize("model_name", ["textcnn", "bilstm_attention", "fasttext"])
def test_train_export_reload_equal_on_raw_strings(model_name, tiny_dataset, tmp_path):
    run_dir = str(tmp_path / "run")
    metrics = base.train("text_classification", tiny_config(tiny_dataset, model_name), run_dir, log=lambda *_: None)
    for name in ("config.json", "metrics.json", "model.keras", "history.csv", "assets/vocabulary.txt"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0 and metrics["training"]["epochs_run"] == 1
    assert os.listdir(os.path.join(run_dir, "logs"))  # TensorBoard

    path = base.export(run_dir, "tiny", base_dir=str(tmp_path / "saved_models"))
    assert path.endswith(os.path.join("tiny", "1"))
    labels = open(os.path.join(path, "assets.extra", "labels.txt")).read().split()
    assert labels == ["0", "1"]
    assert json.load(open(os.path.join(path, "assets.extra", "config.json")))["task"] == "text_classification"

    texts = ["a great and lovely film", "dull , boring and flat !", "", "never seen words"]
    served = predict_lib.predict(str(tmp_path / "saved_models" / "tiny"), texts)
    task, _ = base.load_run(run_dir)
    task.restore(os.path.join(run_dir, "assets"))
    model = base.load_trained_model(run_dir)
    in_memory = model.predict(task.vectorizer(texts), verbose=0)
    np.testing.assert_allclose(served["probabilities"], in_memory, rtol=1e-5, atol=1e-6)
    assert [label.decode() for label in served["label"]] == [labels[i] for i in in_memory.argmax(-1)]
    if model_name == "bilstm_attention":
        # Weights sum to 1 over the real tokens; an empty text has none to weigh.
        np.testing.assert_allclose(served["attention"].sum(axis=1), [1.0, 1.0, 0.0, 1.0], rtol=1e-5)
        assert served["tokens"][0].tolist()[:5] == [b"a", b"great", b"and", b"lovely", b"film"]
        assert np.all(served["attention"][0][served["tokens"][0] == b""] == 0)

    # The next export is version 2; an older explicit version is refused.
    assert base.export(run_dir, "tiny", base_dir=str(tmp_path / "saved_models")).endswith("2")
    with pytest.raises(ValueError, match="versions only grow"):
        base.export(run_dir, "tiny", version=1, base_dir=str(tmp_path / "saved_models"))
    assert sorted(os.listdir(tmp_path / "saved_models" / "tiny")) == ["1", "2"]  # no temp dirs left


def test_shared_task_test_on_raw_strings(tiny_dataset, tmp_path):
    flags = {"model.name": "bilstm_attention", "data.dataset": tiny_dataset, "train.batch_size": 8, **TINY_MODEL}
    texts = ["a great and lovely film", "dull , boring and flat !", "never seen words"]
    _, _, outputs = run_task_test("text_classification", flags, {"serving_default": {"text": texts}}, tmp_path)
    np.testing.assert_allclose(outputs["serving_default"]["probabilities"].sum(axis=1), 1.0, rtol=1e-5)


class _Kill(keras.callbacks.Callback):
    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt("simulated kill")


def test_killed_run_resumes_where_it_stopped(tiny_dataset, tmp_path):
    run_dir = str(tmp_path / "run")
    config = tiny_config(tiny_dataset, **{"train.epochs": 4})
    with pytest.raises(KeyboardInterrupt):
        base.train("text_classification", config, run_dir, log=lambda *_: None, callbacks=[_Kill(1)])
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))
    vocabulary = open(os.path.join(run_dir, "assets", "vocabulary.txt")).read()
    base.train("text_classification", config, run_dir, log=lambda *_: None)
    with open(os.path.join(run_dir, "history.csv")) as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2, 3]  # epochs 0-1 before the kill, 2-3 after: none repeated
    assert open(os.path.join(run_dir, "assets", "vocabulary.txt")).read() == vocabulary
    # Same command again: already done, nothing retrained.
    training = base.train("text_classification", config, run_dir, log=lambda *_: None)["training"]
    assert (training["epochs_run"], training["epochs_this_attempt"]) == (4, 2)  # counted over both attempts
    with pytest.raises(ValueError, match="different config"):
        base.train("text_classification", tiny_config(tiny_dataset, **{"train.epochs": 5}), run_dir)


def test_cross_validation_reports_the_mean_of_folds(tiny_dataset, tmp_path):
    config = tiny_config(tiny_dataset, **{"train.steps_per_epoch": 2})
    summary = base.train_cv("text_classification", config, str(tmp_path / "cv"), folds=2, log=lambda *_: None)
    accuracies = [fold["accuracy"] for fold in summary["per_fold_test"]]
    assert summary["folds"] == 2 and len(accuracies) == 2
    assert summary["test"]["accuracy"] == pytest.approx(np.mean(accuracies), abs=1e-6)
    assert base.evaluate(str(tmp_path / "cv"))["test"]["accuracy"] == pytest.approx(summary["test"]["accuracy"], abs=1e-6)


def test_default_model_follows_the_dataset():
    def resolved(flags):
        return base.resolve_config("text_classification", flags)

    mr, imdb = resolved({"data.dataset": "mr"}), resolved({"data.dataset": "imdb"})
    assert mr.model.name == "textcnn" and mr.model.embedding_dim == 300 and mr.data.max_length == 400
    # Documents: fastText, whole reviews, a lazy Adam for the sparse table.
    assert imdb.model.name == "fasttext" and imdb.data.max_length is None and imdb.train.optimizer == "lazy_adam"
    assert imdb.data.max_tokens == 20000 and imdb.model.dropout == 0.0
    kim = resolved({"data.dataset": "imdb", "model.name": "textcnn"})  # Kim's model stays one flag away
    assert kim.model.embedding_dim == 300 and kim.data.max_length == 400 and kim.train.optimizer == "adam"
    with pytest.raises(ConfigError, match="fasttext learns its own"):
        TextClassificationTask(resolved({"model.name": "fasttext", "model.embeddings_path": "vectors.txt"}))


@pytest.mark.parametrize("max_bigrams", [100000, 3])
def test_fasttext_bigram_keys_are_the_most_frequent_training_bigrams(max_bigrams, tiny_dataset, tmp_path):
    task = TextClassificationTask(tiny_config(tiny_dataset, "fasttext", **{"model.max_bigrams": max_bigrams}))
    splits = task.load_data()
    task.adapt(splits, str(tmp_path))
    task.restore(str(tmp_path))
    size = task.vectorizer.vocabulary_size
    ids = task.vectorizer(splits.texts["train"]).numpy()
    counts = collections.Counter(int(a) * size + int(b) for row in ids for a, b in zip(row[:-1], row[1:]) if a and b)
    keys = task.bigram_keys.tolist()
    assert keys == sorted(keys) and len(keys) == min(max_bigrams, len(counts))
    kept = [counts[k] for k in keys]
    dropped = [n for k, n in counts.items() if k not in set(keys)]
    assert min(kept) >= max(dropped, default=0)  # nothing dropped is more frequent than what was kept


def test_tiny_model_learns_the_tiny_task(tmp_path):
    path = write_lines(tmp_path / "reviews.txt", tiny_sentiment_lines(400, seed=1))
    config = tiny_config(path, **{"train.epochs": 8, "train.learning_rate": 0.01})
    metrics = base.train("text_classification", config, str(tmp_path / "run"), log=lambda *_: None)
    assert metrics["test"]["accuracy"] >= 0.9


@pytest.mark.large
def test_textcnn_learns_trec():
    import tempfile

    config = base.resolve_config(
        "text_classification",
        {"model.name": "textcnn", "data.dataset": "trec", "data.data_dir": data_dir(), "train.epochs": 2,
         "model.embedding_dim": 64},
    )
    with tempfile.TemporaryDirectory() as run_dir:
        metrics = base.train("text_classification", config, run_dir, log=lambda *_: None)
    # Majority class (DESC) is 27.6% of the TREC test set.
    assert metrics["test"]["accuracy"] >= 0.75


@pytest.mark.large
def test_fasttext_learns_imdb():
    import tempfile

    config = base.resolve_config(
        "text_classification",
        {"data.dataset": "imdb", "data.data_dir": data_dir(), "data.max_examples": 6000, "train.epochs": 2},
    )
    assert config.model.name == "fasttext"
    with tempfile.TemporaryDirectory() as run_dir:
        metrics = base.train("text_classification", config, run_dir, log=lambda *_: None)
    assert metrics["test"]["accuracy"] >= 0.8  # balanced classes: chance is 0.5


@pytest.mark.large
def test_bilstm_attention_learns_mr():
    import tempfile

    config = base.resolve_config(
        "text_classification",
        {"model.name": "bilstm_attention", "data.dataset": "mr", "data.data_dir": data_dir(), "train.epochs": 2,
         "data.max_examples": 5000,
         "model.embedding_dim": 64, "model.hidden_dim": 32, "model.attention_dim": 32},
    )
    with tempfile.TemporaryDirectory() as run_dir:
        metrics = base.train("text_classification", config, run_dir, log=lambda *_: None)
    assert metrics["test"]["accuracy"] >= 0.65  # balanced classes: chance is 0.5


def test_bucket_boundaries_batch_texts_of_similar_length(tiny_dataset, tmp_path):
    # Texts of 3 to 8 tokens; buckets [.., 5) and [5, ..): a batch never mixes the two.
    task = TextClassificationTask(tiny_config(tiny_dataset, "bilstm_attention", **{"data.bucket_boundaries": [5]}))
    splits = task.load_data()
    task.adapt(splits, str(tmp_path))
    task.restore(str(tmp_path))
    seen = 0
    for ids, labels in task.make_dataset(splits, "train", training=True):
        lengths = (ids.numpy() != 0).sum(axis=1)
        assert np.all(lengths < 5) or np.all(lengths >= 5), lengths
        assert ids.shape[1] == lengths.max()  # padded to the batch's own longest text
        seen += len(labels)
    assert seen == task.num_examples(splits, "train")
