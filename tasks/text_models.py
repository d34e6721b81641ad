"""Text classifier builders: TextCNN (Kim 2014) and BiLSTM + attention pooling.

Plain Keras on `keras.ops` layers, importable without TensorFlow: the task builds them from its
vocabulary, and a GPU machine with JAX only builds the very same graphs (`scripts/benchmark_gpu.py`).
The one input is `token_ids` (int32 `[batch, time]`, right-padded with 0); the output is class
probabilities, float32 also under mixed precision.
"""

import keras

from keras_tasks.layers.attention_pooling import AttentionPooling
from keras_tasks.layers.pretrained_embedding import PretrainedEmbedding
from keras_tasks.layers.text_cnn_block import TextCNNBlock

TEXT_MODELS = ("textcnn", "bilstm_attention")


def text_classifier(
    name,
    vocabulary_size,
    num_classes,
    embedding_dim=300,
    embedding_mode="rand",
    weights=None,
    filter_sizes=(3, 4, 5),
    num_filters=100,
    hidden_dim=150,
    num_layers=1,
    attention_dim=100,
    dropout=0.5,
    max_norm=3.0,
):
    """`textcnn` or `bilstm_attention` over `token_ids`.

    Args:
        name: `"textcnn"` or `"bilstm_attention"`.
        vocabulary_size: ids `0..vocabulary_size-1` (0 is padding).
        num_classes: size of the softmax.
        embedding_dim: ignored when `weights` is given (its width is used).
        embedding_mode: `rand`, `static`, `non-static` or `multichannel` (Kim 2014).
        weights: pretrained `[vocabulary_size, dim]` vectors, or None.
        filter_sizes, num_filters: TextCNN n-gram widths and feature maps per width.
        hidden_dim, num_layers, attention_dim: the BiLSTM's units per direction, its depth,
            and the attention scoring layer's size.
        dropout: before the output (and on the embeddings of the BiLSTM).
        max_norm: l2 max-norm of the output layer's weight vectors, or None.
    """
    if name not in TEXT_MODELS:
        raise ValueError(f"model.name must be one of {TEXT_MODELS}, got {name!r}")
    if weights is not None:
        embedding_dim = weights.shape[1]

    # === Layers ===
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    embedding = PretrainedEmbedding(vocabulary_size, embedding_dim, mode=embedding_mode, weights=weights, name="embedding")
    output_layer = keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_constraint=keras.constraints.MaxNorm(max_norm, axis=0) if max_norm else None,
        dtype="float32",
        name="probabilities",
    )

    # === Functional Model ===
    x = embedding(token_ids)
    if name == "textcnn":
        x = TextCNNBlock(filter_sizes, num_filters, name="text_cnn")(x)
    else:
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
        for i in range(num_layers):
            # Defaults (tanh/sigmoid, no recurrent dropout, unroll=False) keep the cuDNN kernel eligible.
            x = keras.layers.Bidirectional(keras.layers.LSTM(hidden_dim, return_sequences=True), name=f"bilstm_{i}")(x)
        x, _ = AttentionPooling(attention_dim, name="attention")(x, return_attention_scores=True)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(token_ids, output_layer(x), name=name)
