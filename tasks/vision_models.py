"""Image classification model builders: LeNet-5, a small CNN for MNIST, and CIFAR ResNet v1.

Every model takes one input named `image`: pixel values 0..255 (uint8 or float),
`(height, width, channels)`; it scales them itself, applies its training-only
augmentation, and outputs class probabilities (float32 also under mixed precision).
"""

import re

import keras

from keras_tasks.layers.random_crop_with_padding import RandomCropWithPadding
from keras_tasks.layers.residual_block import ResidualBlock

AUGMENTATIONS = ("shift", "flip", "rotate", "zoom")
RESNET_RE = re.compile(r"^resnet(\d+)$")


def augmentation_layers(spec, seed=None):
    """Training-only augmentation layers from a spec such as `"shift:4,flip"`.

    Items, comma-separated: `shift:P` (zero-pad P pixels and crop back at a random
    offset), `flip` (random horizontal flip), `rotate:D` (up to D degrees),
    `zoom:F` (up to a fraction F in or out); `none` or an empty string for none.
    """
    layers = []
    for item in filter(None, (s.strip() for s in (spec or "").split(","))):
        name, _, value = item.partition(":")
        if name == "none":
            continue
        if name not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {item!r}: expected items of {AUGMENTATIONS}, e.g. 'shift:4,flip'")
        if name == "shift":
            layers.append(RandomCropWithPadding(int(value or 4), seed=seed, name="random_shift"))
        elif name == "flip":
            layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="random_flip"))
        elif name == "rotate":
            factor = float(value or 10) / 360.0
            layers.append(keras.layers.RandomRotation(factor, fill_mode="constant", seed=seed, name="random_rotation"))
        else:
            factor = float(value or 0.1)
            layers.append(keras.layers.RandomZoom(factor, factor, fill_mode="constant", seed=seed, name="random_zoom"))
    return layers


def image_stem(image_shape, augmentation):
    """The named `image` input, scaled to [0, 1], then augmented (training only)."""
    image = keras.Input(shape=tuple(image_shape), dtype="float32", name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(image)
    for layer in augmentation_layers(augmentation):
        x = layer(x)
    return image, x


def classifier_head(x, num_classes):
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)


def lenet5(image_shape=(28, 28, 1), num_classes=10, augmentation="", activation="relu", pooling="max", dropout=0.0):
    """LeNet-5 (LeCun et al., 1998): conv5(6)-pool-conv5(16)-pool-fc120-fc84-fc(num_classes).

    Images smaller than 32x32 are zero-padded to 32x32 as in the paper (MNIST's 28x28
    digits sit in the middle). C3 is fully connected to S2 (the paper used a sparse
    connection table) and the output is a softmax instead of RBF units, so 28x28x1
    inputs give 61,706 parameters. ReLU and max pooling by default; `activation="tanh"`
    and `pooling="average"` are closer to the original.
    """
    image, x = image_stem(image_shape, augmentation)
    height, width = image_shape[0], image_shape[1]
    if height < 32 or width < 32:
        pad_h, pad_w = max(0, 32 - height), max(0, 32 - width)
        x = keras.layers.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)),
                                       name="pad_to_32")(x)
    pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    x = keras.layers.Conv2D(6, 5, activation=activation, name="c1")(x)
    x = pool(2, name="s2")(x)
    x = keras.layers.Conv2D(16, 5, activation=activation, name="c3")(x)
    x = pool(2, name="s4")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(120, activation=activation, name="c5")(x)
    x = keras.layers.Dense(84, activation=activation, name="f6")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(image, classifier_head(x, num_classes), name="lenet5")


def small_cnn(image_shape=(28, 28, 1), num_classes=10, augmentation="", filters=(32, 64, 128), dropout=0.4):
    """A small all-convolutional network with batch normalisation, for MNIST-sized images.

    Per stage but the last, a 3x3 conv-BN-ReLU and a strided 3x3 conv-BN-ReLU that
    halves the resolution (cheaper on a CPU than two full-resolution convolutions and
    pooling); the last stage is one conv-BN-ReLU, then the features are flattened
    (not averaged: where a stroke is tells a 4 from a 9), dropout and the softmax layer.
    """
    image, x = image_stem(image_shape, augmentation)

    def conv_bn_relu(x, filters, strides, name):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_norm")(x)
        return keras.layers.ReLU(name=f"{name}_relu")(x)

    for stage, stage_filters in enumerate(filters[:-1], start=1):
        x = conv_bn_relu(x, stage_filters, 1, f"stage{stage}_a")
        x = conv_bn_relu(x, stage_filters, 2, f"stage{stage}_b")
    x = conv_bn_relu(x, filters[-1], 1, f"stage{len(filters)}")
    x = keras.layers.Flatten(name="flatten")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(image, classifier_head(x, num_classes), name="cnn")


def resnet(depth=20, image_shape=(32, 32, 3), num_classes=10, augmentation="", shortcut="zero_pad",
           weight_decay=1e-4, base_filters=16):
    """ResNet v1 for CIFAR (He et al., 2016, section 4.2): depth 6n+2.

    A 3x3 convolution with `base_filters`, three stages of n basic residual blocks with
    `base_filters` x (1, 2, 4) filters (the first block of stages 2 and 3 halves the
    resolution), global average pooling and the softmax layer. `depth` 20, 32, 44, 56,
    110 give the paper's networks (ResNet-20: 0.27M parameters with the paper's
    parameter-free `"zero_pad"` shortcuts).
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110, ...), got {depth}")
    blocks_per_stage = (depth - 2) // 6
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    image, x = image_stem(image_shape, augmentation)
    x = keras.layers.Conv2D(base_filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                            kernel_regularizer=regularizer, name="stem_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="stem_norm")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage in range(3):
        for block in range(blocks_per_stage):
            x = ResidualBlock(
                base_filters * 2**stage,
                strides=2 if stage > 0 and block == 0 else 1,
                shortcut=shortcut,
                kernel_regularizer=regularizer,
                name=f"stage{stage + 1}_block{block + 1}",
            )(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(image, classifier_head(x, num_classes), name=f"resnet{depth}")


def build_image_model(name, image_shape, num_classes, augmentation="", **options):
    """Builds `lenet5`, `cnn` or `resnetN` (N = 6n+2) by name; `options` go to the builder."""
    if name == "lenet5":
        return lenet5(image_shape, num_classes, augmentation, **options)
    if name == "cnn":
        return small_cnn(image_shape, num_classes, augmentation, **options)
    match = RESNET_RE.match(name)
    if match:
        return resnet(int(match.group(1)), image_shape, num_classes, augmentation, **options)
    raise ValueError(f"unknown image model {name!r}: expected lenet5, cnn or resnetN (resnet20, resnet32, resnet56)")
