import keras
from keras import ops

from keras_tasks.layers.attention_weights import MemoryAttention

SCORES = ("general", "dot")


@keras.saving.register_keras_serializable(package="keras_tasks")
class LuongAttention(MemoryAttention):
    """Multiplicative attention (Luong et al. 2015) of queries over a memory.

    Scores memory step `s` for query `q` with `q^T W k_s` (`score="general"`) or
    `q^T k_s` (`"dot"`, which needs `query_dim == value_dim` and has no
    weights), turns the scores into weights with a softmax over the real
    (unmasked) steps, and returns the weighted sum of the memory. The weights
    of each query sum to 1 and are exactly 0 at padding.

    `project_keys(value)` computes `W k_s` once per memory, for decoding loops.

    Args:
        score: `"general"` or `"dot"`.
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
    >>> attention = LuongAttention(score="general")
    >>> context, weights = attention(
    ...     np.ones((2, 4)), np.ones((2, 5, 6)), return_attention_scores=True
    ... )
    >>> context.shape, weights.shape
    ((2, 6), (2, 5))
    """

    def __init__(self, score="general", **kwargs):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"`score` must be one of {SCORES}. Received: score={score!r}")
        self.score = score

    def build(self, query_shape, value_shape=None):
        value_shape = value_shape or query_shape
        if self.score == "general":
            self.kernel = self.add_weight(
                name="kernel", shape=(value_shape[-1], query_shape[-1]), initializer="glorot_uniform"
            )
        elif query_shape[-1] != value_shape[-1]:
            raise ValueError(
                f"score='dot' needs queries and values of one size; got {query_shape[-1]} and {value_shape[-1]} "
                "(use score='general')"
            )
        self.built = True

    def project_keys(self, value):
        if self.score == "general":
            return ops.matmul(value, self.kernel)  # (batch, time, query_dim)
        return value

    def scores(self, query, keys):
        return ops.matmul(query, ops.transpose(ops.cast(keys, query.dtype), (0, 2, 1)))  # (batch, steps, time)

    def get_config(self):
        config = super().get_config()
        config.update({"score": self.score})
        return config
