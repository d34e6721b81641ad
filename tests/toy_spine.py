"""A toy task on the spine (three numbers to the sign of their sum), shared by the spine's tests."""

import csv
import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from keras_tasks.pipelines.batching import batch_dataset
from keras_tasks.tasks import base, catalog
from keras_tasks.tasks.config import DataConfig, TrainConfig


@dataclasses.dataclass(frozen=True)
class ToyData(DataConfig):
    dataset: str = "toy"
    size: int = 96  # examples over all splits


@dataclasses.dataclass(frozen=True)
class ToyModel:
    name: str = "mlp"
    hidden_dim: int = 4


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    data: ToyData = dataclasses.field(default_factory=ToyData)
    model: ToyModel = dataclasses.field(default_factory=ToyModel)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(epochs=2, batch_size=16, monitor="val_loss", verbose="0", learning_rate=0.05)
    )


@base.register_task("toy_spine")
class ToyTask(base.Task):
    """Three numbers to the sign of their sum."""

    config_class = ToyConfig
    metric_modes = {"perplexity": "min"}
    # Set by tests: validation "perplexity" per epoch, and extra callbacks.
    scores = None
    extra_callbacks = ()
    unknown_length = False  # the datasets' cardinality is unknown

    def load_data(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(self.config.data.size, 3)).astype("float32")
        y = (x.sum(axis=1) > 0).astype("int32")
        third = len(x) // 3
        return {"train": (x[:third], y[:third]), "validation": (x[third : 2 * third], y[third : 2 * third]),
                "test": (x[2 * third :], y[2 * third :])}

    def adapt(self, splits, assets_dir):
        base.write_labels(assets_dir, ["negative", "positive"])

    def restore(self, assets_dir):
        self.labels = base.read_labels(assets_dir)

    def num_examples(self, splits, split):
        return len(splits[split][0])

    def make_dataset(self, splits, split, training):
        dataset = tf.data.Dataset.from_tensor_slices(splits[split])
        if self.unknown_length:
            dataset = dataset.filter(lambda *example: True)  # as bucketing or a length filter leaves it
        return batch_dataset(dataset, self.config.train.batch_size, training, seed=self.config.train.seed)

    def build_model(self):
        features = keras.Input((3,), name="features")
        x = keras.layers.Dense(self.config.model.hidden_dim, activation="relu", name="hidden")(features)
        outputs = keras.layers.Dense(2, activation="softmax", dtype="float32", name="probabilities")(x)
        return keras.Model(features, outputs)

    def compile_args(self, steps_per_epoch=None):
        return {"optimizer": self.make_optimizer(steps_per_epoch), "loss": "sparse_categorical_crossentropy",
                "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    def callbacks(self, splits):
        return list(type(self).extra_callbacks)

    def evaluate_split(self, model, splits, split):
        scores = type(self).scores
        if scores is None:
            return {}
        return {"perplexity": scores.pop(0) if len(scores) > 1 else scores[0]}

    def export_endpoints(self, model):
        labels = tf.constant(self.labels)

        @tf.function
        def serve(features):
            probabilities = model(features, training=False)
            return {"label": tf.gather(labels, tf.argmax(probabilities, -1)), "probabilities": probabilities}

        return {"serving_default": (serve, [tf.TensorSpec([None, 3], tf.float32, name="features")])}


def toy_config(**overrides):
    return base.resolve_config("toy_spine", overrides)


def quiet(*_):
    pass


def history(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as f:
        return list(csv.DictReader(f))


# The command line knows a task by its card (tasks/catalog.py); a task defined outside the package adds one.
catalog.CARDS["toy_spine"] = catalog.TaskCard(
    name="toy_spine", module=ToyTask.__module__, summary=ToyTask.__doc__, models=("mlp",), datasets=lambda: {"toy": "random"}
)
