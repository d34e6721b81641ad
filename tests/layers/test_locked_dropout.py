import keras
import numpy as np
import pytest

from keras_tasks.layers import LockedDropout
from test_case import run_layer_test


def test_layer_basics(tmp_path):
    run_layer_test(
        LockedDropout,
        {"rate": 0.5, "seed": 1},
        np.random.rand(2, 5, 4).astype("float32"),
        expected_output_shape=(2, 5, 4),
        expected_num_trainable_weights=0,
        tmp_path=tmp_path,
    )


def test_one_mask_per_sequence_shared_over_time():
    x = np.random.rand(3, 7, 16).astype("float32") + 0.5  # no zeros of its own
    out = keras.ops.convert_to_numpy(LockedDropout(0.5, seed=3)(x, training=True))
    dropped = out == 0
    assert np.all(dropped == dropped[:, :1]), "the zero pattern differs between time steps"
    assert 0 < dropped[:, 0].mean() < 1
    # Different sequences of a batch get different masks.
    assert not np.all(dropped[0, 0] == dropped[1, 0]) or not np.all(dropped[0, 0] == dropped[2, 0])


def test_kept_values_are_scaled_and_inference_is_identity():
    x = np.random.rand(2, 5, 8).astype("float32") + 0.5
    layer = LockedDropout(0.25, seed=0)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)


def test_mask_passes_through_and_model_is_deterministic_at_inference():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4, mask_zero=True)(inputs)
    x = LockedDropout(0.5)(x)
    outputs = keras.layers.LSTM(3, return_sequences=True)(x)
    assert outputs._keras_mask is not None
    model = keras.Model(inputs, outputs)
    ids = np.array([[3, 4, 0, 0], [1, 2, 5, 0]])
    np.testing.assert_array_equal(model.predict(ids, verbose=0), model.predict(ids, verbose=0))
    # Keras forwards the embedding's mask: the LSTM output at padding repeats the last real step.
    out = model.predict(ids, verbose=0)
    np.testing.assert_allclose(out[0, 2], out[0, 1], rtol=1e-6)


def test_bad_rate_and_rank():
    with pytest.raises(ValueError, match="rate"):
        LockedDropout(1.0)
    with pytest.raises(ValueError, match="batch, time, features"):
        LockedDropout(0.5)(np.ones((2, 4), "float32"), training=True)
