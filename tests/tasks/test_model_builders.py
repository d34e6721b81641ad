"""Every task's model builder at tiny shapes: one compiled fit step on any Keras backend.

CI runs this file twice: with TensorFlow, and with `KERAS_BACKEND=jax` (scripts/run_tests.sh), so a
`tf.*` call in a layer or model builder fails CI. Each model is compiled with its task's own
`compile_args` (loss, metrics, optimizer and schedule), so those run under JAX too.

A new task joins by adding its cases to `MODEL_CASES` below: the task name, the config overrides
it is compiled with, and a `build` function calling its TensorFlow-free model builder at tiny
sizes. `test_every_task_has_a_model_case` fails until it does.
"""

import dataclasses
import os
import subprocess
import sys
import typing

import keras
import numpy as np
import pytest

from keras_tasks.tasks import base
from keras_tasks.tasks.caption_models import build_encoder, show_attend_tell
from keras_tasks.tasks.lm_models import lstm_lm, lstm_lm_inference
from keras_tasks.tasks.tagging_models import sequence_tagger
from keras_tasks.tasks.text_models import text_classifier
from keras_tasks.tasks.translation_models import seq2seq_attention
from keras_tasks.tasks.vision_models import build_image_model

BATCH, LENGTH, VOCABULARY, CLASSES = 2, 5, 11, 3
TOKEN_IDS = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]], "int32")  # right-padded, as the pipelines pad


@dataclasses.dataclass(frozen=True)
class ModelCase:
    task: str  # registered task name: its compile_args compile the model
    name: str
    build: typing.Callable[[], keras.Model]
    inputs: typing.Callable[[], object]
    targets: typing.Callable[[], object]
    overrides: dict = dataclasses.field(default_factory=dict)  # config the task is resolved with


def sparse_labels():
    return np.array([0, 2], "int32")


def next_tokens():
    return np.concatenate([TOKEN_IDS[:, 1:], np.zeros((BATCH, 1), "int32")], axis=1)


def tagger_inputs():
    return {
        "token_ids": TOKEN_IDS,
        "char_ids": np.where(TOKEN_IDS[..., None] > 0, np.arange(1, 4), 0).astype("int32"),  # 3 characters a word
        "casing_ids": np.minimum(TOKEN_IDS, 5),
    }


def tags():
    return np.where(TOKEN_IDS > 0, TOKEN_IDS % CLASSES, -1).astype("int32")  # -1: padding, not scored


def pixels(shape):
    return lambda: np.random.default_rng(0).integers(0, 256, (BATCH, *shape)).astype("float32")


def one_hot_labels():
    return np.eye(CLASSES, dtype="float32")[[0, 2]]


TINY_LM = {"hidden_dim": 4, "num_layers": 2, "init_scale": 0.1, "seed": 1}
TINY_TAGGER = {"embedding_dim": 4, "char_embedding_dim": 3, "num_filters": 2, "char_hidden_dim": 2, "casing_dim": 2,
               "hidden_dim": 4, "dropout": 0.1, "characters_size": 5, "casing_size": 6}

MODEL_CASES = [
    ModelCase(
        "text_classification", "textcnn",
        lambda: text_classifier("textcnn", VOCABULARY, CLASSES, embedding_dim=4, filter_sizes=(2, 3), num_filters=2),
        lambda: TOKEN_IDS, sparse_labels, {"model.name": "textcnn"},
    ),
    ModelCase(
        "text_classification", "bilstm_attention",
        lambda: text_classifier(
            "bilstm_attention", VOCABULARY, CLASSES, embedding_dim=4, hidden_dim=4, attention_dim=4, dropout=0.1
        ),
        lambda: TOKEN_IDS, sparse_labels, {"model.name": "bilstm_attention"},
    ),
    ModelCase(
        "text_classification", "fasttext",
        # Known bigrams (3, 4) and (7, 8): keys first * VOCABULARY + second.
        lambda: text_classifier("fasttext", VOCABULARY, CLASSES, embedding_dim=4, dropout=0.0,
                                bigram_keys=[3 * VOCABULARY + 4, 7 * VOCABULARY + 8]),
        lambda: TOKEN_IDS, sparse_labels, {"model.name": "fasttext"},
    ),
    ModelCase(
        "language_model", "lstm",
        lambda: lstm_lm(VOCABULARY, BATCH, dropout=0.1, **TINY_LM),
        lambda: TOKEN_IDS, next_tokens, {"train.batch_size": BATCH},
    ),
    ModelCase(
        "language_model", "lstm_tied_projected",
        lambda: lstm_lm(VOCABULARY, BATCH, embedding_dim=3, tie_weights=True, **TINY_LM),
        lambda: TOKEN_IDS, next_tokens, {"train.batch_size": BATCH, "data.dataset": "tinyshakespeare"},
    ),
    ModelCase(
        "sequence_tagging", "bilstm_crf",
        lambda: sequence_tagger("bilstm_crf", VOCABULARY, CLASSES, char_encoder="cnn", **TINY_TAGGER),
        tagger_inputs, tags, {"model.name": "bilstm_crf"},
    ),
    ModelCase(
        "sequence_tagging", "bilstm_char_lstm",
        lambda: sequence_tagger("bilstm", VOCABULARY, CLASSES, char_encoder="lstm", **TINY_TAGGER),
        tagger_inputs, tags, {"model.name": "bilstm"},
    ),
    ModelCase(
        "translation", "seq2seq_bahdanau_gru",
        lambda: seq2seq_attention(VOCABULARY, VOCABULARY, embedding_dim=4, hidden_dim=3, decoder_dim=4, attention_dim=3),
        lambda: {"source_ids": TOKEN_IDS, "target_ids": TOKEN_IDS}, next_tokens, {"train.label_smoothing": 0.1},
    ),
    ModelCase(
        "translation", "seq2seq_luong_lstm_input_feeding",
        lambda: seq2seq_attention(VOCABULARY, VOCABULARY, embedding_dim=4, hidden_dim=2, decoder_dim=4,
                                  attention="luong", score="dot", rnn="lstm", input_feeding=True),
        lambda: {"source_ids": TOKEN_IDS, "target_ids": TOKEN_IDS}, next_tokens, {"train.label_smoothing": 0.1},
    ),
    ModelCase(
        "image_classification", "lenet5",
        lambda: build_image_model("lenet5", (28, 28, 1), CLASSES, augmentation="shift:2"),
        pixels((28, 28, 1)), one_hot_labels, {"model.name": "lenet5"},
    ),
    ModelCase(
        "image_classification", "resnet8",
        lambda: build_image_model("resnet8", (8, 8, 3), CLASSES, augmentation="shift:2,flip", base_filters=2),
        pixels((8, 8, 3)), one_hot_labels, {"model.name": "resnet8"},
    ),
    ModelCase(
        "image_captioning", "show_attend_tell_cnn",
        lambda: show_attend_tell(VOCABULARY, encoder=build_encoder("cnn", (16, 16, 3), grid_size=2, filters=(2, 3)),
                                 image_shape=(16, 16, 3), embedding_dim=4, decoder_dim=4, attention_dim=3),
        lambda: {"image": pixels((16, 16, 3))(), "caption_ids": TOKEN_IDS},
        lambda: {"logits": next_tokens(), "attention": next_tokens()},
    ),
    ModelCase(
        "image_captioning", "show_attend_tell_cached_features",
        lambda: show_attend_tell(VOCABULARY, feature_shape=(4, 3), embedding_dim=4, decoder_dim=4, attention_dim=3),
        lambda: {"features": np.random.default_rng(0).normal(size=(BATCH, 4, 3)).astype("float32"),
                 "caption_ids": TOKEN_IDS},
        lambda: {"logits": next_tokens(), "attention": next_tokens()}, {"model.cache_features": True},
    ),
]


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda case: f"{case.task}-{case.name}")
def test_one_fit_step_with_the_tasks_compile_args(case):
    keras.utils.set_random_seed(0)
    task = base.get_task_class(case.task)(base.resolve_config(case.task, case.overrides))
    model = case.build()
    model.compile(**task.compile_args(steps_per_epoch=1))
    x, y = case.inputs(), case.targets()
    before = [np.array(w) for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    assert all(np.isfinite(values[0]) for values in history.history.values()), history.history
    moved = [not np.allclose(a, np.array(w)) for a, w in zip(before, model.trainable_weights)]
    assert all(moved), [w.path for w, m in zip(model.trainable_weights, moved) if not m]
    for output in keras.tree.flatten(model(x, training=False)):  # one output, or a dict of them (captioning)
        predictions = keras.ops.convert_to_numpy(output)
        assert predictions.shape[0] == BATCH and np.all(np.isfinite(predictions))


def test_language_model_inference_graph_takes_any_batch_and_returns_states():
    model = lstm_lm_inference(VOCABULARY, **TINY_LM)
    logits, *states = model.predict(np.concatenate([TOKEN_IDS, TOKEN_IDS[:1]]), verbose=0)  # jit-compiled
    assert logits.shape == (3, LENGTH, VOCABULARY)
    assert [s.shape for s in states] == [(3, 4)] * 4
    # A right-padded row ends in the state of its last real token: padding does not move it.
    shorter, *short_states = model.predict(TOKEN_IDS[:1, :3], verbose=0)
    np.testing.assert_allclose(states[-2][0], short_states[-2][0], rtol=1e-5, atol=1e-6)


def test_every_task_has_a_model_case():
    tasks = {name for name, cls in base.discover_tasks().items() if cls.__module__.startswith("keras_tasks.tasks.")}
    missing = sorted(tasks - {case.task for case in MODEL_CASES})
    assert not missing, f"add a ModelCase for {missing} to MODEL_CASES in {os.path.basename(__file__)}"


def test_layers_and_model_builders_import_without_tensorflow():
    # What a GPU machine with JAX and no TensorFlow imports (scripts/benchmark_gpu.py).
    # A finder that refuses tensorflow, as a machine without it does (sys.modules['tensorflow'] = None would
    # make Keras believe TensorFlow is loaded).
    code = (
        "import importlib.abc, sys\n"
        "class NoTensorFlow(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'tensorflow':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoTensorFlow())\n"
        "import keras_tasks.layers, keras_tasks.tasks.text_models, keras_tasks.tasks.lm_models, "
        "keras_tasks.tasks.tagging_models, keras_tasks.tasks.vision_models, keras_tasks.tasks.translation_models, "
        "keras_tasks.tasks.caption_models\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, KERAS_BACKEND="jax"), capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
