"""LSTM language model builders (Zaremba et al. 2014): the stateful training graph and the stateless inference graph.

Plain Keras on `keras.ops` layers, importable without TensorFlow: the task builds them from its
vocabulary, and a GPU machine with JAX only builds the very same graphs (`scripts/benchmark_gpu.py`).
Both graphs name their layers alike (`embedding`, `lstm_i`, `projection`, `logits`), so trained
weights copy from one to the other by layer name.
"""

import keras
from keras import ops

from keras_tasks.layers.locked_dropout import LockedDropout
from keras_tasks.layers.tied_embedding import TiedEmbedding


def lstm_lm_layers(
    vocabulary_size, hidden_dim=200, embedding_dim=None, num_layers=2, tie_weights=False, init_scale=0.1, seed=0,
    stateful=False,
):
    """The layers of the LM: `{"embedding", "lstms", "projection", "output"}` (projection/output may be None).

    Args:
        vocabulary_size: ids `0..vocabulary_size-1` (0 is padding).
        hidden_dim: LSTM units per layer.
        embedding_dim: None means `hidden_dim`.
        num_layers: stacked LSTMs.
        tie_weights: the output layer is the transposed embedding (Press & Wolf 2017), with a projection
            when `hidden_dim != embedding_dim`.
        init_scale: weights uniform in [-s, s] (Zaremba); 0 keeps Keras' default initializers.
        seed: seeds the initializers (one seed per weight).
        stateful: LSTMs carry their state from batch to batch (training); otherwise they return their states.
    """
    embedding_dim = embedding_dim or hidden_dim
    seeds = iter(range(1000 * seed, 1000 * seed + 1000))

    def init(default):
        # One initializer per weight: a Keras initializer called twice gives the same values for the same shape
        # (an LSTM's kernel would equal its recurrent kernel, and one layer's weights the next one's).
        if not init_scale:
            return default
        return keras.initializers.RandomUniform(-init_scale, init_scale, seed=next(seeds))

    layers = {
        # float32: the tied output computes logits in float32 under mixed precision.
        "embedding": TiedEmbedding(
            vocabulary_size, embedding_dim, embeddings_initializer=init("uniform"), name="embedding", dtype="float32",
        ),
        "lstms": [
            # Defaults (tanh/sigmoid, no recurrent dropout, unroll=False) keep the cuDNN kernel eligible.
            keras.layers.LSTM(
                hidden_dim, return_sequences=True, return_state=not stateful, stateful=stateful,
                kernel_initializer=init("glorot_uniform"), recurrent_initializer=init("orthogonal"), name=f"lstm_{i}",
            )
            for i in range(num_layers)
        ],
        "projection": None,
        "output": None,
    }
    if tie_weights:
        if hidden_dim != embedding_dim:
            layers["projection"] = keras.layers.Dense(embedding_dim, name="projection")
    else:
        layers["output"] = keras.layers.Dense(
            vocabulary_size, kernel_initializer=init("glorot_uniform"), dtype="float32", name="logits"
        )
    return layers


def lstm_lm_logits(layers, x):
    """Logits over the vocabulary from the last LSTM's outputs."""
    if layers["projection"] is not None:
        x = layers["projection"](x)
    if layers["output"] is None:
        return layers["embedding"](x, reverse=True)
    return layers["output"](x)


def lstm_lm(vocabulary_size, batch_size, dropout=0.0, **options):
    """The training graph: stateful LSTMs over `batch_size` fixed streams, logits for every position.

    `options` go to `lstm_lm_layers`; `dropout` is locked (one mask per sequence) on the embeddings,
    between the layers and before the output.
    """
    layers = lstm_lm_layers(vocabulary_size, stateful=True, **options)

    # === Functional Model ===
    token_ids = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="token_ids")
    x = LockedDropout(dropout, name="embedding_dropout")(layers["embedding"](token_ids))
    for i, lstm in enumerate(layers["lstms"]):
        x = LockedDropout(dropout, name=f"dropout_{i}")(lstm(x))
    return keras.Model(token_ids, lstm_lm_logits(layers, x), name="lstm_lm")


def lstm_lm_inference(vocabulary_size, **options):
    """The stateless graph: `token_ids` (right-padded with 0) to logits and each LSTM's final `h`, `c`."""
    layers = lstm_lm_layers(vocabulary_size, stateful=False, **options)

    # === Functional Model ===
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    mask = ops.not_equal(token_ids, 0)
    x = layers["embedding"](token_ids)
    states = []
    for lstm in layers["lstms"]:
        x, h, c = lstm(x, mask=mask)
        states += [h, c]
    return keras.Model(token_ids, [lstm_lm_logits(layers, x), *states], name="lstm_lm_inference")
