import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_tasks")
class TextCNNBlock(keras.layers.Layer):
    """Parallel n-gram convolutions with max-over-time pooling (Kim, 2014).

    Each filter width `k` sees the sentence padded with `k - 1` zero vectors on
    both sides, as in Kim's implementation, so every word takes part in `k`
    windows and sentences shorter than the widest filter still work. Windows
    that lie entirely in the right padding of a batch are masked out before the
    max, so the output does not depend on how long the rest of the batch is.

    Args:
        filter_sizes: tuple of ints, the n-gram widths. Defaults to `(3, 4, 5)`.
        num_filters: int, feature maps per width. Defaults to `100`.
        activation: activation of the convolutions. Defaults to `"relu"`.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `(batch, time, dim)`.
        mask: optional boolean tensor `(batch, time)`, `True` at real tokens.
            Taken from the embedding's mask when there is one.

    Example:
    >>> block = TextCNNBlock(filter_sizes=(2, 3), num_filters=4)
    >>> block(np.ones((2, 5, 8))).shape
    (2, 8)
    """

    def __init__(self, filter_sizes=(3, 4, 5), num_filters=100, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.filter_sizes = tuple(int(k) for k in filter_sizes)
        self.num_filters = int(num_filters)
        self.activation = keras.activations.get(activation)
        self.supports_masking = True
        self.convolutions = [
            keras.layers.Conv1D(
                self.num_filters,
                k,
                activation=self.activation,
                dtype=self.dtype_policy,
                name=f"conv_{k}",
            )
            for k in self.filter_sizes
        ]

    def build(self, input_shape):
        for k, conv in zip(self.filter_sizes, self.convolutions):
            conv.build((input_shape[0], None, input_shape[-1]))
        self.built = True

    def call(self, inputs, mask=None):
        batch_size, time = ops.shape(inputs)[0], ops.shape(inputs)[1]
        if mask is None:
            lengths = ops.full((batch_size,), time, dtype="int32")
        else:
            lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
            inputs = inputs * ops.cast(ops.expand_dims(mask, -1), inputs.dtype)
        pooled = []
        for k, conv in zip(self.filter_sizes, self.convolutions):
            padded = ops.pad(inputs, ((0, 0), (k - 1, k - 1), (0, 0)))
            features = conv(padded)  # (batch, time + k - 1, num_filters)
            # Output position j covers tokens j-k+1..j: it holds a real token iff j < length + k - 1.
            positions = ops.arange(ops.shape(features)[1], dtype="int32")
            valid = ops.expand_dims(positions, 0) < ops.expand_dims(lengths + (k - 1), 1)
            very_negative = ops.cast(-1e4, features.dtype)
            features = ops.where(ops.expand_dims(valid, -1), features, very_negative)
            pooled.append(ops.max(features, axis=1))
        return ops.concatenate(pooled, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_filters * len(self.filter_sizes))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filter_sizes": list(self.filter_sizes),
                "num_filters": self.num_filters,
                "activation": keras.activations.serialize(self.activation),
            }
        )
        return config
