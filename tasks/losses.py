"""Losses Keras does not ship: token cross-entropy with label smoothing that ignores padding."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_tasks")
class MaskedSparseCrossentropy(keras.losses.Loss):
    """Mean cross-entropy over the real target tokens, with optional label smoothing.

    `(1 - eps) * -log p(y) + eps * mean_v(-log p(v))` per token (Szegedy et al.'s smoothing
    towards the uniform distribution), averaged over the tokens whose target is not
    `pad_id`: a batch's padding neither adds loss nor dilutes the mean.

    Args:
        label_smoothing: float in [0, 1).
        pad_id: the target id that is padding.
        from_logits: whether `y_pred` holds logits.

    Example:
    ```python
    loss = MaskedSparseCrossentropy(label_smoothing=0.1)
    loss([[5, 0]], logits)  # logits (1, 2, vocabulary); the padded second position is ignored
    ```
    """

    def __init__(self, label_smoothing=0.0, pad_id=0, from_logits=True, name="masked_sparse_crossentropy", **kwargs):
        # "sum": `call` already divides by the number of real tokens.
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction="sum", **kwargs)
        self.label_smoothing = float(label_smoothing)
        self.pad_id = int(pad_id)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        y_pred = ops.cast(y_pred, "float32")
        log_probs = ops.log_softmax(y_pred, axis=-1) if self.from_logits else ops.log(ops.maximum(y_pred, 1e-7))
        nll = -ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1)[..., 0]
        if self.label_smoothing:
            nll = (1.0 - self.label_smoothing) * nll - self.label_smoothing * ops.mean(log_probs, axis=-1)
        real = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        return nll * real / ops.maximum(ops.sum(real), 1.0)

    def get_config(self):
        return {
            "name": self.name,
            "label_smoothing": self.label_smoothing,
            "pad_id": self.pad_id,
            "from_logits": self.from_logits,
        }
