"""The captioning model builders, TensorFlow-free (keras.ops only): they run under any Keras backend.

`build_encoder` turns an image into a grid of region features; `show_attend_tell` is the teacher-forced
captioner over those regions (Xu et al. 2015); `DoublyStochasticAttention` is Xu et al.'s attention penalty,
the loss of the captioner's `attention` output.
"""

import keras
from keras import ops

from keras_tasks.layers.attention_decoder_cell import AttentionDecoderCell
from keras_tasks.pipelines.errors import ConfigError
from keras_tasks.tasks.vision_models import RESNET_RE, resnet, small_cnn

# Word ids: padding is 0, as everywhere in the project (masks, decoding loops).
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
# keras.applications backbones: constructor and the scaling of 0..255 pixels it expects.
APPLICATIONS = {
    "mobilenet_v2": ("MobileNetV2", (1.0 / 127.5, -1.0)),
    "efficientnet_b0": ("EfficientNetB0", None),  # rescales inside
}


def check_encoder_name(name):
    if name != "cnn" and name not in APPLICATIONS and not RESNET_RE.match(name):
        raise ConfigError(f"model.encoder must be cnn, resnetN (e.g. resnet20), {' or '.join(APPLICATIONS)}, got {name!r}")


def build_encoder(name, image_shape, grid_size=8, filters=(32, 64, 128, 256), weights=None):
    """A `keras.Model` named `encoder`: pixels 0..255 `(height, width, 3)` to regions `(grid_h * grid_w, channels)`.

    Args:
        name: `cnn` (the project's small CNN with `filters` per stage), `resnetN` (CIFAR ResNet), or a
            `keras.applications` backbone (`mobilenet_v2`, `efficientnet_b0`); each cut before its classifier.
        image_shape: `(height, width, 3)`.
        grid_size: the last feature map is average-pooled down to at most this many regions per side.
        filters: `cnn` only.
        weights: `keras.applications` backbones only: `"imagenet"` (downloaded) or None (random).
    """
    check_encoder_name(name)
    if weights and name not in APPLICATIONS:
        raise ConfigError(f"model.encoder_weights applies to {', '.join(APPLICATIONS)}; {name} starts from random weights")
    if name == "cnn":
        classifier = small_cnn(image_shape, 1, "", filters=tuple(filters), dropout=0.0)
        image, features = classifier.input, classifier.get_layer("flatten").input
    elif RESNET_RE.match(name):
        classifier = resnet(int(RESNET_RE.match(name).group(1)), image_shape, 1, "", weight_decay=0.0)
        image, features = classifier.input, classifier.get_layer("pool").input
    else:
        constructor, scaling = APPLICATIONS[name]
        image = keras.Input(shape=tuple(image_shape), dtype="float32", name="image")
        x = keras.layers.Rescaling(*scaling, name="rescale")(image) if scaling else image
        backbone = getattr(keras.applications, constructor)(include_top=False, weights=weights,
                                                            input_shape=tuple(image_shape))
        features = backbone(x)
    height, width, channels = features.shape[1:]
    if height > grid_size or width > grid_size:
        pool = (max(1, height // grid_size), max(1, width // grid_size))
        features = keras.layers.AveragePooling2D(pool, name="region_pool")(features)
        height, width = features.shape[1:3]
    regions = keras.layers.Reshape((height * width, channels), name="regions")(features)
    return keras.Model(image, regions, name="encoder")


def encoder_grid(encoder):
    """`(grid_h, grid_w)` of an encoder from `build_encoder`."""
    return tuple(encoder.get_layer("regions").input.shape[1:3])


def show_attend_tell(vocabulary_size, encoder=None, image_shape=None, feature_shape=None, embedding_dim=256,
                     decoder_dim=512, attention_dim=256, dropout=0.3):
    """The teacher-forced captioner: `{"image" | "features", "caption_ids"}` to `{"logits", "attention"}`.

    With an `encoder`, the input `image` `(image_shape)` goes through it; without one, the input `features`
    `(feature_shape)` are its cached regions. The regions are layer-normalised (`region_norm`); the decoder's
    initial LSTM state comes from their mean (`init_h`, `init_c`); an `AttentionDecoderCell` named `decoder`
    with additive attention reads the word embeddings (`word_embedding`) of `caption_ids` (START, words,
    right-padded with 0) while attending over the regions; `logits` projects its outputs to the vocabulary.
    `attention` `(batch, steps, regions)` is where each step looked. The decoding loops reuse these layers
    by name.
    """
    # === Layers ===
    region_norm = keras.layers.LayerNormalization(name="region_norm")
    init_h = keras.layers.Dense(decoder_dim, activation="tanh", name="init_h")
    init_c = keras.layers.Dense(decoder_dim, activation="tanh", name="init_c")
    embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="word_embedding")
    decoder = AttentionDecoderCell(decoder_dim, attention="bahdanau", attention_units=attention_dim, rnn="lstm",
                                   dropout=dropout, name="decoder")
    logits_layer = keras.layers.Dense(vocabulary_size, dtype="float32", name="logits")

    # === Functional Model ===
    if encoder is None:
        image = keras.Input(shape=tuple(feature_shape), dtype="float32", name="features")
        regions = image
    else:
        image = keras.Input(shape=tuple(image_shape), dtype="float32", name="image")
        regions = encoder(image)
    caption_ids = keras.Input(shape=(None,), dtype="int32", name="caption_ids")
    regions = region_norm(regions)
    mean = ops.mean(regions, axis=1)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(embedding(caption_ids))
    outputs, attention = decoder(x, regions, initial_state=[init_h(mean), init_c(mean)])
    logits = logits_layer(outputs)
    attention = keras.layers.Activation("linear", dtype="float32", name="attention")(attention)
    inputs = {image.name: image, "caption_ids": caption_ids}
    return keras.Model(inputs, {"logits": logits, "attention": attention}, name="show_attend_tell")


@keras.saving.register_keras_serializable(package="keras_tasks")
class DoublyStochasticAttention(keras.losses.Loss):
    """Xu et al.'s doubly stochastic attention penalty: `weight * mean_i (1 - sum_t alpha_ti)^2` per example.

    Every region `i` should get, over the steps `t` of a caption, about as much attention as any other;
    summed over real words only (the target `y_true` is the caption's next-word ids, padding `pad_id`).

    Args:
        weight: float, the penalty's coefficient (lambda).
        pad_id: the target id that is padding.

    Example:
    ```python
    loss = DoublyStochasticAttention(weight=1.0)
    loss(next_word_ids, attention)  # (batch, steps) ids, (batch, steps, regions) weights
    ```
    """

    def __init__(self, weight=1.0, pad_id=PAD_ID, name="doubly_stochastic_attention", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight = float(weight)
        self.pad_id = int(pad_id)

    def call(self, y_true, y_pred):
        real = ops.cast(ops.not_equal(ops.cast(y_true, "int32"), self.pad_id), "float32")  # (batch, steps)
        totals = ops.sum(ops.cast(y_pred, "float32") * real[:, :, None], axis=1)  # (batch, regions)
        return self.weight * ops.mean(ops.square(1.0 - totals), axis=-1)

    def get_config(self):
        return {"name": self.name, "weight": self.weight, "pad_id": self.pad_id}
