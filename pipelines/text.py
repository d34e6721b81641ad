"""In-graph text standardisation, tokenisation and vocabulary lookup.

The same `TextVectorizer` maps raw strings to right-padded token ids in the
tf.data pipeline and inside the exported SavedModel, so clients send raw text.
"""

import collections
import os

import keras
import tensorflow as tf

PAD_TOKEN = ""
OOV_TOKEN = "[UNK]"

# Kim (2014)'s clean_str, made Unicode-aware: keep letters, digits and a little
# punctuation, split clitics and punctuation off as tokens.
_REPLACEMENTS = (
    (r"<br\s*/?>", " "),
    (r"[^\p{L}\p{N}(),!?'`]", " "),
    (r"'s\b", " 's"),
    (r"'ve\b", " 've"),
    (r"n't\b", " n't"),
    (r"'re\b", " 're"),
    (r"'d\b", " 'd"),
    (r"'ll\b", " 'll"),
    (r"([,!?()])", r" \1 "),
    (r"\s+", " "),
)


def standardize(texts, lowercase=True):
    """Lower-case and split punctuation off words, Kim-style (a tf function of strings)."""
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    for pattern, rewrite in _REPLACEMENTS:
        texts = tf.strings.regex_replace(texts, pattern, rewrite)
    return tf.strings.strip(texts)


def tokenize(texts, lowercase=True, max_length=None):
    """Standardised whitespace tokens, a `tf.RaggedTensor` of strings (truncated to `max_length`)."""
    tokens = tf.strings.split(standardize(texts, lowercase))
    if max_length:
        tokens = tokens[:, :max_length]
    return tokens


def count_tokens(texts, lowercase=True, max_length=None, batch_size=4096):
    """Token frequencies of a list of texts, after the in-graph standardisation."""
    counts = collections.Counter()
    for start in range(0, len(texts), batch_size):
        batch = tokenize(texts[start : start + batch_size], lowercase, max_length)
        counts.update(t.decode("utf-8") for t in batch.flat_values.numpy())
    return counts


def build_vocabulary(counts, max_tokens=None, min_count=1):
    """Words by descending frequency (ties alphabetical), without the pad and OOV tokens."""
    words = [w for w, c in counts.items() if c >= min_count and w not in (PAD_TOKEN, OOV_TOKEN)]
    words.sort(key=lambda w: (-counts[w], w))
    if max_tokens:
        words = words[: max(0, max_tokens - 2)]
    return words


def write_vocabulary(words, path):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for word in words:
            f.write(word + "\n")
    os.replace(tmp, path)


class TextVectorizer(tf.Module):
    """Raw strings to right-padded int token ids: `standardize -> split -> lookup`.

    Id 0 is padding and id 1 is out-of-vocabulary. The vocabulary file is a
    tracked asset, so it travels inside an exported SavedModel.

    Args:
        vocabulary_file: path to one word per line (no pad or OOV entries).
        max_length: optional int, keep at most this many tokens per text.
        lowercase: bool, lower-case before lookup.
    """

    def __init__(self, vocabulary_file, max_length=None, lowercase=True, name="text_vectorizer"):
        super().__init__(name=name)
        self.max_length = max_length
        self.lowercase = lowercase
        self.lookup = keras.layers.StringLookup(
            vocabulary=vocabulary_file, mask_token=PAD_TOKEN, oov_token=OOV_TOKEN, num_oov_indices=1
        )
        self.lookup.build((None,))  # export tracks built layers only

    @property
    def vocabulary(self):
        return [str(w) for w in self.lookup.get_vocabulary()]

    @property
    def vocabulary_size(self):
        return self.lookup.vocabulary_size()

    def tokens(self, texts):
        """Padded token strings `(batch, time)`, `""` at padding (for showing attention)."""
        tokens = tokenize(texts, self.lowercase, self.max_length)
        return _to_dense(tokens, PAD_TOKEN)

    def ragged_ids(self, texts):
        tokens = tokenize(texts, self.lowercase, self.max_length)
        return tf.ragged.map_flat_values(lambda t: tf.cast(self.lookup(t), tf.int32), tokens)

    def __call__(self, texts):
        return _to_dense(self.ragged_ids(texts), 0)


def _to_dense(ragged, default):
    # At least one step, so an empty text still gives the model a (padded) sequence.
    dense = ragged.to_tensor(default_value=default)
    missing = tf.maximum(0, 1 - tf.shape(dense)[1])
    return tf.pad(dense, [[0, 0], [0, missing]], constant_values=default)
