"""Language modelling: a word-level LSTM LM scored by perplexity, and character-level text generation.

    keras-tasks train language_model --dataset ptb                       # words: Zaremba et al.'s small LSTM
    keras-tasks train language_model --dataset ptb --set model.size=medium
    keras-tasks train language_model --dataset tinyshakespeare           # characters
    keras-tasks export --run-dir DIR --name shakespeare
    keras-tasks predict --model saved_models/shakespeare "ROMEO:" --set max_length=300 temperature=0.8
    keras-tasks predict --model saved_models/ptb --signature score "the company said"

Training reads each split as one token stream cut into `batch_size` parallel streams
(`pipelines.batching.stream_batches`); the LSTMs are stateful, so window i of a stream
continues from the state window i-1 left, and the spine resets the state at every epoch
and evaluation. The exported model is a different, stateless graph with the same weights:
`generate` primes the LSTM state on the prompt and samples in one graph loop
(`layers.decoding`), `score` returns each text's log-likelihood.
"""

import dataclasses
import json
import os
import typing

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_tasks.layers import decoding
from keras_tasks.pipelines import lm_datasets
from keras_tasks.pipelines import text as text_lib
from keras_tasks.pipelines import tokenizers
from keras_tasks.pipelines.batching import stream_batches
from keras_tasks.pipelines.errors import ConfigError
from keras_tasks.tasks import lm_models
from keras_tasks.tasks.base import Task, register_task, reset_states, whole_passes
from keras_tasks.tasks.config import DataConfig, TrainConfig
from keras_tasks.tasks.metrics import Perplexity

# Zaremba et al. (2014), "Recurrent Neural Network Regularization", section 4.1: 2 LSTM layers,
# unrolled 35 steps (the paper's small model used 20), batch 20, SGD with rate 1 kept for a few
# epochs and then decayed each epoch, weights uniform in [-s, s]. Their rate 1 and clipping norm
# apply to a loss summed over the unrolled steps (averaged over the batch only); ours is the mean
# over every token, so `presets` multiplies the rate and divides the norm by the window length.
SIZES = {
    "small": {"model.hidden_dim": 200, "model.dropout": 0.0, "model.init_scale": 0.1, "train.epochs": 13,
              "train.lr_decay_start": 4, "train.lr_decay_factor": 0.5, "train.clipnorm": 5.0},
    "medium": {"model.hidden_dim": 650, "model.dropout": 0.5, "model.init_scale": 0.05, "train.epochs": 39,
               "train.lr_decay_start": 6, "train.lr_decay_factor": 0.8, "train.clipnorm": 5.0},
    "large": {"model.hidden_dim": 1500, "model.dropout": 0.65, "model.init_scale": 0.04, "train.epochs": 55,
              "train.lr_decay_start": 14, "train.lr_decay_factor": 1 / 1.15, "train.clipnorm": 10.0},
    # Characters (Tiny Shakespeare): sized for a CPU budget (about 140 s an epoch on two cores, measured);
    # Adam, longer windows, a small embedding for the 65 characters.
    "char": {"model.hidden_dim": 256, "model.embedding_dim": 64, "model.dropout": 0.1, "model.init_scale": 0.0,
             "train.epochs": 20, "train.batch_size": 32, "data.sequence_length": 100, "train.optimizer": "adam",
             "train.learning_rate": 3e-3, "train.lr_schedule": "cosine", "train.clipnorm": 5.0},
}
# A request may ask for at most this many new tokens (the loop runs to the longest row's max_length).
MAX_GENERATE_LENGTH = 4096


@dataclasses.dataclass(frozen=True)
class LMDataConfig(DataConfig):
    dataset: str = "ptb"  # ptb | tinyshakespeare | wikitext2 | wikitext103 | a text file or folder of your own
    unit: typing.Optional[str] = None  # word | char; default: the dataset's own (PTB words, Tiny Shakespeare characters)
    encoding: str = "utf-8"  # of your own text files
    max_tokens: typing.Optional[int] = None  # vocabulary cap, including padding and OOV (None: every training token)
    min_count: int = 1  # tokens seen fewer times in train map to OOV
    sequence_length: int = 35  # truncated BPTT: tokens per window


@dataclasses.dataclass(frozen=True)
class LMModelConfig:
    name: str = "lstm"  # lstm
    size: str = "auto"  # small | medium | large (Zaremba et al. 2014) | char; auto: small for words, char for characters
    embedding_dim: typing.Optional[int] = None  # None: hidden_dim (needed for tied weights without a projection)
    hidden_dim: int = 200  # LSTM units per layer
    num_layers: int = 2
    dropout: float = 0.0  # locked (variational) dropout on the embeddings, between layers and before the output
    tie_weights: bool = False  # output layer = transposed embedding (Press & Wolf 2017)
    init_scale: float = 0.1  # weights uniform in [-s, s] (Zaremba); 0: Keras' default initializers


@dataclasses.dataclass(frozen=True)
class LanguageModelConfig:
    data: LMDataConfig = dataclasses.field(default_factory=LMDataConfig)
    model: LMModelConfig = dataclasses.field(default_factory=LMModelConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            epochs=13, batch_size=20, optimizer="sgd", learning_rate=1.0, lr_schedule="step", lr_decay_start=4,
            clipnorm=5.0, monitor="val_perplexity",
        )
    )


def dataset_unit(data):
    """`word` or `char`: the configured unit, else the dataset's own."""
    if data.unit is not None:
        if data.unit not in lm_datasets.UNITS:
            raise ConfigError(f"data.unit must be word or char, got {data.unit!r}")
        return data.unit
    return "char" if data.dataset == "tinyshakespeare" else "word"


@register_task("language_model")
class LanguageModelTask(Task):
    """Next-token prediction: perplexity on words, generation with temperature on characters.

    Serving: `serving_default` and `generate` take `prompt` (string `[batch]`) and, per
    prompt, `max_length` (int32, new tokens), `temperature` (float32; 0 is greedy), `top_k`
    (int32; 0 is the whole vocabulary) and `seed` (int32); they return `text` (prompt and
    continuation) and `generated` (the continuation). `score` takes `text` and returns
    `log_likelihood` (natural log), `num_tokens` and `perplexity` of each text.
    """

    config_class = LanguageModelConfig
    metric_modes = {"perplexity": "min", "nats_per_char": "min", "bits_per_char": "min"}

    def __init__(self, config):
        super().__init__(config)
        if config.model.name != "lstm":
            raise ConfigError(f"model.name must be lstm, got {config.model.name!r}")
        self.unit = dataset_unit(config.data)
        self.vectorizer = None
        self._ids = {}

    @classmethod
    def presets(cls, draft):
        size = draft.model.size
        if size == "auto":
            size = "char" if dataset_unit(draft.data) == "char" else "small"
        if size not in SIZES:
            raise ConfigError(f"model.size must be auto, {', '.join(SIZES)}; got {size!r}")
        preset = dict(SIZES[size])
        if size != "char":  # Zaremba's rate and norm, for a loss averaged over the window's steps too
            steps = draft.data.sequence_length
            preset["train.learning_rate"] = 1.0 * steps
            preset["train.clipnorm"] = preset["train.clipnorm"] / steps
        return preset

    # === Data ===

    def load_data(self):
        data = self.config.data
        return lm_datasets.load_corpus(
            data.dataset, data_dir=data.data_dir, unit=data.unit, encoding=data.encoding
        )

    def _tokenizer_name(self):
        return "characters" if self.unit == "char" else "whitespace"

    def adapt(self, splits, assets_dir):
        data = self.config.data
        tokenizer = tokenizers.get_tokenizer(self._tokenizer_name())
        tokens = tokenizer.tokenize(tf.constant([splits.texts["train"]])).flat_values.numpy()
        values, counts = np.unique(tokens, return_counts=True)
        counts = {value.decode("utf-8"): int(count) for value, count in zip(values, counts)}
        words = text_lib.build_vocabulary(counts, data.max_tokens, data.min_count)
        text_lib.write_vocabulary(words, os.path.join(assets_dir, "vocabulary.json"))
        with open(os.path.join(assets_dir, "corpus.json"), "w", encoding="utf-8") as f:
            json.dump({"unit": self.unit, "description": splits.description, "eos": splits.eos}, f, indent=2)

    def restore(self, assets_dir):
        self.vectorizer = text_lib.TextVectorizer(
            os.path.join(assets_dir, "vocabulary.json"), tokenizer=self._tokenizer_name()
        )
        self._ids = {}

    def split_ids(self, splits, split):
        """The whole split as one int32 id array (computed once)."""
        if split not in self._ids:
            text = splits.texts[split] if split in splits.texts else splits.extra[split]
            ids = self.vectorizer.ragged_ids(tf.constant([text])).flat_values.numpy().astype("int32")
            if split == "train" and self.config.data.max_examples:
                ids = ids[: self.config.data.max_examples]  # max_examples counts training tokens here
            self._ids[split] = ids
        return self._ids[split]

    def num_examples(self, splits, split):
        return len(self.split_ids(splits, split))  # tokens: throughput is reported in tokens per second

    def make_dataset(self, splits, split, training):
        batch_size = self.config.train.batch_size
        ids = self.split_ids(splits, split)
        if not training:
            # Pad to a multiple of the streams so that no token is dropped; padded targets (id 0) are not scored.
            ids = np.concatenate([ids, np.zeros(-len(ids) % batch_size + batch_size, "int32")])
        dataset = stream_batches(ids, batch_size, self.config.data.sequence_length, drop_remainder=training)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def start_token(self):
        """The context a text starts from: the end of a previous line (`<eos>` for words, a newline for characters)."""
        return "\n" if self.unit == "char" else lm_datasets.EOS

    # === Model ===

    def _model_options(self):
        model = self.config.model
        return {
            "hidden_dim": model.hidden_dim, "embedding_dim": model.embedding_dim, "num_layers": model.num_layers,
            "tie_weights": model.tie_weights, "init_scale": model.init_scale, "seed": self.config.train.seed,
        }

    def build_model(self):
        """The training graph: stateful LSTMs over fixed `batch_size` streams, logits for every position."""
        return lm_models.lstm_lm(
            self.vectorizer.vocabulary_size, self.config.train.batch_size, dropout=self.config.model.dropout,
            **self._model_options(),
        )

    def compile_args(self, steps_per_epoch=None):
        metrics = [Perplexity("perplexity")]
        if self.unit == "char":
            metrics += [Perplexity("nats", name="nats_per_char"), Perplexity("bits", name="bits_per_char")]
        return {
            "optimizer": self.make_optimizer(steps_per_epoch),
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
            "metrics": metrics,
        }

    def after_evaluate(self, model, splits, run_dir):
        """Scores the extra texts a corpus names (Tiny Shakespeare: nanoGPT's whole validation text)."""
        results = {}
        for name in getattr(splits, "extra", {}) or {}:
            reset_states(model)
            with whole_passes():
                values = model.evaluate(self.make_dataset(splits, name, training=False), verbose=0, return_dict=True)
            reset_states(model)
            results[name] = {k: round(float(v), 6) for k, v in values.items()}
        return results

    # === Inference ===

    def build_inference_model(self, model):
        """A stateless float32 graph with the trained weights: `token_ids` (right-padded) to logits and final states."""
        from keras_tasks.tasks.base import float32_policy

        with float32_policy():
            inference = lm_models.lstm_lm_inference(self.vectorizer.vocabulary_size, **self._model_options())
        for layer in inference.layers:
            if layer.trainable_weights:
                trained = model.get_layer(layer.name)
                for target, source in zip(layer.trainable_weights, trained.trainable_weights):
                    target.assign(ops.cast(source, target.dtype))
        return inference

    def export_resources(self):
        return [self.vectorizer]

    def signature_defaults(self):
        # seed 0 is a fixed seed: the same prompt gives the same text until the user changes it.
        generate = {"max_length": 200 if self.unit == "char" else 30, "temperature": 1.0, "top_k": 0, "seed": 0}
        return {"serving_default": generate, "generate": generate}

    def export_endpoints(self, model):
        vectorizer = self.vectorizer
        start_id, eos_id = (int(i) for i in vectorizer.lookup(tf.constant([self.start_token(), lm_datasets.EOS])).numpy())
        separator = "" if self.unit == "char" else " "
        embedding = model.get_layer("embedding")
        lstms = [model.get_layer(f"lstm_{i}") for i in range(self.config.model.num_layers)]
        projection = model.get_layer("projection") if self.config.model.tie_weights and any(
            layer.name == "projection" for layer in model.layers) else None
        output = None if self.config.model.tie_weights else model.get_layer("logits")

        unspeakable = tf.constant([-1e9, -1e9] + [0.0] * (vectorizer.vocabulary_size - 2))

        def with_start(texts):
            ids = vectorizer.ragged_ids(texts)
            starts = tf.fill([tf.shape(texts)[0], 1], start_id)
            return tf.concat([tf.RaggedTensor.from_tensor(starts), ids], axis=1)

        def step_fn(token_ids, state):
            x = embedding(token_ids[:, None])[:, 0, :]
            new_state = []
            for i, lstm in enumerate(lstms):
                x, (h, c) = lstm.cell(x, [state[2 * i], state[2 * i + 1]], training=False)
                new_state += [h, c]
            if projection is not None:
                x = projection(x)
            logits = embedding(x[:, None, :], reverse=True)[:, 0] if output is None else output(x)
            # Never generate padding (id 0) or the out-of-vocabulary id (1).
            return logits + unspeakable, tuple(new_state)

        @tf.function
        def generate(prompt, max_length, temperature, top_k, seed):
            ids = with_start(prompt)
            last = tf.gather(ids.flat_values, ids.row_limits() - 1)
            prefix = ids[:, :-1].to_tensor(0)
            prefix = tf.pad(prefix, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(prefix)[1])]])
            _, *state = model(prefix, training=False)
            max_length = tf.clip_by_value(max_length, 0, MAX_GENERATE_LENGTH)
            generated, lengths = decoding.sample(
                step_fn, last, tuple(state), tf.reduce_max(max_length), temperature=temperature, top_k=top_k,
                seed=seed,
            )
            lengths = tf.minimum(lengths, max_length)
            generated = tf.where(tf.sequence_mask(lengths, tf.shape(generated)[1]), generated, 0)
            continuation = vectorizer.detokenize(generated)
            joiner = tf.where(
                tf.logical_and(tf.strings.length(prompt) > 0, tf.strings.length(continuation) > 0), separator, ""
            )
            return {"text": tf.strings.join([prompt, joiner, continuation]), "generated": continuation}

        @tf.function
        def score(text):
            ids = with_start(text)
            if self.unit == "word":  # a sentence's probability includes its end
                ends = tf.fill([tf.shape(text)[0], 1], eos_id)
                ids = tf.concat([ids, tf.RaggedTensor.from_tensor(ends)], axis=1)
            ids = ids.to_tensor(0)
            logits = model(ids[:, :-1], training=False)[0]
            targets = ids[:, 1:]
            log_probs = -keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
            scored = tf.cast(tf.not_equal(targets, 0), tf.float32)
            log_likelihood = tf.reduce_sum(log_probs * scored, axis=1)
            num_tokens = tf.reduce_sum(scored, axis=1)
            return {
                "log_likelihood": log_likelihood,
                "num_tokens": tf.cast(num_tokens, tf.int32),
                "perplexity": tf.exp(-log_likelihood / tf.maximum(num_tokens, 1.0)),
            }

        generate_signature = [
            tf.TensorSpec([None], tf.string, name="prompt"),
            tf.TensorSpec([None], tf.int32, name="max_length"),
            tf.TensorSpec([None], tf.float32, name="temperature"),
            tf.TensorSpec([None], tf.int32, name="top_k"),
            tf.TensorSpec([None], tf.int32, name="seed"),
        ]
        return {
            "serving_default": (generate, generate_signature),
            "generate": (generate, generate_signature),
            "score": (score, [tf.TensorSpec([None], tf.string, name="text")]),
        }

