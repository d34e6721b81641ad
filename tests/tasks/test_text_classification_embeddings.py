"""Pretrained embeddings in the text classification task: Kim's rand / static / non-static / multichannel."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from keras_tasks.tasks import base
from keras_tasks.pipelines.errors import ConfigError
from keras_tasks.tasks.text_classification import TextClassificationConfig, TextClassificationTask

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "film", "movie", "the", "a"]


def write_data(directory):
    """A tiny sentiment folder in the task's `label text` format, and GloVe vectors for most of its words."""
    rng = np.random.default_rng(0)
    directory.mkdir()
    lines = []
    for i in range(24):
        label = i % 2
        words = ["the", "film", "was"] + list(rng.choice(WORDS[:3] if label else WORDS[3:6], size=3))
        lines.append(f"{label} {' '.join(words)}")
    (directory / "train.txt").write_text("\n".join(lines[:18]) + "\n", encoding="utf-8")
    (directory / "test.txt").write_text("\n".join(lines[18:]) + "\n", encoding="utf-8")
    vectors = rng.normal(0, 0.5, size=(len(WORDS), 4))
    glove = directory / "glove.txt"
    glove.write_text("".join(f"{w} {' '.join(f'{v:.5f}' for v in row)}\n" for w, row in zip(WORDS, vectors)))
    return directory, glove


def tiny_config(dataset, vectors, mode):
    config = TextClassificationConfig()
    config = base.config_lib.replace_path(config, "data.dataset", str(dataset))
    for key, value in {
        "model.embedding_mode": mode,
        "model.embeddings_path": str(vectors) if vectors else None,
        "model.filter_sizes": (2,),
        "model.num_filters": 3,
        "train.epochs": 1,
        "train.batch_size": 4,
        "train.steps_per_epoch": 2,
        "train.verbose": "0",
    }.items():
        config = base.config_lib.replace_path(config, key, value)
    return config


def trained_embeddings(run_dir):
    model = base.load_trained_model(str(run_dir))
    layer = model.get_layer("embedding")
    return layer, np.load(run_dir / "assets" / "embeddings.npy")


@pytest.mark.parametrize("mode", ["static", "non-static", "multichannel"])
def test_modes_after_a_fit_step(tmp_path, mode):
    dataset, glove = write_data(tmp_path / "data")
    run_dir = tmp_path / "run"
    base.train("text_classification", tiny_config(dataset, glove, mode), str(run_dir), log=lambda *a: None)
    layer, initial = trained_embeddings(run_dir)
    vocabulary = (run_dir / "assets" / "vocabulary.txt").read_text().split()
    assert initial.shape == (len(vocabulary) + 2, 4)
    np.testing.assert_array_equal(initial[0], 0)  # padding
    tuned = layer.embeddings.numpy()
    if mode == "static":
        np.testing.assert_array_equal(tuned, initial)
        assert not layer.trainable_weights
    else:
        assert np.abs(tuned - initial).max() > 1e-5
    if mode == "multichannel":
        np.testing.assert_array_equal(layer.static_embeddings.numpy(), initial)
        assert [w.shape for w in layer.weights] == [initial.shape, initial.shape]
        assert [w.name for w in layer.trainable_weights] == ["embeddings"]
        assert tuple(layer.output.shape) == (None, None, 4)
    coverage = json.loads((run_dir / "embedding_coverage.json").read_text())
    assert coverage["format"] == "glove" and coverage["dim"] == 4
    assert coverage["vocabulary_coverage"] == pytest.approx(1 - 1 / len(vocabulary))  # "was" has no vector
    assert coverage["top_missing"][0][0] == "was"


def test_pretrained_mode_needs_vectors(tmp_path):
    dataset, _ = write_data(tmp_path / "data")
    with pytest.raises(ValueError, match="needs pretrained vectors: add --embeddings PATH"):
        base.train("text_classification", tiny_config(dataset, None, "static"), str(tmp_path / "run"),
                   log=lambda *a: None)


@pytest.mark.large
def test_trec_one_epoch_with_glove_subset(tmp_path):
    data_dir = os.environ["KERAS_TASKS_DATA"]
    glove = os.path.join(data_dir, "glove_subset", "glove.6B.50d.subset.txt")
    assert os.path.exists(glove), f"{glove} is missing"
    vectors = tmp_path / "glove.txt"
    shutil.copy(glove, vectors)
    config = TextClassificationConfig()
    for key, value in {
        "data.dataset": "trec",
        "data.data_dir": data_dir,
        "model.embedding_mode": "non-static",
        "model.embeddings_path": str(vectors),
        "train.epochs": 1,
        "train.verbose": "0",
    }.items():
        config = base.config_lib.replace_path(config, key, value)
    run_dir = tmp_path / "run"
    metrics = base.train("text_classification", config, str(run_dir), log=lambda *a: None)
    assert metrics["test"]["accuracy"] > 0.5, metrics  # 6 classes; the largest holds 28% of the test set
    coverage = json.loads((run_dir / "embedding_coverage.json").read_text())
    assert coverage["dim"] == 50 and coverage["vocabulary_coverage"] > 0.3 and coverage["token_coverage"] > 0.8

    # The SavedModel carries the tuned matrix: serving needs neither the vector file nor the run directory.
    questions = ["Who wrote Hamlet ?", "How far is it from Denver to Aspen ?"]
    task, _ = base.load_run(str(run_dir))
    task.restore(str(run_dir / "assets"))
    model = base.load_trained_model(str(run_dir))
    expected = model(task.vectorizer(tf.constant(questions))).numpy()
    tuned = model.get_layer("embedding").embeddings.numpy()
    vectors.unlink()
    exported = base.export(str(run_dir), "trec_glove", base_dir=str(tmp_path / "saved_models"))
    shutil.rmtree(run_dir)
    served = tf.saved_model.load(exported)
    assert any(v.shape == tuned.shape and np.array_equal(v.numpy(), tuned) for v in served.variables)
    outputs = served.signatures["serving_default"](text=tf.constant(questions))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_vectors_without_a_mode_mean_non_static_and_explicit_rand_with_vectors_is_refused(tmp_path):
    config = base.resolve_config("text_classification", {"model.embeddings_path": "vectors.txt"})
    assert config.model.embedding_mode == "non-static"
    assert base.resolve_config("text_classification").model.embedding_mode == "rand"
    config = base.resolve_config(
        "text_classification", {"model.embeddings_path": "vectors.txt", "model.embedding_mode": "rand"}
    )
    with pytest.raises(ConfigError, match="--embedding-mode rand starts from random vectors"):
        TextClassificationTask(config)
