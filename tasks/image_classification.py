"""Image classification: LeNet-5 and a small CNN on MNIST, CIFAR ResNet v1 on CIFAR-10.

    keras-tasks train image_classification --model lenet5 --dataset mnist
    keras-tasks train image_classification --model resnet20 --dataset cifar10
    keras-tasks train image_classification --model cnn --dataset path/to/class_folders
"""

import dataclasses
import json
import os
import typing

import keras
import numpy as np
import tensorflow as tf

from keras_tasks.pipelines.batching import batch_dataset
from keras_tasks.pipelines.image_datasets import available_splits, carve_splits, make_image_source
from keras_tasks.pipelines.image_decoding import decode_image_batch
from keras_tasks.tasks.base import Task, read_labels, register_task, write_labels
from keras_tasks.tasks.classification_report import write_classification_report
from keras_tasks.tasks.config import DataConfig, TrainConfig
from keras_tasks.tasks.vision_models import RESNET_RE, build_image_model

# Training-only augmentation chosen by `model.augmentation = "auto"`: small shifts for
# grayscale digits (flips would turn a 2 into something else), pad-4 crops and
# horizontal flips for colour photos (He et al., 2016).
AUTO_AUGMENTATION = {1: "shift:2", 3: "shift:4,flip"}


@dataclasses.dataclass(frozen=True)
class ImageDataConfig(DataConfig):
    dataset: str = "mnist"  # mnist | fashion_mnist | cifar10 | cifar10_subset | a folder | tfds:NAME
    validation_fraction: float = 0.1  # of train, held out to pick the best epoch (datasets without validation)
    test_fraction: float = 0.1  # of train, held out when the dataset has no test split
    image_size: typing.Optional[typing.Tuple[int, ...]] = None  # (height, width) to resize to; default the data's
    channels: typing.Optional[int] = None  # 1 (grayscale) or 3 (RGB); default the data's


@dataclasses.dataclass(frozen=True)
class ImageModelConfig:
    name: str = "lenet5"  # lenet5 | cnn | resnet20 | resnet32 | resnet56 | resnetN (N = 6n+2)
    augmentation: str = "auto"  # auto | none | items of shift:P, flip, rotate:DEGREES, zoom:FRACTION
    dropout: typing.Optional[float] = None  # before the output layer; None: the model's default (lenet5 0, cnn 0.4)
    activation: str = "relu"  # lenet5: relu | tanh (the paper's squashing function)
    pooling: str = "max"  # lenet5: max | average (the paper's subsampling)
    filters: typing.Tuple[int, ...] = (32, 64, 128)  # cnn: channels per stage
    shortcut: str = "zero_pad"  # resnet: zero_pad (option A, the paper's CIFAR nets) | projection (option B)
    l2: float = 1e-4  # resnet: L2 penalty on convolution kernels (He et al.); use 0 with adamw


@dataclasses.dataclass(frozen=True)
class ImageClassificationConfig:
    data: ImageDataConfig = dataclasses.field(default_factory=ImageDataConfig)
    model: ImageModelConfig = dataclasses.field(default_factory=ImageModelConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            epochs=15, batch_size=128, optimizer="adam", learning_rate=2e-3, lr_schedule="one_cycle"
        )
    )


def model_options(model):
    """Builder keyword arguments of the config fields that concern `model.name`."""
    if model.name == "lenet5":
        options = {"activation": model.activation, "pooling": model.pooling}
    elif model.name == "cnn":
        options = {"filters": tuple(model.filters)}
    elif RESNET_RE.match(model.name):
        return {"shortcut": model.shortcut, "weight_decay": model.l2}
    else:
        raise ValueError(f"model.name must be lenet5, cnn or resnetN (e.g. resnet20), got {model.name!r}")
    if model.dropout is not None:
        options["dropout"] = model.dropout
    return options


@register_task("image_classification")
class ImageClassificationTask(Task):
    """Pixels to one label, with image decoding and resizing inside the exported model.

    Serving: `serving_default` takes `image_bytes` (string `[batch]`, PNG or JPEG of
    any size) and `serving_pixels` takes `image` (uint8 `[batch, height, width,
    channels]`); both return `label` (string) and `probabilities` (`[batch, classes]`).
    """

    config_class = ImageClassificationConfig

    def __init__(self, config):
        super().__init__(config)
        model_options(config.model)  # fail on a bad model name before reading data
        self.labels = None
        self.image_shape = None

    @classmethod
    def presets(cls, draft):
        model, dataset = draft.model.name, draft.data.dataset
        if model == "cnn":
            if dataset == "mnist":
                # Half the channels, 4 epochs: 99% after epoch 2 in under half of keras-io mnist_convnet's time to
                # 99%, 99.45% at the end (docs/benchmarks_peers.md). The full model (model.filters=[32,64,128],
                # 15 epochs) ends at 99.63% but takes 57 s an epoch here.
                return {"model.filters": (16, 32, 64), "train.learning_rate": 3e-3, "train.label_smoothing": 0.1,
                        "train.epochs": 4}
            return {"train.learning_rate": 3e-3, "train.label_smoothing": 0.1, "train.epochs": 15}
        if model and RESNET_RE.match(model):
            # Decoupled weight decay instead of the L2 penalty: plain SGD has no momentum setting here.
            return {
                "train.optimizer": "adamw",
                "train.learning_rate": 3e-3,
                "train.weight_decay": 0.05,
                "model.l2": 0.0,
                "train.epochs": 40,
                "train.label_smoothing": 0.1,
            }
        return {}

    # === Data ===

    def load_data(self):
        """`{"train", "validation", "test"}` sources; missing splits are carved from train, stratified by class."""
        data = self.config.data
        options = {"data_dir": data.data_dir, "image_size": data.image_size, "channels": data.channels}
        have = available_splits(data.dataset, data.data_dir)
        train = make_image_source(data.dataset, "train", **options)
        splits = {name: make_image_source(data.dataset, name, **options) for name in ("validation", "test") if name in have}
        fractions = {"test": data.test_fraction, "validation": data.validation_fraction}
        carved = {name: fraction for name, fraction in fractions.items() if name not in splits}
        return {**splits, **carve_splits(train, carved, self.config.train.seed, data.max_examples)}

    def num_examples(self, splits, split):
        return splits[split].num_examples

    def adapt(self, splits, assets_dir):
        train = splits["train"]
        write_labels(assets_dir, train.label_names)
        height, width, channels = train.image_shape
        spec = {"height": height, "width": width, "channels": channels, "origin": train.origin}
        with open(os.path.join(assets_dir, "image_spec.json"), "w", encoding="utf-8") as f:
            json.dump(spec, f, indent=2)

    def restore(self, assets_dir):
        self.labels = read_labels(assets_dir)
        with open(os.path.join(assets_dir, "image_spec.json"), encoding="utf-8") as f:
            spec = json.load(f)
        self.image_shape = (spec["height"], spec["width"], spec["channels"])

    def make_dataset(self, splits, split, training):
        num_classes = len(self.labels)
        dataset = splits[split].dataset.apply(tf.data.experimental.assert_cardinality(splits[split].num_examples))
        return batch_dataset(
            dataset,
            self.config.train.batch_size,
            training,
            seed=self.config.train.seed,
            # One-hot per batch: a per-image map made the first epoch of MNIST seconds slower.
            batch_map=lambda x: (x["image"], tf.one_hot(x["label"], num_classes)),
        )

    def label_names(self):
        return self.labels

    # === Model ===

    def augmentation(self):
        spec = self.config.model.augmentation
        return AUTO_AUGMENTATION[self.image_shape[-1]] if spec == "auto" else spec

    def build_model(self):
        model = self.config.model
        return build_image_model(
            model.name, self.image_shape, len(self.labels), augmentation=self.augmentation(), **model_options(model)
        )

    def compile_args(self, steps_per_epoch=None):
        return {
            "optimizer": self.make_optimizer(steps_per_epoch),
            # One-hot targets, so that label smoothing is available.
            "loss": keras.losses.CategoricalCrossentropy(label_smoothing=self.config.train.label_smoothing),
            "metrics": [keras.metrics.CategoricalAccuracy(name="accuracy")],
        }

    def after_evaluate(self, model, splits, run_dir):
        predictions, labels = [], []
        for images, targets in self.make_dataset(splits, "test", training=False):
            predictions.append(np.argmax(model.predict_on_batch(images), axis=-1))
            labels.append(np.argmax(targets, axis=-1))
        accuracy = write_classification_report(
            np.concatenate(labels), np.concatenate(predictions), self.labels, run_dir,
            title=f"{model.name} on {self.config.data.dataset} test",
        )
        return {"test_per_class_accuracy": accuracy}

    # === Serving ===

    def export_endpoints(self, model):
        height, width, channels = self.image_shape
        label_table = tf.constant(self.labels)

        def classify(images):
            probabilities = model(tf.cast(images, tf.float32), training=False)
            return {"label": tf.gather(label_table, tf.argmax(probabilities, axis=-1)), "probabilities": probabilities}

        @tf.function
        def serve_bytes(image_bytes):
            return classify(decode_image_batch(image_bytes, channels, (height, width)))

        @tf.function
        def serve_pixels(image):
            return classify(image)

        return {
            "serving_default": (serve_bytes, [tf.TensorSpec([None], tf.string, name="image_bytes")]),
            "serving_pixels": (serve_pixels, [tf.TensorSpec([None, height, width, channels], tf.uint8, name="image")]),
        }
