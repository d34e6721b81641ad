"""Sentence and document classification: TextCNN (Kim 2014), BiLSTM + attention pooling, fastText.

    keras-tasks train text_classification --model textcnn --dataset mr
    keras-tasks train text_classification --model bilstm_attention --dataset trec
    keras-tasks train text_classification --dataset imdb          # documents: fastText by default
"""

import dataclasses
import os
import typing

import keras
import numpy as np
import tensorflow as tf

from keras_tasks.layers import EMBEDDING_MODES
from keras_tasks.layers.bigram_bag import count_bigram_keys
from keras_tasks.pipelines import text as text_lib
from keras_tasks.pipelines.batching import batch_dataset
from keras_tasks.pipelines.errors import ConfigError
from keras_tasks.pipelines.text_datasets import load_text_splits
from keras_tasks.tasks.base import Task, read_labels, register_task, write_labels
from keras_tasks.tasks.config import DataConfig, TrainConfig
from keras_tasks.tasks.text_models import TEXT_MODELS as MODELS, text_classifier


@dataclasses.dataclass(frozen=True)
class TextDataConfig(DataConfig):
    dataset: str = "mr"  # mr | sst2 | sst2_phrases | sst1 | trec | imdb | tfds:NAME | a file or folder of your own
    folds: typing.Optional[int] = None  # k-fold cross-validation for datasets without a test split (set by --folds)
    fold: int = 0  # which fold is the test split
    validation_fraction: float = 0.1  # of train, when the dataset has no validation split
    test_fraction: float = 0.1  # held out when the dataset has no test split and folds is unset
    encoding: typing.Optional[str] = None  # file encoding of your own data (named datasets know theirs)
    text_column: typing.Optional[str] = None  # TSV/CSV column of the text (default: sentence/text/review)
    label_column: str = "label"  # TSV/CSV column of the label
    max_tokens: typing.Optional[int] = 50000  # vocabulary size cap, including padding and OOV
    min_count: int = 1  # words seen fewer times in train map to OOV
    max_length: typing.Optional[int] = 400  # tokens kept per text (documents are truncated)
    lowercase: bool = True
    # Batch texts of similar length (token counts; e.g. 64,128,256): less padding for the BiLSTM. Empty: off.
    bucket_boundaries: typing.Tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class TextModelConfig:
    # textcnn | bilstm_attention | fasttext; auto: fasttext for IMDB (documents), textcnn for everything else
    name: str = "auto"
    embedding_dim: int = 300  # ignored with pretrained vectors (their size is used)
    embedding_mode: str = "rand"  # rand | static | non-static | multichannel (Kim 2014)
    embeddings_path: typing.Optional[str] = None  # pretrained vectors (word2vec, GloVe, fastText, KeyedVectors)
    embeddings_format: typing.Optional[str] = None  # detected from the file when unset
    filter_sizes: typing.Tuple[int, ...] = (3, 4, 5)  # TextCNN n-gram widths
    num_filters: int = 100  # TextCNN feature maps per width
    hidden_dim: int = 150  # LSTM units per direction
    num_layers: int = 1  # stacked BiLSTM layers
    attention_dim: int = 100  # size of the attention scoring layer
    dropout: float = 0.5
    max_norm: typing.Optional[float] = 3.0  # l2 max-norm of the output layer's weight vectors (Kim)
    max_bigrams: int = 100000  # fasttext: the most frequent training bigrams that get a vector


@dataclasses.dataclass(frozen=True)
class TextClassificationConfig:
    data: TextDataConfig = dataclasses.field(default_factory=TextDataConfig)
    model: TextModelConfig = dataclasses.field(default_factory=TextModelConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            epochs=10, batch_size=50, optimizer="adam", learning_rate=1e-3, early_stopping_patience=3
        )
    )


def is_documents(dataset):
    """IMDB's reviews (a local copy or tfds): documents, not sentences."""
    dataset = dataset or ""
    return dataset == "imdb" or dataset.startswith("tfds:imdb")


def default_model(dataset):
    """`model.name=auto`: Kim's CNN is built for sentences; on 250-word reviews a bag of words and bigrams reaches
    90% in a fraction of its time (docs/benchmarks_peers.md). `--model textcnn` keeps Kim's configuration."""
    return "fasttext" if is_documents(dataset) else "textcnn"


@register_task("text_classification")
class TextClassificationTask(Task):
    """Raw text to one label, with the tokenizer inside the exported model.

    Serving (`serving_default`): `text` (string `[batch]`) to `label` (string),
    `probabilities` (`[batch, classes]`); the BiLSTM + attention model also
    returns `tokens` and their `attention` weights (`[batch, time]`).
    """

    config_class = TextClassificationConfig

    def __init__(self, config):
        if config.model.name == "auto":  # a config built without resolve_config: the presets' choice of model
            name = default_model(config.data.dataset)
            config = dataclasses.replace(config, model=dataclasses.replace(config.model, name=name))
        super().__init__(config)
        if config.model.name not in MODELS:
            raise ValueError(f"model.name must be one of {MODELS}, got {config.model.name!r}")
        if config.model.embedding_mode not in EMBEDDING_MODES:
            raise ValueError(f"model.embedding_mode must be one of {EMBEDDING_MODES}, got {config.model.embedding_mode!r}")
        if config.model.name == "fasttext" and (config.model.embeddings_path or config.model.embedding_mode != "rand"):
            raise ConfigError(
                "--model fasttext learns its own word and bigram vectors: drop --embeddings/--embedding-mode, or use "
                "--model textcnn or bilstm_attention with pretrained vectors"
            )
        if config.model.embedding_mode == "rand" and config.model.embeddings_path:
            raise ConfigError(
                "--embedding-mode rand starts from random vectors, so --embeddings would be ignored: drop one, or "
                "pick static, non-static (the default with --embeddings) or multichannel"
            )
        self.vectorizer = None
        self.labels = None
        self.pretrained = None
        self.bigram_keys = None

    @classmethod
    def presets(cls, draft):
        model, dataset = draft.model.name, draft.data.dataset
        presets = {}
        if model == "auto":
            model = presets["model.name"] = default_model(dataset)
        if model == "fasttext":
            # Joulin et al. (2017): small vectors, no dropout, a linear classifier; whole documents (the cost of a
            # token is a lookup), a vocabulary whose bigram keys fit in int32.
            presets.update({
                "model.embedding_dim": 32, "model.dropout": 0.0, "model.max_norm": None, "data.max_tokens": 20000,
                "data.max_length": None, "train.batch_size": 64, "train.epochs": 3,
                "train.learning_rate": 5e-3, "train.lr_schedule": "cosine",
                "train.optimizer": "lazy_adam",  # the step updates only the looked-up rows of the table
            })
        elif is_documents(dataset):
            # Documents: fewer, longer examples.
            presets.update({"train.batch_size": 32, "train.epochs": 3, "data.max_length": 400})
        elif dataset == "sst2_phrases":
            presets.update({"train.epochs": 4})  # 67k phrases: ten times the sentences
        elif model == "bilstm_attention":
            presets.update({"train.epochs": 6})
        if dataset == "trec":
            # Kim's preprocessing keeps the case of TREC questions (and only theirs). Over 8 seeds TextCNN tests
            # the same either way (89.8; docs/benchmarks_trec.md): kept for fidelity to the paper, not for accuracy.
            presets["data.lowercase"] = False
        if draft.model.embeddings_path and draft.model.embedding_mode == "rand" and model != "fasttext":
            presets["model.embedding_mode"] = "non-static"  # vectors given: start from them, fine-tuned (Kim's non-static)
        return presets

    # === Data ===

    def load_data(self):
        data = self.config.data
        return load_text_splits(
            data.dataset,
            data_dir=data.data_dir,
            seed=self.config.train.seed,
            validation_fraction=data.validation_fraction,
            test_fraction=data.test_fraction,
            folds=data.folds,
            fold=data.fold,
            max_examples=data.max_examples,
            encoding=data.encoding,
            text_column=data.text_column,
            label_column=data.label_column,
            allow_download=data.download,
        )

    def num_examples(self, splits, split):
        return len(splits.texts[split])

    def adapt(self, splits, assets_dir):
        data = self.config.data
        counts = text_lib.count_tokens(splits.texts["train"], data.lowercase, data.max_length)
        words = text_lib.build_vocabulary(counts, data.max_tokens, data.min_count)
        text_lib.write_vocabulary(words, os.path.join(assets_dir, "vocabulary.txt"))
        write_labels(assets_dir, splits.label_names)
        with open(os.path.join(assets_dir, "token_counts.tsv"), "w", encoding="utf-8") as f:
            for word in words:
                f.write(f"{word}\t{counts[word]}\n")
        if self.config.model.embeddings_path or self.config.model.embedding_mode != "rand":
            self._align_pretrained(words, counts, assets_dir)
        if self.config.model.name == "fasttext":
            self._count_bigrams(splits, assets_dir)

    def _count_bigrams(self, splits, assets_dir):
        """The keys of the most frequent training bigrams (`bigram_keys.npy`): the bigrams fastText gives a vector."""
        vectorizer = text_lib.TextVectorizer(
            os.path.join(assets_dir, "vocabulary.txt"), max_length=self.config.data.max_length,
            lowercase=self.config.data.lowercase,
        )
        texts = splits.texts["train"]
        rows = (vectorizer(texts[start:start + 2048]).numpy() for start in range(0, len(texts), 2048))
        keys = count_bigram_keys(rows, vectorizer.vocabulary_size, self.config.model.max_bigrams)
        if keys.size == 0:  # no two words in a row: one key that never matches (bigrams touching padding never do)
            keys = np.zeros(1, "int32")
        np.save(os.path.join(assets_dir, "bigram_keys.npy"), keys)

    def _align_pretrained(self, words, counts, assets_dir):
        """Pretrained vectors aligned to the vocabulary, saved with the run (and a coverage report)."""
        model = self.config.model
        if not model.embeddings_path:
            raise ValueError(
                f"embedding mode {model.embedding_mode!r} needs pretrained vectors: add --embeddings PATH "
                "(or use --embedding-mode rand)"
            )
        from keras_tasks.pipelines import embeddings

        vectors = embeddings.load_vectors(model.embeddings_path, model.embeddings_format)
        vocabulary = [text_lib.PAD_TOKEN, text_lib.OOV_TOKEN] + list(words)
        matrix, report = embeddings.align_vectors(
            vocabulary, vectors, token_counts=counts, seed=self.config.train.seed
        )
        np.save(os.path.join(assets_dir, "embeddings.npy"), matrix.astype("float32"))
        run_dir = os.path.dirname(assets_dir)
        with open(os.path.join(run_dir, "embedding_coverage.json"), "w", encoding="utf-8") as f:
            f.write(report.to_json())
        print(report.to_text())

    def restore(self, assets_dir):
        data = self.config.data
        self.vectorizer = text_lib.TextVectorizer(
            os.path.join(assets_dir, "vocabulary.txt"), max_length=data.max_length, lowercase=data.lowercase
        )
        self.labels = read_labels(assets_dir)
        path = os.path.join(assets_dir, "embeddings.npy")
        self.pretrained = np.load(path) if os.path.exists(path) else None
        path = os.path.join(assets_dir, "bigram_keys.npy")
        self.bigram_keys = np.load(path) if os.path.exists(path) else None

    def make_dataset(self, splits, split, training):
        labels = splits.label_ids(split)
        dataset = tf.data.Dataset.from_tensor_slices((splits.texts[split], np.asarray(labels, "int32")))
        # Tokenise in large batches (fast), then split back into variable-length examples.
        def tokenize(text, label):
            ids = self.vectorizer.ragged_ids(text)
            return ids.to_tensor(), ids.row_lengths(), label

        dataset = dataset.batch(1024).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        dataset = dataset.map(lambda ids, length, label: (ids[:length], label))
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(labels)))
        return batch_dataset(
            dataset, self.config.train.batch_size, training, seed=self.config.train.seed, padded=True,
            bucket_boundaries=self.config.data.bucket_boundaries or None,
        )

    def label_names(self):
        return self.labels

    # === Model ===

    def build_model(self):
        m = self.config.model
        return text_classifier(
            m.name, self.vectorizer.vocabulary_size, len(self.labels), embedding_dim=m.embedding_dim,
            embedding_mode=m.embedding_mode, weights=self.pretrained, filter_sizes=m.filter_sizes,
            num_filters=m.num_filters, hidden_dim=m.hidden_dim, num_layers=m.num_layers,
            attention_dim=m.attention_dim, dropout=m.dropout, max_norm=m.max_norm, bigram_keys=self.bigram_keys,
        )

    def compile_args(self, steps_per_epoch=None):
        return {
            "optimizer": self.make_optimizer(steps_per_epoch),
            "loss": keras.losses.SparseCategoricalCrossentropy(),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }

    # === Serving ===

    def export_resources(self):
        return [self.vectorizer.lookup]

    def export_endpoints(self, model):
        vectorizer = self.vectorizer
        label_table = tf.constant(self.labels)
        has_attention = any(layer.name == "attention" for layer in model.layers)
        if has_attention:
            weights = model.get_layer("attention").output[1]
            model = keras.Model(model.inputs, [model.outputs[0], weights])

        @tf.function
        def serve(text):
            token_ids = vectorizer(text)
            if has_attention:
                probabilities, attention = model(token_ids, training=False)
            else:
                probabilities = model(token_ids, training=False)
            outputs = {
                "label": tf.gather(label_table, tf.argmax(probabilities, axis=-1)),
                "probabilities": probabilities,
            }
            if has_attention:
                outputs["attention"] = attention
                outputs["tokens"] = vectorizer.tokens(text)
            return outputs

        return {"serving_default": (serve, [tf.TensorSpec([None], tf.string, name="text")])}
