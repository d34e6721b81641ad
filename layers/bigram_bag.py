import keras
import numpy as np
from keras import ops

# Bigram keys are `first_id * vocabulary_size + second_id` in int32 (the default integer of every backend),
# so the vocabulary must satisfy vocabulary_size**2 <= 2**31 - 1.
MAX_BIGRAM_VOCABULARY = 46340


@keras.saving.register_keras_serializable(package="keras_tasks")
class BigramBag(keras.layers.Layer):
    """The mean of a text's word and word-bigram embeddings: fastText's document vector (Joulin et al., 2017).

    A bigram gets a vector only when it is one of `num_bigrams` known bigrams (the most frequent in the training
    data, given as sorted keys `first_id * vocabulary_size + second_id`); a bigram outside them, or touching
    padding, is left out of the mean, as are padding tokens (id 0). The keys are a non-trainable weight, so the
    layer's saved weights carry them, and the lookup is a binary search (`ops.searchsorted`): no hash table, any
    backend.

    Args:
        vocabulary_size: word ids `0..vocabulary_size-1`, 0 is padding; at most 46,340 (int32 keys).
        output_dim: embedding size.
        num_bigrams: how many known bigrams (rows after the words' rows).
        bigram_keys: optional sorted int array `[num_bigrams]`, the known bigrams' keys (else set by loading
            weights).

    Call arguments:
        token_ids: int `[batch, time]`, right-padded with 0.

    Returns:
        `[batch, output_dim]`, the mean of the embeddings of the text's words and known bigrams (zeros for an
        empty text).
    """

    def __init__(self, vocabulary_size, output_dim, num_bigrams, bigram_keys=None, **kwargs):
        super().__init__(**kwargs)
        if vocabulary_size > MAX_BIGRAM_VOCABULARY:
            raise ValueError(
                f"BigramBag keys bigrams in int32, so vocabulary_size must be at most {MAX_BIGRAM_VOCABULARY}, got "
                f"{vocabulary_size}: cap the vocabulary (data.max_tokens)"
            )
        if num_bigrams < 1:
            raise ValueError(f"num_bigrams must be at least 1, got {num_bigrams}")
        self.vocabulary_size = int(vocabulary_size)
        self.output_dim = int(output_dim)
        self.num_bigrams = int(num_bigrams)
        self._initial_keys = None
        if bigram_keys is not None:
            keys = np.asarray(bigram_keys, dtype="int64")
            if keys.shape != (self.num_bigrams,):
                raise ValueError(f"bigram_keys must have shape ({self.num_bigrams},), got {keys.shape}")
            if keys.size > 1 and not (np.diff(keys) > 0).all():
                raise ValueError("bigram_keys must be sorted and distinct")
            if keys.min() < 0 or keys.max() >= self.vocabulary_size**2:
                raise ValueError("bigram_keys must be first_id * vocabulary_size + second_id of word ids")
            self._initial_keys = keys.astype("int32")

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.vocabulary_size + self.num_bigrams, self.output_dim),
            initializer=keras.initializers.RandomUniform(-0.05, 0.05),
            name="embeddings",
        )
        keys = self._initial_keys
        self.bigram_keys = self.add_weight(
            shape=(self.num_bigrams,),
            dtype="int32",
            initializer=keras.initializers.Constant(keys) if keys is not None else "zeros",
            trainable=False,
            name="bigram_keys",
        )

    def call(self, token_ids):
        token_ids = ops.cast(token_ids, "int32")
        word_mask = ops.cast(ops.not_equal(token_ids, 0), self.compute_dtype)
        first, second = token_ids[:, :-1], token_ids[:, 1:]
        keys = ops.convert_to_tensor(self.bigram_keys)
        queries = first * self.vocabulary_size + second
        position = ops.searchsorted(keys, ops.reshape(queries, (-1,)))
        position = ops.reshape(ops.minimum(position, self.num_bigrams - 1), ops.shape(queries))
        both_words = ops.logical_and(ops.not_equal(first, 0), ops.not_equal(second, 0))
        known = ops.logical_and(ops.equal(ops.take(keys, position), queries), both_words)
        bigram_mask = ops.cast(known, self.compute_dtype)
        embeddings = ops.cast(self.embeddings, self.compute_dtype)
        words = ops.take(embeddings, token_ids, axis=0)
        bigrams = ops.take(embeddings, ops.cast(position, "int32") + self.vocabulary_size, axis=0)
        total = ops.sum(words * word_mask[..., None], axis=1) + ops.sum(bigrams * bigram_mask[..., None], axis=1)
        count = ops.sum(word_mask, axis=1) + ops.sum(bigram_mask, axis=1)
        return total / ops.maximum(count, 1.0)[:, None]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"vocabulary_size": self.vocabulary_size, "output_dim": self.output_dim, "num_bigrams": self.num_bigrams}
        )
        return config


def count_bigram_keys(token_id_rows, vocabulary_size, max_bigrams, min_count=1):
    """Sorted keys of the `max_bigrams` most frequent bigrams (count >= `min_count`) in rows of word ids.

    `token_id_rows`: iterable of int arrays `[batch, time]`, right-padded with 0 (bigrams touching 0 skipped).
    Ties at the cut are broken by the smaller key, so the result is deterministic.
    """
    found = []
    for rows in token_id_rows:
        rows = np.asarray(rows, dtype="int64")
        first, second = rows[:, :-1], rows[:, 1:]
        found.append((first * vocabulary_size + second)[(first != 0) & (second != 0)])
    keys, counts = np.unique(np.concatenate(found) if found else np.zeros(0, "int64"), return_counts=True)
    keep = counts >= min_count
    keys, counts = keys[keep], counts[keep]
    order = np.lexsort((keys, -counts))[:max_bigrams]
    return np.sort(keys[order]).astype("int32")
