"""Sequence tagger builders: BiLSTM with a softmax or a CRF output (Lample et al. 2016, Ma & Hovy 2016).

Plain Keras on `keras.ops` layers, importable without TensorFlow: the task builds them from its
vocabularies, and a GPU machine with JAX only builds the very same graphs (`scripts/benchmark_gpu.py`).
Inputs are `token_ids` (int32 `[batch, time]`, right-padded with 0) and, when configured, `char_ids`
(`[batch, time, characters]`) and `casing_ids` (`[batch, time]`).
"""

import keras

from keras_tasks.layers.character_encoder import CharacterEncoder
from keras_tasks.layers.crf import CRF
from keras_tasks.layers.pretrained_embedding import PretrainedEmbedding

TAGGER_MODELS = ("bilstm", "bilstm_crf")


def sequence_tagger(
    name,
    vocabulary_size,
    num_tags,
    characters_size=None,
    casing_size=None,
    embedding_dim=100,
    embedding_mode="rand",
    weights=None,
    char_encoder="cnn",
    char_embedding_dim=30,
    num_filters=30,
    kernel_size=3,
    char_hidden_dim=25,
    casing_dim=8,
    hidden_dim=100,
    num_layers=1,
    dropout=0.5,
    allowed=None,
):
    """`bilstm` (per-token softmax) or `bilstm_crf` (CRF potentials, decoded by Viterbi) over token features.

    Args:
        name: `"bilstm"` or `"bilstm_crf"`.
        vocabulary_size: word ids `0..vocabulary_size-1` (0 is padding).
        num_tags: tags predicted.
        characters_size: character ids for the character encoder (`char_encoder` `cnn` or `lstm`).
        casing_size: casing ids for the word-shape embedding (used when `casing_dim` > 0).
        embedding_dim, embedding_mode, weights: the word embedding (pretrained `weights` set its width).
        char_encoder: `cnn` (Ma & Hovy), `lstm` (Lample et al.) or `none`.
        char_embedding_dim, num_filters, kernel_size, char_hidden_dim: the character encoder.
        casing_dim: word-shape embedding size; 0 leaves the feature out.
        hidden_dim, num_layers: word BiLSTM units per direction and depth.
        dropout: on the token features and on the BiLSTM's output.
        allowed: the CRF's allowed `(start, transitions, end)` (the tag scheme's), or None.
    """
    if name not in TAGGER_MODELS:
        raise ValueError(f"model.name must be one of {TAGGER_MODELS}, got {name!r}")
    if weights is not None:
        embedding_dim = weights.shape[1]

    # === Layers ===
    inputs = {"token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids")}
    if char_encoder != "none":
        inputs["char_ids"] = keras.Input(shape=(None, None), dtype="int32", name="char_ids")
    if casing_dim:
        inputs["casing_ids"] = keras.Input(shape=(None,), dtype="int32", name="casing_ids")
    embedding = PretrainedEmbedding(vocabulary_size, embedding_dim, mode=embedding_mode, weights=weights, name="embedding")

    # === Functional Model ===
    features = [embedding(inputs["token_ids"])]
    if "char_ids" in inputs:
        features.append(
            CharacterEncoder(
                characters_size,
                char_embedding_dim,
                encoder=char_encoder,
                filters=num_filters,
                kernel_size=kernel_size,
                hidden_dim=char_hidden_dim,
                dropout=dropout,
                name="characters",
            )(inputs["char_ids"])
        )
    if "casing_ids" in inputs:
        features.append(keras.layers.Embedding(casing_size, casing_dim, name="casing")(inputs["casing_ids"]))
    x = keras.layers.Concatenate(name="features")(features) if len(features) > 1 else features[0]
    x = keras.layers.Dropout(dropout, name="features_dropout")(x)
    for i in range(num_layers):
        # Defaults (tanh/sigmoid, no recurrent dropout, unroll=False) and right padding keep cuDNN eligible.
        x = keras.layers.Bidirectional(keras.layers.LSTM(hidden_dim, return_sequences=True), name=f"bilstm_{i}")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    if name == "bilstm":
        outputs = keras.layers.Dense(num_tags, activation="softmax", dtype="float32", name="tag_probabilities")(x)
    else:
        emissions = keras.layers.Dense(num_tags, dtype="float32", name="emissions")(x)
        outputs = CRF(num_tags, allowed=allowed, dtype="float32", name="crf")(emissions)
    # Keras hands the token mask (from the word embedding) to the CRF; the loss reads padding from the -1 tags.
    return keras.Model(inputs, outputs, name=name)
