import contextlib
import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from image_files import encode, write_bytes, write_image_folder, write_mnist
from test_case import data_dir, run_task_test

from keras_tasks.scripts import cli
from keras_tasks.tasks import base
from keras_tasks.tasks.image_classification import ImageClassificationTask

TASK = "image_classification"


def tiny_config(dataset, model="lenet5", **train):
    flags = {"model.name": model, "data.dataset": dataset, "train.epochs": 1, "train.batch_size": 4, **train}
    return base.resolve_config(TASK, flags, overrides=["train.verbose=0"])


def write_colour_folder(root):
    """Two colour classes a tiny model can tell apart: dark and bright images of varying sizes."""
    rng = np.random.default_rng(0)
    for label, (low, high) in {"dark": (0, 90), "bright": (160, 256)}.items():
        for i in range(8):
            size = (10, 10) if i % 2 else (14, 11)
            image = rng.integers(low, high, (*size, 3), dtype=np.uint8)
            write_bytes(os.path.join(root, label, f"{i}.png"), encode(image, "png"))
    return str(root)


@pytest.fixture(scope="module")
def trained_folder_run(tmp_path_factory):
    """A ResNet-8 trained one epoch on a tiny class-folder dataset, exported once."""
    root = tmp_path_factory.mktemp("image_task")
    dataset = write_colour_folder(root / "data")
    config = tiny_config(dataset, model="resnet8", **{"train.epochs": 2})
    run_dir = str(root / "run")
    metrics = base.train(TASK, config, run_dir)
    version_dir = base.export(run_dir, "colours", base_dir=str(root / "saved_models"))
    return run_dir, version_dir, metrics


def test_train_writes_metrics_and_report(trained_folder_run):
    run_dir, _, metrics = trained_folder_run
    assert set(metrics["test_per_class_accuracy"]) == {"bright", "dark"}
    for name in ("confusion_matrix.png", "confusion_matrix.csv", "per_class_accuracy.json", "model.keras"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    with open(os.path.join(run_dir, "assets", "image_spec.json")) as f:
        assert json.load(f)["height"] == 14  # the first image's size (class folders sort: bright/0.png)
    with open(os.path.join(run_dir, "confusion_matrix.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_export_reload_equal_predictions_on_image_bytes(trained_folder_run, fmt):
    run_dir, version_dir, _ = trained_folder_run
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    loaded = tf.saved_model.load(version_dir)
    rng = np.random.default_rng(1)
    # Any size: resized in the graph to the model's 14x11, as in training.
    images = [rng.integers(0, 256, (14, 11, 3), dtype=np.uint8), rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)]
    encoded = [encode(image, fmt) for image in images]
    served = loaded.signatures["serving_default"](image_bytes=tf.constant(encoded))
    pixels = np.stack(
        [tf.cast(tf.round(tf.image.resize(tf.io.decode_image(e, channels=3), (14, 11), antialias=True)), tf.uint8)
         for e in encoded]
    )
    expected = model.predict(pixels.astype("float32"), verbose=0)
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    labels = [l.decode() for l in served["label"].numpy()]
    assert labels == [["bright", "dark"][i] for i in expected.argmax(-1)]
    by_pixels = loaded.signatures["serving_pixels"](image=tf.constant(pixels))
    np.testing.assert_allclose(by_pixels["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_shared_task_test_on_image_bytes_and_pixels(tmp_path):
    dataset = write_colour_folder(tmp_path / "data")
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (14, 11, 3), dtype=np.uint8), rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)]
    inputs = {
        "serving_default": {"image_bytes": [encode(images[0], "png"), encode(images[1], "jpg")]},
        "serving_pixels": {"image": np.stack([images[0], images[0][::-1]])},
    }
    flags = {"model.name": "lenet5", "data.dataset": dataset, "train.batch_size": 4}
    _, _, outputs = run_task_test(TASK, flags, inputs, tmp_path)
    assert outputs["serving_pixels"]["probabilities"].shape == (2, 2)


def test_predict_command_on_image_files(trained_folder_run, tmp_path):
    _, version_dir, _ = trained_folder_run
    path = write_bytes(str(tmp_path / "x.jpg"), encode(np.full((20, 20, 3), 250, np.uint8), "jpg"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["predict", "--model", os.path.dirname(version_dir), path]) == 0
    label, probability, name = out.getvalue().strip().split("\t")
    assert label in ("bright", "dark") and 0.5 <= float(probability) <= 1.0 and name == path
    with open(os.path.join(version_dir, "assets.extra", "labels.txt")) as f:
        assert f.read().split() == ["bright", "dark"]


def test_missing_splits_are_carved_from_train(tmp_path):
    write_image_folder(tmp_path, classes=("a", "b"), per_class=10)
    task = ImageClassificationTask(tiny_config(str(tmp_path), **{"data.max_examples": 7}))
    splits = task.load_data()
    assert {k: v.num_examples for k, v in splits.items()} == {"train": 7, "validation": 2, "test": 2}
    task.adapt(splits, str(tmp_path))
    task.restore(str(tmp_path))
    batches = list(task.make_dataset(splits, "test", training=False))
    assert batches[0][0].shape == (2, 10, 12, 3) and batches[0][1].shape == (2, 2)


def test_mnist_style_splits_and_presets(tmp_path):
    write_mnist(tmp_path / "mnist", {"train": 20, "t10k": 6})
    config = tiny_config("mnist", **{"data.data_dir": str(tmp_path)})
    splits = ImageClassificationTask(config).load_data()
    assert {k: v.num_examples for k, v in splits.items()} == {"train": 18, "validation": 2, "test": 6}
    resnet = base.resolve_config(TASK, {"model.name": "resnet20", "data.dataset": "cifar10"})
    assert resnet.train.optimizer == "adamw" and resnet.model.l2 == 0.0
    with pytest.raises(ValueError, match="lenet5, cnn or resnetN"):
        ImageClassificationTask(base.resolve_config(TASK, {"model.name": "vgg"}))


@pytest.mark.large
def test_mnist_lenet5_learns(tmp_path):
    """A short real MNIST run: far above chance (10%) after two epochs on 6,000 digits."""
    config = base.resolve_config(
        TASK,
        {"model.name": "lenet5", "data.dataset": "mnist", "data.data_dir": data_dir(), "data.max_examples": 6000,
         "train.epochs": 2},
        overrides=["data.validation_fraction=0.02", "train.verbose=0", "train.learning_rate=0.004"],
    )
    metrics = base.train(TASK, config, str(tmp_path / "run"))
    assert metrics["test"]["accuracy"] > 0.85, metrics
    assert min(metrics["test_per_class_accuracy"].values()) > 0.5
