import keras
from keras import ops

from keras_tasks.layers.attention_weights import MemoryAttention


@keras.saving.register_keras_serializable(package="keras_tasks")
class BahdanauAttention(MemoryAttention):
    """Additive attention (Bahdanau et al. 2015) of queries over a memory.

    Scores memory step `s` for query `q` with `v^T tanh(W_q q + W_k k_s)`, turns
    the scores into weights with a softmax over the real (unmasked) steps, and
    returns the weighted sum of the memory. The weights of each query sum to 1
    and are exactly 0 at padding. The memory is any sequence of vectors:
    encoder states of a sentence, or the regions of an image.

    The keys `W_k k_s` do not depend on the query: `project_keys(value)` computes
    them once, and a decoding loop passes them as `keys=` at every step.

    Args:
        units: int, size of the scoring layer.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        query: float tensor `(batch, query_dim)` (one step) or
            `(batch, steps, query_dim)`.
        value: float tensor `(batch, time, value_dim)`, the memory.
        value_mask: optional boolean tensor `(batch, time)`, `True` at real steps.
        keys: optional `project_keys(value)`, computed once per memory.
        return_attention_scores: bool; when `True` also return the weights
            `(batch, time)` or `(batch, steps, time)`.

    Example:
    >>> attention = BahdanauAttention(units=8)
    >>> context, weights = attention(
    ...     np.ones((2, 4)), np.ones((2, 5, 6)), return_attention_scores=True
    ... )
    >>> context.shape, weights.shape
    ((2, 6), (2, 5))
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, query_shape, value_shape=None):
        value_shape = value_shape or query_shape
        self.query_kernel = self.add_weight(
            name="query_kernel", shape=(query_shape[-1], self.units), initializer="glorot_uniform"
        )
        self.key_kernel = self.add_weight(
            name="key_kernel", shape=(value_shape[-1], self.units), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.score_vector = self.add_weight(name="score_vector", shape=(self.units,), initializer="glorot_uniform")
        self.built = True

    def project_keys(self, value):
        return ops.matmul(value, self.key_kernel) + self.bias  # (batch, time, units)

    def scores(self, query, keys):
        projected = ops.expand_dims(ops.matmul(query, self.query_kernel), 2)  # (batch, steps, 1, units)
        return ops.sum(ops.tanh(projected + ops.expand_dims(keys, 1)) * self.score_vector, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config
