import keras
import numpy as np

from keras_tasks.layers import PretrainedEmbedding, TextCNNBlock
from test_case import run_layer_test


def test_layer_basics(tmp_path):
    run_layer_test(
        TextCNNBlock,
        {"filter_sizes": (2, 3), "num_filters": 4},
        np.random.rand(2, 5, 4).astype("float32"),
        expected_output_shape=(2, 8),
        expected_num_trainable_weights=4,
        tmp_path=tmp_path,
    )


def test_max_over_time_matches_manual_computation():
    block = TextCNNBlock(filter_sizes=(2,), num_filters=1, activation="linear")
    x = np.random.rand(1, 4, 3).astype("float32")
    out = keras.ops.convert_to_numpy(block(x))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in block.convolutions[0].weights)
    padded = np.pad(x[0], ((1, 1), (0, 0)))  # Kim: k-1 zero vectors on each side
    windows = [np.sum(padded[j : j + 2] * kernel[:, :, 0]) + bias[0] for j in range(5)]
    np.testing.assert_allclose(out[0, 0], max(windows), rtol=1e-5)


def test_output_does_not_depend_on_batch_padding():
    embedding = PretrainedEmbedding(20, 4)
    block = TextCNNBlock(filter_sizes=(3, 4, 5), num_filters=3)
    short = np.array([[5, 6, 7]])
    padded = np.array([[5, 6, 7, 0, 0, 0, 0, 0, 0]])
    a = block(embedding(short), mask=embedding.compute_mask(short))
    b = block(embedding(padded), mask=embedding.compute_mask(padded))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)


def test_sentence_shorter_than_widest_filter():
    block = TextCNNBlock(filter_sizes=(3, 4, 5), num_filters=2)
    out = keras.ops.convert_to_numpy(block(np.random.rand(2, 1, 4).astype("float32")))
    assert out.shape == (2, 6) and np.all(np.isfinite(out))
