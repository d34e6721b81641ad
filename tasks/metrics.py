"""Metrics computed over a whole split that Keras does not ship (perplexity and its per-token cross-entropy)."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_tasks")
class Perplexity(keras.metrics.Metric):
    """Perplexity of next-token predictions over everything seen: `exp(total NLL / total tokens)`.

    Sums are kept across batches, so the result is the split's perplexity, not a
    mean of per-batch perplexities (which over-weights short batches and is biased
    upwards by Jensen's inequality). Targets equal to `pad_id` are not counted.

    Args:
        unit: what `result()` reports: `"perplexity"`, `"nats"` (mean NLL per token, natural
            log) or `"bits"` (mean NLL per token in bits).
        pad_id: target id that is padding (not scored).
        from_logits: whether `y_pred` holds logits (else probabilities).

    Example:
    ```python
    metric = Perplexity()
    metric.update_state([[1, 2]], keras.ops.log([[[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]]]))
    metric.result()  # exp(-(log 0.5 + log 0.75) / 2) = 1.633
    ```
    """

    def __init__(self, unit="perplexity", pad_id=0, from_logits=True, name=None, **kwargs):
        if unit not in ("perplexity", "nats", "bits"):
            raise ValueError(f"unit must be perplexity, nats or bits, got {unit!r}")
        super().__init__(name=name or unit, **kwargs)
        self.unit = unit
        self.pad_id = pad_id
        self.from_logits = from_logits
        self.total_nll = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="total_nll")
        self.total_tokens = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="total_tokens")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        nll = keras.losses.sparse_categorical_crossentropy(
            y_true, ops.cast(y_pred, "float32"), from_logits=self.from_logits
        )
        weight = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        if sample_weight is not None:
            weight = weight * ops.cast(sample_weight, "float32")
        self.total_nll.assign_add(ops.cast(ops.sum(nll * weight), "float64"))
        self.total_tokens.assign_add(ops.cast(ops.sum(weight), "float64"))

    def result(self):
        nats = self.total_nll / ops.maximum(self.total_tokens, 1.0)
        if self.unit == "nats":
            return ops.cast(nats, "float32")
        if self.unit == "bits":
            return ops.cast(nats / math.log(2.0), "float32")
        return ops.cast(ops.exp(nats), "float32")

    def reset_state(self):
        self.total_nll.assign(0.0)
        self.total_tokens.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "unit": self.unit, "pad_id": self.pad_id, "from_logits": self.from_logits}
