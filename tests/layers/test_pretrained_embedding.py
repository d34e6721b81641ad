import keras
import numpy as np
import pytest

from keras_tasks.layers import PretrainedEmbedding
from test_case import run_layer_test

IDS = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]], "int32")


@pytest.mark.parametrize("mode", ["rand", "non-static"])
def test_layer_basics(mode, tmp_path):
    weights = None if mode == "rand" else np.random.rand(8, 4).astype("float32")
    run_layer_test(
        PretrainedEmbedding,
        {"vocabulary_size": 8, "embedding_dim": 4, "mode": mode, "weights": weights},
        IDS,
        expected_output_shape=(2, 5, 4),
        expected_num_trainable_weights=1,
        run_mixed_precision=True,
        tmp_path=tmp_path,
    )


def test_pretrained_values_padding_and_mask():
    weights = np.arange(32, dtype="float32").reshape(8, 4)
    layer = PretrainedEmbedding(8, 4, mode="non-static", weights=weights)
    out = keras.ops.convert_to_numpy(layer(IDS))
    np.testing.assert_allclose(out[0, 0], weights[1])
    np.testing.assert_allclose(out[0, 3], 0.0)  # padding is a zero vector
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.compute_mask(IDS)), IDS != 0)


def test_static_is_frozen_and_multichannel_has_two_channels():
    weights = np.random.rand(8, 4).astype("float32")
    static = PretrainedEmbedding(8, 4, mode="static", weights=weights)
    static.build()
    assert len(static.trainable_weights) == 0 and len(static.non_trainable_weights) == 1
    multi = PretrainedEmbedding(8, 4, mode="multichannel", weights=weights)
    out = keras.ops.convert_to_numpy(multi(IDS))
    assert len(multi.trainable_weights) == 1 and len(multi.non_trainable_weights) == 1
    assert out.shape == (2, 5, 4)
    # Kim: one filter over both channels == one filter over their sum.
    np.testing.assert_allclose(out[0, 0], 2 * weights[1], rtol=1e-6)


def test_wrong_shape_of_pretrained_vectors_is_refused():
    with pytest.raises(ValueError, match="expected"):
        PretrainedEmbedding(8, 4, mode="static", weights=np.zeros((8, 5)))
    with pytest.raises(ValueError, match="mode"):
        PretrainedEmbedding(8, 4, mode="frozen")
