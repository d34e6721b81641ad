import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_tasks")
class RandomCropWithPadding(keras.layers.Layer):
    """Pads images with zeros and crops them back to their size at a random offset, in training only.

    The standard CIFAR augmentation (pad 4, random 32x32 crop) and, with a small
    padding, random shifts of whole pixels for MNIST. Each image of the batch gets
    its own offset. Unlike `keras.layers.RandomCrop`, the output keeps the input size
    and inference is the identity (no centre crop), so the same model serves
    unpadded images.

    Args:
        padding: int, pixels of zeros added on each side; the image moves by up to
            this many pixels in each direction. Defaults to `4`.
        seed: optional int seed of the random offsets.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: tensor `(batch, height, width, channels)` with static height and width.
        training: bool; when false (inference) the inputs are returned unchanged.

    Example:
    >>> crop = RandomCropWithPadding(padding=2, seed=1)
    >>> crop(np.ones((2, 8, 8, 3)), training=True).shape
    (2, 8, 8, 3)
    """

    def __init__(self, padding=4, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False

    def call(self, inputs, training=None):
        if not training or self.padding == 0:
            return inputs
        batch_size = ops.shape(inputs)[0]
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        p = self.padding
        padded = ops.pad(inputs, ((0, 0), (p, p), (p, p), (0, 0)))
        offsets = keras.random.randint((batch_size, 2), 0, 2 * p + 1, seed=self.seed_generator)
        rows = offsets[:, :1] + ops.arange(height)[None, :]  # (batch, height)
        cols = offsets[:, 1:] + ops.arange(width)[None, :]  # (batch, width)
        rows = ops.broadcast_to(rows[:, :, None, None], (batch_size, height, width + 2 * p, channels))
        x = ops.take_along_axis(padded, rows, axis=1)  # (batch, height, width + 2p, channels)
        cols = ops.broadcast_to(cols[:, None, :, None], (batch_size, height, width, channels))
        return ops.take_along_axis(x, cols, axis=2)  # (batch, height, width, channels)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding, "seed": self.seed})
        return config
