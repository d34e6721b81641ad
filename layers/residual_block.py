import keras
from keras import ops

SHORTCUTS = ("projection", "zero_pad")


@keras.saving.register_keras_serializable(package="keras_tasks")
class ResidualBlock(keras.layers.Layer):
    """The basic residual block of ResNet v1 (He et al., 2016).

    Two 3x3 convolutions, each followed by batch normalisation, the first by a ReLU;
    the input is added back and a final ReLU applied: `relu(x + bn(conv(relu(bn(conv(x))))))`.
    When the block downsamples (`strides > 1`) or changes the number of channels, the
    shortcut is either a strided 1x1 convolution with batch normalisation
    (`"projection"`, the paper's option B) or the strided input with zero channels
    appended (`"zero_pad"`, option A, parameter-free, used for the CIFAR ResNets).

    Args:
        filters: int, output channels.
        strides: int, stride of the first convolution and of the shortcut. Defaults to `1`.
        shortcut: `"projection"` or `"zero_pad"`, the shortcut when shapes change.
            Defaults to `"projection"`.
        kernel_size: int, size of both convolutions. Defaults to `3`.
        kernel_regularizer: optional regularizer of the convolution kernels
            (He et al. use L2 weight decay 1e-4).
        batch_norm_momentum: float, momentum of the moving statistics. Defaults to `0.9`.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `(batch, height, width, channels)`.
        training: bool, whether batch normalisation uses batch statistics.

    Example:
    >>> block = ResidualBlock(filters=8, strides=2, shortcut="zero_pad")
    >>> block(np.ones((2, 6, 6, 4))).shape
    (2, 3, 3, 8)
    """

    def __init__(
        self,
        filters,
        strides=1,
        shortcut="projection",
        kernel_size=3,
        kernel_regularizer=None,
        batch_norm_momentum=0.9,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        self.filters = int(filters)
        self.strides = int(strides)
        self.shortcut = shortcut
        self.kernel_size = int(kernel_size)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.batch_norm_momentum = float(batch_norm_momentum)

        # === Layers ===
        def conv(name, kernel_size, strides):
            return keras.layers.Conv2D(
                self.filters,
                kernel_size,
                strides=strides,
                padding="same",
                use_bias=False,
                kernel_initializer="he_normal",
                kernel_regularizer=self.kernel_regularizer,
                dtype=self.dtype_policy,
                name=name,
            )

        def batch_norm(name):
            return keras.layers.BatchNormalization(momentum=self.batch_norm_momentum, dtype=self.dtype_policy, name=name)

        self.conv_1 = conv("conv_1", self.kernel_size, self.strides)
        self.norm_1 = batch_norm("norm_1")
        self.conv_2 = conv("conv_2", self.kernel_size, 1)
        self.norm_2 = batch_norm("norm_2")
        self.projection = conv("projection", 1, self.strides) if shortcut == "projection" else None
        self.projection_norm = batch_norm("projection_norm") if shortcut == "projection" else None

    def needs_reshaped_shortcut(self, input_shape):
        return self.strides != 1 or input_shape[-1] != self.filters

    def build(self, input_shape):
        if self.shortcut == "zero_pad" and input_shape[-1] > self.filters:
            raise ValueError(f"zero_pad shortcut cannot reduce {input_shape[-1]} channels to {self.filters}")
        self.conv_1.build(input_shape)
        output_shape = self.conv_1.compute_output_shape(input_shape)
        self.norm_1.build(output_shape)
        self.conv_2.build(output_shape)
        self.norm_2.build(output_shape)
        self.use_projection = self.projection is not None and self.needs_reshaped_shortcut(input_shape)
        if self.use_projection:
            self.projection.build(input_shape)
            self.projection_norm.build(output_shape)
        self.built = True

    def call(self, inputs, training=None):
        x = ops.relu(self.norm_1(self.conv_1(inputs), training=training))
        x = self.norm_2(self.conv_2(x), training=training)
        shortcut = inputs
        if self.use_projection:
            shortcut = self.projection_norm(self.projection(inputs), training=training)
        elif self.needs_reshaped_shortcut(inputs.shape):
            shortcut = inputs[:, :: self.strides, :: self.strides, :]
            extra_channels = self.filters - inputs.shape[-1]
            shortcut = ops.pad(shortcut, ((0, 0), (0, 0), (0, 0), (0, extra_channels)))
        return ops.relu(x + ops.cast(shortcut, x.dtype))

    def compute_output_shape(self, input_shape):
        return self.conv_1.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "shortcut": self.shortcut,
                "kernel_size": self.kernel_size,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "batch_norm_momentum": self.batch_norm_momentum,
            }
        )
        return config
