import keras


@keras.saving.register_keras_serializable(package="keras_tasks")
class LockedDropout(keras.layers.Layer):
    """Variational ("locked") dropout over sequences (Gal & Ghahramani 2016; Merity et al. 2018).

    Ordinary dropout draws a new mask at every time step. Locked dropout draws
    one mask per sequence and feature and applies it at every time step, as
    AWD-LSTM does between its LSTM layers and on their inputs and outputs: a
    feature that is dropped is dropped for the whole sequence. Kept values are
    scaled by `1 / (1 - rate)`, so the layer is the identity at inference.

    Masks pass through unchanged; padded steps are dropped like any other,
    which does not matter as downstream layers ignore them.

    Args:
        rate: float in `[0, 1)`, the fraction of features to drop.
        seed: optional int, seed of the layer's random generator.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `(batch, time, features)` (further feature axes
            are allowed; the mask is shared over axis 1 only).
        training: bool, whether to drop. Defaults to `False`.

    Example:
    >>> dropout = LockedDropout(0.5, seed=1)
    >>> out = dropout(np.ones((2, 5, 4)), training=True)
    >>> bool(np.all(out[:, :1] == out))  # the same mask at every step
    True
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if len(inputs.shape) < 3:
            raise ValueError(f"LockedDropout expects (batch, time, features) inputs, got shape {inputs.shape}")
        # None takes the input's size; 1 broadcasts one mask over all time steps.
        noise_shape = (None, 1) + (None,) * (len(inputs.shape) - 2)
        return keras.random.dropout(inputs, self.rate, noise_shape=noise_shape, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config

