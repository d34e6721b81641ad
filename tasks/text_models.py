"""Text classifier builders: TextCNN (Kim 2014), BiLSTM + attention pooling, fastText (Joulin et al. 2017).

Plain Keras on `keras.ops` layers, importable without TensorFlow: the task builds them from its
vocabulary, and a GPU machine with JAX only builds the very same graphs (`scripts/benchmark_gpu.py`).
The one input is `token_ids` (int32 `[batch, time]`, right-padded with 0); the output is class
probabilities, float32 also under mixed precision.
"""

import keras

from keras_tasks.layers.attention_pooling import AttentionPooling
from keras_tasks.layers.bigram_bag import BigramBag
from keras_tasks.layers.pretrained_embedding import PretrainedEmbedding
from keras_tasks.layers.text_cnn_block import TextCNNBlock

TEXT_MODELS = ("textcnn", "bilstm_attention", "fasttext")


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
    bigram_keys=None,
):
    """`textcnn`, `bilstm_attention` or `fasttext` over `token_ids`.

    Args:
        name: `"textcnn"`, `"bilstm_attention"` or `"fasttext"` (the mean of word and known-bigram
            embeddings, then the softmax layer: a linear model of the bag of words and bigrams).
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
        bigram_keys: fasttext only: sorted keys `first_id * vocabulary_size + second_id` of the bigrams
            that get a vector (`layers.bigram_bag.count_bigram_keys`).
    """
    if name not in TEXT_MODELS:
        raise ValueError(f"model.name must be one of {TEXT_MODELS}, got {name!r}")
    if weights is not None:
        embedding_dim = weights.shape[1]
    if name == "fasttext":
        if weights is not None or embedding_mode != "rand":
            raise ValueError("fasttext learns its own word and bigram vectors: use embedding_mode='rand'")
        if bigram_keys is None:
            raise ValueError("fasttext needs bigram_keys (layers.bigram_bag.count_bigram_keys over the training ids)")

    # === Layers ===
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    if name == "fasttext":
        embedding = BigramBag(vocabulary_size, embedding_dim, len(bigram_keys), bigram_keys, name="bigram_bag")
    else:
        embedding = PretrainedEmbedding(
            vocabulary_size, embedding_dim, mode=embedding_mode, weights=weights, name="embedding"
        )
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
    elif name == "bilstm_attention":
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
        for i in range(num_layers):
            # Defaults (tanh/sigmoid, no recurrent dropout, unroll=False) keep the cuDNN kernel eligible.
            x = keras.layers.Bidirectional(keras.layers.LSTM(hidden_dim, return_sequences=True), name=f"bilstm_{i}")(x)
        x, _ = AttentionPooling(attention_dim, name="attention")(x, return_attention_scores=True)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(token_ids, output_layer(x), name=name)
