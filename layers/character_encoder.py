import keras
from keras import ops

CHARACTER_ENCODERS = ("cnn", "lstm")


@keras.saving.register_keras_serializable(package="keras_tasks")
class CharacterEncoder(keras.layers.Layer):
    """One vector per word from its characters: a char-CNN (Ma & Hovy 2016) or a char-BiLSTM (Lample et al. 2016).

    - `cnn`: character embeddings, dropout, one convolution of width `kernel_size` with `filters` maps, max over
      the word's characters (Ma & Hovy: 30-dim embeddings, 30 filters of width 3, dropout 0.5 before the CNN).
    - `lstm`: character embeddings through a BiLSTM; the final forward and backward states, concatenated
      (Lample et al.: 25-dim embeddings, 25 units per direction).

    Character id 0 is padding: padded characters never reach the max or the LSTM's final state, and a padded
    word (all zeros) gives a zero vector.

    Args:
        vocabulary_size: int, number of character ids (0 is padding).
        embedding_dim: int, character embedding size.
        encoder: `"cnn"` or `"lstm"`.
        filters: int, CNN feature maps (the output size with `cnn`).
        kernel_size: int, CNN width in characters.
        hidden_dim: int, LSTM units per direction (the output is `2 * hidden_dim` with `lstm`).
        dropout: float, dropout on the character embeddings.
        **kwargs: base layer keyword arguments.

    Call arguments:
        inputs: int tensor `(batch, words, characters)` of character ids.

    Example:
    >>> encoder = CharacterEncoder(50, 8, encoder="cnn", filters=6)
    >>> encoder(np.ones((2, 5, 7), "int32")).shape
    (2, 5, 6)
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=30,
        encoder="cnn",
        filters=30,
        kernel_size=3,
        hidden_dim=25,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if encoder not in CHARACTER_ENCODERS:
            raise ValueError(f"encoder must be one of {CHARACTER_ENCODERS}, got {encoder!r}")
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.encoder = encoder
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.hidden_dim = int(hidden_dim)
        self.dropout = float(dropout)
        self.output_dim = self.filters if encoder == "cnn" else 2 * self.hidden_dim

        # === Layers ===
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size,
            self.embedding_dim,
            # Ma & Hovy's U[-sqrt(3/dim), +sqrt(3/dim)].
            embeddings_initializer=keras.initializers.RandomUniform(-((3 / self.embedding_dim) ** 0.5), (3 / self.embedding_dim) ** 0.5),
            dtype=self.dtype_policy,
            name="character_embedding",
        )
        self.embedding_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="character_dropout")
        if encoder == "cnn":
            self.convolution = keras.layers.Conv1D(
                self.filters, self.kernel_size, padding="same", activation="tanh", dtype=self.dtype_policy, name="character_cnn"
            )
        else:
            # Defaults (tanh/sigmoid, no recurrent dropout) keep the cuDNN kernel eligible.
            self.lstm = keras.layers.Bidirectional(
                keras.layers.LSTM(self.hidden_dim), dtype=self.dtype_policy, name="character_bilstm"
            )

    def build(self, input_shape):
        flat = (None, input_shape[-1])
        self.embedding.build(flat)
        embedded = flat + (self.embedding_dim,)
        if self.encoder == "cnn":
            self.convolution.build(embedded)
        else:
            self.lstm.build(embedded)
        self.built = True

    def call(self, inputs, training=None):
        inputs = ops.cast(inputs, "int32")
        shape = ops.shape(inputs)
        characters = ops.reshape(inputs, (-1, shape[-1]))  # (batch * words, characters)
        mask = ops.not_equal(characters, 0)
        x = self.embedding_dropout(self.embedding(characters), training=training)
        if self.encoder == "cnn":
            x = self.convolution(x * ops.cast(mask, x.dtype)[:, :, None])
            # Max over the word's own characters; a padded word gives zeros.
            x = ops.where(mask[:, :, None], x, ops.cast(-1e4, x.dtype))
            x = ops.max(x, axis=1)
            x = ops.where(ops.any(mask, axis=1)[:, None], x, ops.zeros_like(x))
        else:
            # A padded word keeps one (padding) character, so the LSTM never sees an empty sequence.
            first = ops.concatenate([ops.ones_like(mask[:, :1]), mask[:, 1:]], axis=1)
            x = self.lstm(x, mask=first, training=training)
            x = x * ops.cast(ops.any(mask, axis=1), x.dtype)[:, None]
        return ops.reshape(x, (shape[0], shape[1], self.output_dim))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2]) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "encoder": self.encoder,
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "hidden_dim": self.hidden_dim,
                "dropout": self.dropout,
            }
        )
        return config
