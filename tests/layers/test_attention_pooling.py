import keras
import numpy as np

from keras_tasks.layers import AttentionPooling
from test_case import run_layer_test


def test_layer_basics(tmp_path):
    run_layer_test(
        AttentionPooling,
        {"hidden_dim": 3},
        np.random.rand(2, 5, 4).astype("float32"),
        expected_output_shape=(2, 4),
        expected_num_trainable_weights=3,
        tmp_path=tmp_path,
    )


def test_weights_sum_to_one_and_are_zero_at_padding():
    pool = AttentionPooling(hidden_dim=4)
    x = np.random.rand(2, 5, 3).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    pooled, weights = pool(x, mask=mask, return_attention_scores=True)
    weights = keras.ops.convert_to_numpy(weights)
    np.testing.assert_allclose(weights.sum(axis=1), [1.0, 1.0], rtol=1e-6)
    assert np.all(weights[0, 3:] == 0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(pooled), np.einsum("bt,btd->bd", weights, x), rtol=1e-5, atol=1e-6
    )


def test_padding_does_not_change_the_pooled_vector():
    pool = AttentionPooling(hidden_dim=4)
    x = np.random.rand(1, 3, 2).astype("float32")
    padded = np.concatenate([x, np.random.rand(1, 4, 2).astype("float32")], axis=1)
    mask = np.array([[1, 1, 1, 0, 0, 0, 0]], bool)
    a = keras.ops.convert_to_numpy(pool(x))
    b = keras.ops.convert_to_numpy(pool(padded, mask=mask))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_mask_propagates_from_embedding_in_a_model():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4, mask_zero=True)(inputs)
    pooled, weights = AttentionPooling(3)(x, return_attention_scores=True)
    model = keras.Model(inputs, weights)
    out = model.predict(np.array([[3, 4, 0, 0]]), verbose=0)
    np.testing.assert_allclose(out[0, 2:], 0.0)
    np.testing.assert_allclose(out.sum(), 1.0, rtol=1e-6)
