import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_tasks")
class TiedEmbedding(keras.layers.Layer):
    """A token embedding that also maps hidden states back to vocabulary logits.

    Weight tying (Press & Wolf 2017; Inan et al. 2017): a language model's
    output projection reuses the input embedding matrix `E`, so the logits of
    a hidden state `h` are `h @ E^T` (plus an optional bias). One matrix serves
    both ends, which saves `vocabulary_size * embedding_dim` parameters and
    lowers perplexity. The model calls the same layer twice: on token ids, and
    with `reverse=True` on the last hidden states (whose size must then be
    `embedding_dim`).

    Under mixed precision the layer computes in the model's compute dtype
    (float16 logits). Logits are best computed in float32 for a stable softmax
    over a large vocabulary; that is the model's choice: build this layer with
    `dtype="float32"` (the lookup is cheap in float32, following layers cast
    their inputs back to float16 themselves, and reverse calls then cast the
    hidden states up to float32).

    Named `TiedEmbedding` rather than `ReversibleEmbedding` so that it is not
    mistaken for `keras.layers.ReversibleEmbedding` of recent Keras releases.

    Args:
        vocabulary_size: int, number of token ids.
        embedding_dim: int, vector size (and the hidden size of reverse calls).
        embeddings_initializer: initializer of the matrix. Defaults to
            `"uniform"` (uniform in [-0.05, 0.05], as `keras.layers.Embedding`).
        use_bias: bool, whether reverse calls add a learned bias per token.
            Defaults to `False`.
        mask_zero: bool, whether id 0 is padding (forward calls then return a
            mask `ids != 0`). Defaults to `False`.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: int tensor `(batch, time)` of token ids, or with
            `reverse=True` a float tensor `(batch, time, embedding_dim)`.
        reverse: bool; `False` looks the ids up, `True` returns the logits
            `(batch, time, vocabulary_size)`. A mask on the hidden states of a
            reverse call passes through to the logits.

    Example:
    >>> embedding = TiedEmbedding(vocabulary_size=10, embedding_dim=4)
    >>> vectors = embedding(np.array([[1, 2, 3]]))
    >>> embedding(vectors, reverse=True).shape
    (1, 3, 10)
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        embeddings_initializer="uniform",
        use_bias=False,
        mask_zero=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.use_bias = bool(use_bias)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = True

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocabulary_size, self.embedding_dim),
            initializer=self.embeddings_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.vocabulary_size,), initializer="zeros")
        self.built = True

    def call(self, inputs, reverse=False):
        if not reverse:
            return ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)
        logits = ops.matmul(inputs, ops.transpose(self.embeddings))  # (batch, time, vocabulary)
        if self.bias is not None:
            logits = logits + self.bias
        return logits

    def compute_mask(self, inputs, mask=None):
        # Keras does not pass `reverse` here; ids are integers, hidden states floats.
        if keras.backend.is_float_dtype(inputs.dtype):
            return mask
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)

    def compute_output_spec(self, inputs, reverse=False):
        if reverse:
            shape = tuple(inputs.shape[:-1]) + (self.vocabulary_size,)
        else:
            shape = tuple(inputs.shape) + (self.embedding_dim,)
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "use_bias": self.use_bias,
                "mask_zero": self.mask_zero,
            }
        )
        return config
