"""What the command line knows of each task without importing it.

A task module imports TensorFlow and Keras (seconds); `keras-tasks --help`, `list`, `train TASK --help` and
`predict --server` need only a task's name, summary, models, datasets, flags and output formatting. Those live
here, one `TaskCard` per task, and nowhere else: `tasks/base.py` reads the card for `--folds`, the CLI builds
its parsers from it, and `keras-tasks predict` formats outputs with the card's formatter. The Task class itself
is imported from `card.module` only to train, evaluate or export.

A new task adds its card to `CARDS` (a test checks that every registered task has one and that the card points
at the module that registers it).
"""

import dataclasses
import importlib
import typing


@dataclasses.dataclass(frozen=True)
class CLIFlag:
    """A task-owned `keras-tasks train TASK` flag that sets one config key.

    Args:
        flag: e.g. `"--embeddings"`.
        key: the config key it sets, e.g. `"model.embeddings_path"`.
        help: one line for `--help`.
        type: `str`, `int`, `float`, or `bool` (a switch).
    """

    flag: str
    key: str
    help: str
    type: type = str


@dataclasses.dataclass(frozen=True)
class TaskCard:
    """A task as the command line shows it.

    Args:
        name: the registry name (`keras-tasks train NAME`).
        module: the module whose `@register_task(NAME)` class implements it.
        summary: one line for `--help` and `list`.
        models: the `--model` choices, as shown in `--help` (a pattern such as `resnetN` is fine).
        datasets: a TF-free callable returning `{dataset name: one-line description}` for `list`.
        flags: task-owned `train` flags.
        supports_folds: whether `--folds K` (k-fold cross-validation) applies.
        formatter: `"module:function"` formatting `predict` outputs (see `tasks/formatting.py`).
    """

    name: str
    module: str
    summary: str
    models: tuple
    datasets: typing.Callable[[], dict]
    flags: tuple = ()
    supports_folds: bool = False
    formatter: str = "keras_tasks.tasks.formatting:generic"

    def format_predictions(self, inputs, outputs, options=None):
        module, _, function = self.formatter.partition(":")
        return getattr(importlib.import_module(module), function)(inputs, outputs, options or {})


def _text_datasets():
    from keras_tasks.pipelines.text_datasets import DATASETS

    return {name: spec.description for name, spec in DATASETS.items()}


def _image_datasets():
    return {
        "mnist": "MNIST handwritten digits, IDX files, 60k/10k",
        "fashion_mnist": "Fashion-MNIST, IDX files, 60k/10k",
        "cifar10": "CIFAR-10, binary or pickle batches, 50k/10k",
        "cifar10_subset": "the first 4k/1k images of CIFAR-10 (binary batches)",
        "PATH": "a folder of class-per-folder PNG/JPEG images (optional train/validation/test sub-folders)",
    }


def _lm_datasets():
    from keras_tasks.pipelines.lm_datasets import DATASETS

    return dict(DATASETS, PATH="a text file or folder of your own (--set data.unit=word|char)")


def _translation_datasets():
    from keras_tasks.pipelines.parallel import DATASETS

    return dict(DATASETS, PATH="a folder of train.SRC/train.TGT files, a TSV of pairs (Anki/Tatoeba), or SRC_FILE,TGT_FILE")


_EMBEDDING_FLAGS = (
    CLIFlag("--embeddings", "model.embeddings_path", "pretrained word vectors (word2vec, GloVe, fastText, KeyedVectors)"),
    CLIFlag("--embeddings-format", "model.embeddings_format", "vector file format when it cannot be detected"),
)


def _caption_datasets():
    from keras_tasks.pipelines.captions import DATASETS

    return dict(DATASETS, PATH="a COCO-style captions JSON file (--set data.image_dir=FOLDER of its images)")


def _tagging_datasets():
    from keras_tasks.pipelines.conll import DATASETS

    return dict(
        {name: spec["description"] for name, spec in DATASETS.items()},
        PATH="a folder of CoNLL column files: train, valid (or dev), test (--set data.tag_scheme=iob1|iob2|iobes)",
    )


CARDS = {
    card.name: card
    for card in (
        TaskCard(
            name="text_classification",
            module="keras_tasks.tasks.text_classification",
            summary="Raw text to one label, with the tokenizer inside the exported model.",
            models=("textcnn", "bilstm_attention", "fasttext"),
            datasets=_text_datasets,
            flags=_EMBEDDING_FLAGS
            + (
                CLIFlag(
                    "--embedding-mode", "model.embedding_mode",
                    "rand | static | non-static | multichannel (default: non-static with --embeddings, else rand)",
                ),
            ),
            supports_folds=True,
            formatter="keras_tasks.tasks.formatting:classification",
        ),
        TaskCard(
            name="image_classification",
            module="keras_tasks.tasks.image_classification",
            summary="Pixels to one label, with image decoding and resizing inside the exported model.",
            models=("lenet5", "cnn", "resnetN (6n+2: resnet20, resnet32, resnet56, ...)"),
            datasets=_image_datasets,
            formatter="keras_tasks.tasks.formatting:classification",
        ),
        TaskCard(
            name="language_model",
            module="keras_tasks.tasks.language_model",
            summary="Next-token prediction: perplexity on words, generation with temperature on characters.",
            models=("lstm",),
            datasets=_lm_datasets,
            flags=(
                CLIFlag("--unit", "data.unit", "word | char (default: the dataset's own)"),
                CLIFlag("--size", "model.size", "small | medium | large (Zaremba et al. 2014) | char"),
            ),
            formatter="keras_tasks.tasks.formatting:language_model",
        ),
        TaskCard(
            name="sequence_tagging",
            module="keras_tasks.tasks.sequence_tagging",
            summary="Named-entity tagging: raw sentences to tags and entity spans (BiLSTM, char features, CRF).",
            models=("bilstm", "bilstm_crf"),
            datasets=_tagging_datasets,
            flags=_EMBEDDING_FLAGS + (
                CLIFlag("--embedding-mode", "model.embedding_mode", "rand | static | non-static"),
                CLIFlag("--chars", "model.char_encoder", "character features: cnn (Ma & Hovy) | lstm (Lample et al.) | none"),
            ),
            formatter="keras_tasks.tasks.formatting:entities",
        ),
        TaskCard(
            name="translation",
            module="keras_tasks.tasks.translation",
            summary="Sentence translation: attention seq2seq (Bahdanau/Luong), SentencePiece and beam search in the export.",
            models=("seq2seq_attention",),
            datasets=_translation_datasets,
            flags=(
                CLIFlag("--source", "data.source", "source language (Multi30k: en, de, fr, cs)"),
                CLIFlag("--target", "data.target", "target language"),
                CLIFlag("--attention", "model.attention", "bahdanau | luong"),
            ),
            formatter="keras_tasks.tasks.formatting:translation",
        ),
        TaskCard(
            name="image_captioning",
            module="keras_tasks.tasks.image_captioning",
            summary="Image captioning: CNN regions + attention LSTM (Show, Attend and Tell), beam search in the export.",
            models=("show_attend_tell",),
            datasets=_caption_datasets,
            flags=(
                CLIFlag("--encoder", "model.encoder", "cnn | resnetN | mobilenet_v2 | efficientnet_b0"),
                CLIFlag("--image-dir", "data.image_dir", "folder of the images (flickr8k, your captions JSON)"),
            ),
            formatter="keras_tasks.tasks.formatting:captioning",
        ),
    )
}

# A task registered without a card (a test's toy task): no flags, no folds, generic output lines.
_GENERIC = TaskCard(name="", module="", summary="", models=(), datasets=dict)


def card(name):
    """The card of task `name`; a bare generic card for a registered task that has none."""
    return CARDS.get(name) or dataclasses.replace(_GENERIC, name=name or "")
