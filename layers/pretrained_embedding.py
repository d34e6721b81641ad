import keras
from keras import ops

EMBEDDING_MODES = ("rand", "static", "non-static", "multichannel")


@keras.saving.register_keras_serializable(package="keras_tasks")
class PretrainedEmbedding(keras.layers.Layer):
    """Word embedding with Kim (2014)'s four modes.

    - `rand`: randomly initialised, trained.
    - `static`: initialised from pretrained vectors, frozen.
    - `non-static`: initialised from pretrained vectors, fine-tuned.
    - `multichannel`: two copies of the pretrained vectors, one frozen and one
      fine-tuned. Kim applies every filter to both channels and adds the
      results; convolution is linear, so that equals one convolution of the
      sum of the channels, which is what this layer returns. Downstream layers
      therefore see `(batch, time, dim)` in every mode.

    Token id 0 is padding: it produces a mask and its vector is zero.

    Args:
        vocabulary_size: int, number of token ids.
        embedding_dim: int, vector size.
        mode: one of `"rand"`, `"static"`, `"non-static"`, `"multichannel"`.
        weights: optional array `(vocabulary_size, embedding_dim)` of initial
            vectors (the task requires them for every mode but `rand`). They
            are not part of the config: a saved model carries the trained
            values as weights, so a reloaded layer needs none.
        mask_zero: bool, whether id 0 is padding. Defaults to `True`.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: int tensor `(batch, time)` of token ids.

    Example:
    >>> layer = PretrainedEmbedding(10, 4, mode="multichannel", weights=np.ones((10, 4)))
    >>> layer(np.array([[1, 2, 0]])).shape
    (1, 3, 4)
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        mode="rand",
        weights=None,
        mask_zero=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in EMBEDDING_MODES:
            raise ValueError(f"mode must be one of {EMBEDDING_MODES}, got {mode!r}")
        if weights is not None and tuple(weights.shape) != (vocabulary_size, embedding_dim):
            raise ValueError(
                f"pretrained vectors have shape {tuple(weights.shape)}, expected "
                f"(vocabulary_size, embedding_dim) = ({vocabulary_size}, {embedding_dim})"
            )
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.mode = mode
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self._initial_weights = weights

    def build(self, input_shape=None):
        shape = (self.vocabulary_size, self.embedding_dim)
        # Kim's initialisation for words without a pretrained vector.
        initializer = keras.initializers.RandomUniform(-0.25, 0.25)
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=shape,
            initializer=initializer,
            trainable=self.mode != "static",
        )
        if self.mode == "multichannel":
            self.static_embeddings = self.add_weight(
                name="static_embeddings", shape=shape, initializer=initializer, trainable=False
            )
        if self._initial_weights is not None:
            self.embeddings.assign(self._initial_weights)
            if self.mode == "multichannel":
                self.static_embeddings.assign(self._initial_weights)
        self.built = True

    def call(self, inputs):
        inputs = ops.cast(inputs, "int32")
        outputs = ops.take(self.embeddings, inputs, axis=0)
        if self.mode == "multichannel":
            outputs = outputs + ops.take(self.static_embeddings, inputs, axis=0)
        if self.mask_zero:
            outputs = outputs * ops.cast(ops.expand_dims(inputs != 0, -1), outputs.dtype)
        return ops.cast(outputs, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.embedding_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "mode": self.mode,
                "mask_zero": self.mask_zero,
            }
        )
        return config
