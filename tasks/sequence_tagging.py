"""Sequence tagging (named-entity recognition): BiLSTM with character features, softmax or CRF output.

    keras-tasks train sequence_tagging --model bilstm_crf --dataset conll2003
    keras-tasks train sequence_tagging --model bilstm --dataset conll2003          # softmax baseline
    keras-tasks train sequence_tagging --dataset conll2003 --embeddings glove.6B.100d.txt
    keras-tasks train sequence_tagging --dataset my_ner/ --set data.tag_scheme=iob2
    keras-tasks export --run-dir DIR --name ner
    keras-tasks predict --model saved_models/ner "U.N. official Ekeus heads for Baghdad ."

The model reads each token as its word embedding (random or pretrained), a character-level vector (a CNN as
Ma & Hovy 2016 or a BiLSTM as Lample et al. 2016) and a word-shape (casing) embedding, runs a BiLSTM over the
sentence and scores the tags with a softmax or a linear-chain CRF (`layers.CRF`, trained by its negative
log-likelihood through `model.fit`, decoded by Viterbi). The best epoch is chosen by entity-level F1 on the
validation split (seqeval, conlleval's rules); the test split is scored the same way, overall and per type.
"""

import collections
import dataclasses
import json
import os
import typing

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_tasks.layers import EMBEDDING_MODES, CRFLoss, crf_decode
from keras_tasks.pipelines import conll, tagging
from keras_tasks.pipelines import text as text_lib
from keras_tasks.pipelines.batching import batch_dataset
from keras_tasks.pipelines.errors import ConfigError
from keras_tasks.tasks.base import Task, read_labels, register_task, write_labels
from keras_tasks.tasks.config import DataConfig, TrainConfig
from keras_tasks.tasks.tagging_models import sequence_tagger

MODELS = ("bilstm", "bilstm_crf")
CHARACTER_ENCODERS = ("cnn", "lstm", "none")


@dataclasses.dataclass(frozen=True)
class TaggingDataConfig(DataConfig):
    dataset: str = "conll2003"  # conll2003 | a folder with train / valid (or dev) / test CoNLL column files
    tag_scheme: str = "iobes"  # iob1 | iob2 | iobes: the tags the model predicts (converted from the files)
    input_scheme: str = "auto"  # iob1 | iob2 | iobes | auto: the files' scheme (auto: detected from train)
    encoding: str = "utf-8"  # of the CoNLL files
    min_count: int = 1  # training words seen fewer times map to OOV (pretrained words are always kept)
    lowercase: bool = True  # look words up lower-cased (the casing feature keeps the shape)
    digits_to_zero: bool = True  # look words up with every digit replaced by 0 (Lample et al.)
    max_word_length: int = 25  # characters per word seen by the character encoder
    bucket_boundaries: typing.Tuple[int, ...] = (8, 16, 24, 32, 48)  # batch sentences of similar length


@dataclasses.dataclass(frozen=True)
class TaggingModelConfig:
    name: str = "bilstm_crf"  # bilstm (softmax) | bilstm_crf
    embedding_dim: int = 100  # ignored with pretrained vectors (their size is used)
    embedding_mode: str = "rand"  # rand | static | non-static (fine-tuned pretrained vectors)
    embeddings_path: typing.Optional[str] = None  # pretrained vectors (word2vec, GloVe, fastText, KeyedVectors)
    embeddings_format: typing.Optional[str] = None  # detected from the file when unset
    char_encoder: str = "cnn"  # cnn (Ma & Hovy 2016) | lstm (Lample et al. 2016) | none
    char_embedding_dim: int = 30
    num_filters: int = 30  # char-CNN feature maps
    kernel_size: int = 3  # char-CNN width
    char_hidden_dim: int = 25  # char-BiLSTM units per direction
    casing_dim: int = 8  # word-shape embedding size; 0: no casing feature
    hidden_dim: int = 100  # word BiLSTM units per direction
    num_layers: int = 1
    dropout: float = 0.5  # on the token features and on the BiLSTM's output (Ma & Hovy)
    constrained: bool = True  # CRF: never decode a transition the tag scheme forbids (O -> I-PER in IOB2)


@dataclasses.dataclass(frozen=True)
class SequenceTaggingConfig:
    data: TaggingDataConfig = dataclasses.field(default_factory=TaggingDataConfig)
    model: TaggingModelConfig = dataclasses.field(default_factory=TaggingModelConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            epochs=20, batch_size=32, optimizer="adam", learning_rate=2e-3, clipnorm=5.0, monitor="val_f1",
            # Halve the rate after each epoch without a better validation F1: the BiLSTM-CRF overfits within
            # 4 epochs at a constant rate (test F1 83.71 at 15 epochs, 84.08 at 12 with halving; docs/ner.md).
            lr_schedule="plateau", lr_decay_patience=0, lr_decay_factor=0.5,
            early_stopping_patience=4,
        )
    )


@register_task("sequence_tagging")
class SequenceTaggingTask(Task):
    """Tokens to tags (named entities), with tokenisation and features inside the exported model.

    Serving: `serving_default` takes raw sentences (`text`, string `[batch]`; punctuation is split off words
    as CoNLL-2003 is tokenised), `tag_tokens` takes whitespace-separated tokens (`tokens`, string
    `[batch]`). Both return `tokens` and `tags` (string `[batch, time]`, `""` at padding) and the entities:
    `entities` (their text), `entity_types`, `entity_starts` and `entity_ends` (character offsets in the
    input, end exclusive), each `[batch, entities]`, padded with `""` and -1.
    """

    config_class = SequenceTaggingConfig
    metric_modes = {"f1": "max", "precision": "max", "recall": "max"}
    validation_metrics_each_epoch = True

    def __init__(self, config):
        super().__init__(config)
        model = config.model
        for key, value, allowed in (
            ("model.name", model.name, MODELS),
            ("model.char_encoder", model.char_encoder, CHARACTER_ENCODERS),
            ("model.embedding_mode", model.embedding_mode, EMBEDDING_MODES[:3]),
            ("data.tag_scheme", config.data.tag_scheme, conll.SCHEMES),
            ("data.input_scheme", config.data.input_scheme, conll.SCHEMES + ("auto",)),
        ):
            if value not in allowed:
                raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
        self.featurizer = None
        self.tags = None
        self.pretrained = None
        self._decoders = {}

    @classmethod
    def presets(cls, draft):
        if draft.model.embeddings_path and draft.model.embedding_mode == "rand":
            return {"model.embedding_mode": "non-static"}  # vectors given: start from them, fine-tune
        return {}

    @property
    def input_names(self):
        model = self.config.model
        names = ["token_ids"]
        if model.char_encoder != "none":
            names.append("char_ids")
        if model.casing_dim:
            names.append("casing_ids")
        return names

    # === Data ===

    def load_data(self):
        data = self.config.data
        return conll.load_tagged_splits(
            data.dataset,
            data_dir=data.data_dir,
            scheme=data.tag_scheme,
            input_scheme=data.input_scheme,
            encoding=data.encoding,
            max_examples=data.max_examples,
        )

    def num_examples(self, splits, split):
        return len(splits.sentences[split])

    def adapt(self, splits, assets_dir):
        data = self.config.data
        sentences = splits.sentences["train"]
        tokens = [token for sentence in sentences for token in sentence.tokens]
        normalized = tagging.normalize_words(tf.constant(tokens), data.lowercase, data.digits_to_zero).numpy()
        counts = collections.Counter(word.decode("utf-8") for word in normalized)
        words = text_lib.build_vocabulary(counts, None, data.min_count)
        vectors = None
        if self.config.model.embeddings_path:
            from keras_tasks.pipelines import embeddings

            # Words of the pretrained vectors join the vocabulary (Lample et al.): a test word unseen in
            # training still gets its pretrained vector.
            vectors = embeddings.load_vectors(self.config.model.embeddings_path, self.config.model.embeddings_format)
            known = set(words)
            extra = tagging.normalize_words(tf.constant(list(vectors.index_to_key)), data.lowercase, data.digits_to_zero)
            for word in dict.fromkeys(w.decode("utf-8") for w in extra.numpy()):
                if word not in known and word not in (text_lib.PAD_TOKEN, text_lib.OOV_TOKEN) and " " not in word:
                    words.append(word)
                    known.add(word)
        elif self.config.model.embedding_mode != "rand":
            raise ConfigError(
                f"model.embedding_mode={self.config.model.embedding_mode} needs pretrained vectors: add --embeddings "
                "PATH (or use --embedding-mode rand)"
            )
        text_lib.write_vocabulary(words, os.path.join(assets_dir, "vocabulary.txt"))
        characters = collections.Counter(c for token in tokens for c in token)
        text_lib.write_vocabulary(sorted(characters, key=lambda c: (-characters[c], c)), os.path.join(assets_dir, "characters.json"))
        write_labels(assets_dir, conll.tag_set(sentences))
        with open(os.path.join(assets_dir, "tagging.json"), "w", encoding="utf-8") as f:
            json.dump({"source_scheme": splits.source_scheme, "files": splits.files}, f, indent=2)
        if vectors is not None:
            self._align_pretrained(vectors, [text_lib.PAD_TOKEN, text_lib.OOV_TOKEN] + words, counts, assets_dir)

    def _align_pretrained(self, vectors, vocabulary, counts, assets_dir):
        from keras_tasks.pipelines import embeddings

        matrix, report = embeddings.align_vectors(vocabulary, vectors, token_counts=counts, seed=self.config.train.seed)
        np.save(os.path.join(assets_dir, "embeddings.npy"), matrix.astype("float32"))
        with open(os.path.join(os.path.dirname(assets_dir), "embedding_coverage.json"), "w", encoding="utf-8") as f:
            f.write(report.to_json())
        print(report.to_text())

    def restore(self, assets_dir):
        data = self.config.data
        self.featurizer = tagging.TokenFeaturizer(
            text_lib.read_vocabulary(os.path.join(assets_dir, "vocabulary.txt")),
            text_lib.read_vocabulary(os.path.join(assets_dir, "characters.json")),
            lowercase=data.lowercase,
            digits_to_zero=data.digits_to_zero,
            max_word_length=data.max_word_length,
        )
        self.tags = read_labels(assets_dir)
        path = os.path.join(assets_dir, "embeddings.npy")
        self.pretrained = np.load(path) if os.path.exists(path) else None
        self._decoders = {}

    def make_dataset(self, splits, split, training):
        sentences = splits.sentences[split]
        index = {tag: i for i, tag in enumerate(self.tags)}
        lengths = [len(sentence.tokens) for sentence in sentences]
        tokens = tf.RaggedTensor.from_row_lengths([t for s in sentences for t in s.tokens], lengths)
        # A tag unseen in training (a rare type in the test file) cannot be predicted: scored as O.
        tag_ids = tf.RaggedTensor.from_row_lengths(
            np.array([index.get(t, 0) for s in sentences for t in s.tags], "int32"), lengths
        )
        dataset = tf.data.Dataset.from_tensor_slices((tokens, tag_ids))
        dataset = dataset.map(lambda t, g: (tf.convert_to_tensor(t), tf.convert_to_tensor(g)))  # ragged rank 0: dense
        dataset = batch_dataset(
            dataset,
            self.config.train.batch_size,
            training,
            seed=self.config.train.seed,
            padding_values=("", -1),  # -1: tags the losses ignore
            bucket_boundaries=self.config.data.bucket_boundaries or None,
        )
        names = self.input_names

        def featurize(tokens, tags):
            features = self.featurizer(tokens)
            return {name: features[name] for name in names}, tags

        return dataset.map(featurize, num_parallel_calls=tf.data.AUTOTUNE)

    def label_names(self):
        return self.tags

    # === Model ===

    def build_model(self):
        m = self.config.model
        allowed = conll.allowed_transitions(self.tags, self.config.data.tag_scheme) if m.constrained else None
        return sequence_tagger(
            m.name, self.featurizer.vocabulary_size, len(self.tags), characters_size=self.featurizer.characters_size,
            casing_size=len(tagging.CASINGS) + 2, embedding_dim=m.embedding_dim, embedding_mode=m.embedding_mode,
            weights=self.pretrained, char_encoder=m.char_encoder, char_embedding_dim=m.char_embedding_dim,
            num_filters=m.num_filters, kernel_size=m.kernel_size, char_hidden_dim=m.char_hidden_dim,
            casing_dim=m.casing_dim, hidden_dim=m.hidden_dim, num_layers=m.num_layers, dropout=m.dropout,
            allowed=allowed,
        )

    def compile_args(self, steps_per_epoch=None):
        if self.config.model.name == "bilstm":
            loss = keras.losses.SparseCategoricalCrossentropy(ignore_class=-1)
        else:
            loss = CRFLoss()
        return {"optimizer": self.make_optimizer(steps_per_epoch), "loss": loss}

    def decode(self, outputs, mask):
        """Tag ids `(batch, time)` from the model's outputs: argmax of the softmax, or the CRF's Viterbi path."""
        if self.config.model.name == "bilstm":
            return ops.where(mask, ops.cast(ops.argmax(outputs, axis=-1), "int32"), 0)
        return crf_decode(outputs, mask)[0]

    def _decoder(self, model):
        """A traced `inputs -> tag ids` function of `model`, made once per model."""
        key = id(model)
        if key not in self._decoders:

            @tf.function(reduce_retracing=True)
            def predict(inputs):
                return self.decode(model(inputs, training=False), tf.not_equal(inputs["token_ids"], 0))

            self._decoders = {key: predict}
        return self._decoders[key]

    def evaluate_split(self, model, splits, split):
        """Entity-level precision, recall and F1 (seqeval, conlleval's rules), overall and per type."""
        predict = self._decoder(model)
        gold, predicted = [], []
        for inputs, tags in self.make_dataset(splits, split, training=False):
            tags = tags.numpy()
            found = predict(inputs).numpy()
            for row, row_tags in zip(found, tags):
                length = int((row_tags >= 0).sum())
                gold.append([self.tags[t] for t in row_tags[:length]])
                predicted.append([self.tags[t] for t in row[:length]])
        return entity_scores(gold, predicted)

    # === Serving ===

    def export_resources(self):
        return [self.featurizer]

    def export_endpoints(self, model):
        tag_names = list(self.tags)
        tag_table = tf.constant(tag_names)
        names = self.input_names

        def tag(texts, pretokenized):
            tokens, starts, ends = tagging.split_tokens(texts, pretokenized=pretokenized)
            width = tf.maximum(tf.constant(1, tf.int64), tf.reduce_max(tf.concat([tokens.row_lengths(), [0]], 0)))
            shape = tf.stack([tf.shape(texts, out_type=tf.int64)[0], width])  # at least one step
            tokens = tokens.to_tensor("", shape=shape)
            mask = tf.not_equal(tokens, "")
            features = self.featurizer(tokens)
            tag_ids = self.decode(model({name: features[name] for name in names}, training=False), mask)
            outputs = {"tokens": tokens, "tags": tf.where(mask, tf.gather(tag_table, tag_ids), "")}
            outputs.update(
                tagging.entity_spans(
                    tag_ids, tag_names, starts.to_tensor(-1, shape=shape), ends.to_tensor(-1, shape=shape), texts, mask
                )
            )
            return outputs

        @tf.function
        def serve(text):
            return tag(text, pretokenized=False)

        @tf.function
        def tag_tokens(tokens):
            return tag(tokens, pretokenized=True)

        return {
            "serving_default": (serve, [tf.TensorSpec([None], tf.string, name="text")]),
            "tag_tokens": (tag_tokens, [tf.TensorSpec([None], tf.string, name="tokens")]),
        }


def entity_scores(gold, predicted):
    """`{precision, recall, f1, f1_PER, precision_PER, ...}` of tag sequences, by seqeval (conlleval's rules)."""
    from seqeval import metrics as seqeval_metrics

    report = seqeval_metrics.classification_report(gold, predicted, output_dict=True, zero_division=0)
    scores = {
        "precision": seqeval_metrics.precision_score(gold, predicted, zero_division=0),
        "recall": seqeval_metrics.recall_score(gold, predicted, zero_division=0),
        "f1": seqeval_metrics.f1_score(gold, predicted, zero_division=0),
    }
    for kind, values in sorted(report.items()):
        if kind.endswith(" avg"):
            continue
        for name in ("precision", "recall", "f1"):
            scores[f"{name}_{kind}"] = float(values["f1-score" if name == "f1" else name])
    return {name: float(value) for name, value in scores.items()}
