"""In-graph text standardisation, tokenisation and vocabulary lookup.

The same `TextVectorizer` maps raw strings to right-padded token ids in the
tf.data pipeline and inside the exported SavedModel, so clients send raw text.
"""

import collections
import json
import os

import keras
import tensorflow as tf

from keras_tasks.pipelines import tokenizers
from keras_tasks.pipelines.tokenizers import standardize  # noqa: F401  (kept importable from here)

PAD_TOKEN = ""
OOV_TOKEN = "[UNK]"


def tokenize(texts, lowercase=True, max_length=None, tokenizer=None):
    """Tokens of each text, a `tf.RaggedTensor` of strings (truncated to `max_length`).

    Args:
        texts: string tensor `(batch,)`.
        lowercase: bool, for the default tokenizer (Kim's clean-up).
        max_length: optional int, keep at most this many tokens per text.
        tokenizer: optional `Tokenizer` (or registered name) instead of Kim's.
    """
    if tokenizer is None:
        tokens = tf.strings.split(standardize(texts, lowercase))
    else:
        tokens = tokenizers.get_tokenizer(tokenizer).tokenize(texts)
    if max_length:
        tokens = tokens[:, :max_length]
    return tokens


def count_tokens(texts, lowercase=True, max_length=None, batch_size=4096, tokenizer=None):
    """Token frequencies of a list of texts, by the in-graph tokenizer (Kim's unless `tokenizer` is given)."""
    tokenizer = tokenizers.get_tokenizer(tokenizer) if tokenizer is not None else None
    counts = collections.Counter()
    for start in range(0, len(texts), batch_size):
        batch = tokenize(texts[start : start + batch_size], lowercase, max_length, tokenizer)
        # Count in the graph, then add one Python entry per distinct token (not per token: IMDB has 6M).
        words, _, batch_counts = tf.unique_with_counts(batch.flat_values)
        for word, count in zip(words.numpy(), batch_counts.numpy().tolist()):
            counts[word.decode("utf-8")] += count
    return counts


def build_vocabulary(counts, max_tokens=None, min_count=1):
    """Words by descending frequency (ties alphabetical), without the pad and OOV tokens."""
    words = [w for w, c in counts.items() if c >= min_count and w not in (PAD_TOKEN, OOV_TOKEN)]
    words.sort(key=lambda w: (-counts[w], w))
    if max_tokens:
        words = words[: max(0, max_tokens - 2)]
    return words


def write_vocabulary(words, path):
    """Write a vocabulary atomically: one token per line, or a JSON list when `path` ends in `.json`.

    A line-per-token file is what `TextVectorizer` tracks as a SavedModel asset;
    tokens with line breaks (the `characters` tokenizer's newline) need `.json`.
    """
    words = [str(word) for word in words]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        if path.endswith(".json"):
            json.dump(words, f, ensure_ascii=False)
        else:
            for word in words:
                if "\n" in word or "\r" in word:
                    raise ValueError(
                        f"{path}: token {word!r} has a line break; write the vocabulary to a .json path instead"
                    )
                f.write(word + "\n")
    os.replace(tmp, path)


def read_vocabulary(path):
    """The tokens `write_vocabulary` wrote, as a list of str."""
    with open(path, encoding="utf-8", newline="") as f:
        if path.endswith(".json"):
            return json.load(f)
        return f.read().split("\n")[:-1]


class TextVectorizer(tf.Module):
    """Raw strings to right-padded int token ids (`tokenize -> lookup`), and ids back to text.

    Id 0 is padding and id 1 is out-of-vocabulary. A vocabulary file of one
    token per line is a tracked asset, so it travels inside an exported
    SavedModel; a `.json` file or a list is stored in the graph as a constant.
    The tokenizer decides what a token is: the default (Kim's clean-up) lowers
    case and drops symbols, the `whitespace` and `characters` tokenizers keep
    case and tokens such as `<unk>` or `<eos>` as they are.

    Args:
        vocabulary_file: path to one token per line, a `.json` path written by
            `write_vocabulary`, or a list of tokens (no pad or OOV entries).
        max_length: optional int, keep at most this many tokens per text.
        lowercase: bool, lower-case before lookup (used by the default tokenizer only).
        name: module name.
        tokenizer: optional `Tokenizer`, registered name or config dict; default
            `KimTokenizer(lowercase)`, the text classifiers' tokens.

    Example:
    ```python
    vectorizer = TextVectorizer(["the", "cat", "<eos>"], tokenizer="whitespace")
    ids = vectorizer(["the cat <eos>", "the dog"])  # [[2, 3, 4], [2, 1, 0]]
    vectorizer.detokenize(ids)  # [b"the cat <eos>", b"the [UNK]"]
    ```
    """

    def __init__(self, vocabulary_file, max_length=None, lowercase=True, name="text_vectorizer", tokenizer=None):
        super().__init__(name=name)
        self.max_length = max_length
        if tokenizer is None:
            tokenizer = tokenizers.KimTokenizer(lowercase=lowercase)
        self.tokenizer = tokenizers.get_tokenizer(tokenizer)
        self.lowercase = self.tokenizer.lowercase
        vocabulary = vocabulary_file
        if isinstance(vocabulary, str) and vocabulary.endswith(".json"):
            vocabulary = read_vocabulary(vocabulary)
        options = dict(mask_token=PAD_TOKEN, oov_token=OOV_TOKEN, num_oov_indices=1)
        self.lookup = keras.layers.StringLookup(vocabulary=vocabulary, **options)
        self.inverse_lookup = keras.layers.StringLookup(vocabulary=vocabulary, invert=True, **options)
        # Export tracks built layers only.
        self.lookup.build((None,))
        self.inverse_lookup.build((None,))

    @property
    def vocabulary(self):
        return [str(w) for w in self.lookup.get_vocabulary()]

    @property
    def vocabulary_size(self):
        return self.lookup.vocabulary_size()

    def ragged_tokens(self, texts):
        tokens = self.tokenizer.tokenize(texts)
        if self.max_length:
            tokens = tokens[..., : self.max_length]
        return tokens

    def tokens(self, texts):
        """Padded token strings `(batch, time)`, `""` at padding (for showing attention)."""
        return _to_dense(self.ragged_tokens(texts), PAD_TOKEN)

    def ragged_ids(self, texts):
        return tf.ragged.map_flat_values(lambda t: tf.cast(self.lookup(t), tf.int32), self.ragged_tokens(texts))

    def __call__(self, texts):
        return _to_dense(self.ragged_ids(texts), 0)

    def ids_to_tokens(self, ids):
        """Token strings of int ids (dense or ragged, any shape): `""` for padding, `[UNK]` for OOV and unknown ids."""
        if isinstance(ids, tf.RaggedTensor):
            return tf.ragged.map_flat_values(self.inverse_lookup, ids)
        return self.inverse_lookup(tf.convert_to_tensor(ids))

    def detokenize(self, ids):
        """Text of each row of ids `(batch, time)`: padding (id 0) dropped, the rest joined by the tokenizer."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
        ids = tf.ragged.boolean_mask(ids, tf.not_equal(ids, 0))
        return self.tokenizer.detokenize(self.ids_to_tokens(ids))


def _to_dense(ragged, default):
    # At least one step, so an empty text still gives the model a (padded) sequence.
    dense = ragged.to_tensor(default_value=default)
    missing = tf.maximum(0, 1 - tf.shape(dense)[1])
    return tf.pad(dense, [[0, 0], [0, missing]], constant_values=default)
