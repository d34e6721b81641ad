import keras
import numpy as np

from keras_tasks.layers import TiedEmbedding
from test_case import run_layer_test

IDS = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]], "int32")


def test_layer_basics_forward(tmp_path):
    run_layer_test(
        TiedEmbedding,
        {"vocabulary_size": 8, "embedding_dim": 4},
        IDS,
        expected_output_shape=(2, 5, 4),
        expected_num_trainable_weights=1,
        tmp_path=tmp_path,
    )


def test_layer_basics_reverse(tmp_path):
    run_layer_test(
        TiedEmbedding,
        {"vocabulary_size": 8, "embedding_dim": 4, "use_bias": True},
        np.random.rand(2, 5, 4).astype("float32"),
        expected_output_shape=(2, 5, 8),
        call_kwargs={"reverse": True},
        expected_num_trainable_weights=2,
        tmp_path=tmp_path,
    )


def test_lookup_and_reverse_logits_equal_numpy():
    layer = TiedEmbedding(8, 4, use_bias=True)
    vectors = keras.ops.convert_to_numpy(layer(IDS))
    matrix = keras.ops.convert_to_numpy(layer.embeddings)
    np.testing.assert_array_equal(vectors, matrix[IDS])
    layer.bias.assign(np.arange(8, dtype="float32"))
    hidden = np.random.rand(2, 5, 4).astype("float32")
    logits = keras.ops.convert_to_numpy(layer(hidden, reverse=True))
    assert logits.shape == (2, 5, 8)
    np.testing.assert_allclose(logits, hidden @ matrix.T + np.arange(8), rtol=1e-5, atol=1e-6)


def test_weights_are_shared_by_both_directions():
    embedding = TiedEmbedding(8, 4)
    inputs = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Dense(4)(embedding(inputs))
    model = keras.Model(inputs, embedding(hidden, reverse=True))
    assert len(embedding.weights) == 1
    assert sum("embeddings" in w.path for w in model.weights) == 1
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 8 * 4 + 4 * 4 + 4
    # A training step moves the one matrix through both of its uses.
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = keras.ops.convert_to_numpy(embedding.embeddings).copy()
    model.fit(IDS, IDS, epochs=1, verbose=0)
    after = keras.ops.convert_to_numpy(embedding.embeddings)
    # Rows 6 and 7 are never input ids: only the output projection can change them.
    assert not np.allclose(before[6:], after[6:])


def test_mask_zero_mask_and_reverse_mask_passthrough():
    layer = TiedEmbedding(8, 4, mask_zero=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.compute_mask(IDS)), IDS != 0)
    assert TiedEmbedding(8, 4).compute_mask(IDS) is None

    inputs = keras.Input((None,), dtype="int32")
    vectors = layer(inputs)
    logits = layer(vectors, reverse=True)
    assert vectors._keras_mask is not None and logits._keras_mask is not None
    hidden = np.random.rand(2, 5, 4).astype("float32")
    reverse_mask = layer.compute_mask(hidden, mask=IDS != 0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(reverse_mask), IDS != 0)


def test_float32_logits_under_mixed_precision():
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_float16")
        layer = TiedEmbedding(8, 4, dtype="float32")
        hidden = keras.ops.cast(np.random.rand(2, 5, 4), "float16")
        assert keras.backend.standardize_dtype(layer(hidden, reverse=True).dtype) == "float32"
        assert keras.backend.standardize_dtype(TiedEmbedding(8, 4)(hidden, reverse=True).dtype) == "float16"
    finally:
        keras.config.set_dtype_policy(previous)
