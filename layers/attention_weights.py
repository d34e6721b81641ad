"""What the attention layers share: the masked softmax and their base class (no public layer here)."""

import keras
from keras import ops


def masked_softmax(scores, mask=None):
    """Softmax over the last axis that gives exactly 0 weight where `mask` is False.

    Args:
        scores: float tensor `(..., time)`.
        mask: optional boolean tensor broadcastable to `scores`, `True` at real steps.

    Returns:
        Weights of `scores`' shape and dtype; a row whose steps are all masked gets all-zero
        weights rather than weights spread over padding.
    """
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.cast(mask, "bool")
    # float16 cannot hold -1e9.
    scores = ops.where(mask, scores, ops.cast(-1e9 if scores.dtype == "float32" else -3e4, scores.dtype))
    weights = ops.softmax(scores, axis=-1) * ops.cast(mask, scores.dtype)
    return weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), ops.cast(1e-9, scores.dtype))


def attend(query, keys, value, mask, score_fn):
    """Context vectors and weights for one query per row `(batch, dim)` or a sequence `(batch, steps, dim)`."""
    one_step = len(query.shape) == 2
    if one_step:
        query = ops.expand_dims(query, 1)
    scores = score_fn(query, keys)  # (batch, steps, time)
    if mask is not None:
        mask = ops.expand_dims(mask, 1)
    weights = masked_softmax(scores, mask)
    context = ops.matmul(weights, ops.cast(value, weights.dtype))  # (batch, steps, value_dim)
    if one_step:
        return context[:, 0], weights[:, 0]
    return context, weights


class MemoryAttention(keras.layers.Layer):
    """Base of the attention layers: a subclass defines `build`, `project_keys(value)` and `scores(query, keys)`.

    `call(query, value, value_mask=None, keys=None, return_attention_scores=False)` returns the context
    `(batch, [steps,] value_dim)` (and the weights `(batch, [steps,] time)`); `keys` defaults to
    `project_keys(value)`, which a decoding loop computes once per memory.
    """

    def project_keys(self, value):
        raise NotImplementedError

    def scores(self, query, keys):
        raise NotImplementedError

    def call(self, query, value, value_mask=None, keys=None, return_attention_scores=False):
        if keys is None:
            keys = self.project_keys(value)
        context, weights = attend(query, keys, value, value_mask, self.scores)
        if return_attention_scores:
            return context, weights
        return context

    def compute_output_spec(self, query, value, value_mask=None, keys=None, return_attention_scores=False):
        context = keras.KerasTensor(query.shape[:-1] + value.shape[-1:], dtype=self.compute_dtype)
        if return_attention_scores:
            return context, keras.KerasTensor(query.shape[:-1] + value.shape[1:2], dtype=self.compute_dtype)
        return context
