import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_tasks")
class AttentionPooling(keras.layers.Layer):
    """Additive attention pooling over time (Bahdanau-style scoring, Yang et al. 2016).

    Scores every time step with `v^T tanh(W h_t + b)`, turns the scores into
    weights with a softmax over the real (unmasked) steps only, and returns the
    weighted sum of the hidden states. The weights of each example sum to 1 and
    are exactly 0 at padding.

    Args:
        hidden_dim: int, size of the scoring layer.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `(batch, time, dim)`.
        mask: optional boolean tensor `(batch, time)`, `True` at real steps.
        return_attention_scores: bool; when `True` also return the weights
            `(batch, time)`.

    Example:
    >>> pool = AttentionPooling(hidden_dim=8)
    >>> pooled, weights = pool(np.ones((2, 5, 4)), return_attention_scores=True)
    >>> pooled.shape, weights.shape
    ((2, 4), (2, 5))
    """

    def __init__(self, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.supports_masking = True

    def build(self, input_shape):
        dim = input_shape[-1]
        self.projection = self.add_weight(
            name="projection", shape=(dim, self.hidden_dim), initializer="glorot_uniform"
        )
        self.projection_bias = self.add_weight(
            name="projection_bias", shape=(self.hidden_dim,), initializer="zeros"
        )
        self.context = self.add_weight(
            name="context", shape=(self.hidden_dim,), initializer="glorot_uniform"
        )
        self.built = True

    def call(self, inputs, mask=None, return_attention_scores=False):
        hidden = ops.tanh(ops.matmul(inputs, self.projection) + self.projection_bias)
        scores = ops.sum(hidden * self.context, axis=-1)  # (batch, time)
        if mask is not None:
            mask = ops.cast(mask, "bool")
            scores = ops.where(mask, scores, ops.cast(-1e9 if scores.dtype == "float32" else -3e4, scores.dtype))
        weights = ops.softmax(scores, axis=-1)
        if mask is not None:
            # A fully masked row would otherwise spread weight over padding.
            weights = weights * ops.cast(mask, weights.dtype)
            weights = weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1e-9)
        pooled = ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)
        if return_attention_scores:
            return pooled, weights
        return pooled

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, inputs, mask=None, return_attention_scores=False):
        pooled = keras.KerasTensor((inputs.shape[0], inputs.shape[-1]), dtype=self.compute_dtype)
        if return_attention_scores:
            return pooled, keras.KerasTensor(inputs.shape[:2], dtype=self.compute_dtype)
        return pooled

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim})
        return config
