import keras
import numpy as np
import pytest

from test_case import run_layer_test

from keras_tasks.layers.residual_block import ResidualBlock


def make_model(**kwargs):
    inputs = keras.Input((6, 6, 4), name="image")
    outputs = ResidualBlock(**kwargs, name="block")(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(outputs))


@pytest.mark.parametrize(
    "kwargs,shape,params",
    [
        # conv 3x3x4x4 twice, two batch norms of 4 channels (4 variables each), identity shortcut
        ({"filters": 4}, (2, 6, 6, 4), 2 * 144 + 2 * 16),
        # conv 3x3x4x8 + 3x3x8x8, two batch norms of 8, projection 1x1x4x8 + its batch norm
        ({"filters": 8, "strides": 2}, (2, 3, 3, 8), 288 + 576 + 2 * 32 + 32 + 32),
        ({"filters": 8, "strides": 2, "shortcut": "zero_pad"}, (2, 3, 3, 8), 288 + 576 + 2 * 32),
    ],
)
def test_shapes_and_parameters(kwargs, shape, params):
    block = ResidualBlock(**kwargs)
    outputs = block(np.random.rand(2, 6, 6, 4).astype("float32"))
    assert tuple(outputs.shape) == shape
    assert block.count_params() == params
    assert block.compute_output_shape((2, 6, 6, 4)) == shape


def test_zero_pad_shortcut_is_the_strided_input():
    block = ResidualBlock(filters=6, strides=2, shortcut="zero_pad")
    x = np.random.rand(1, 4, 4, 3).astype("float32")
    block.build(x.shape)
    for variable in block.conv_2.weights:  # the residual branch adds nothing
        variable.assign(np.zeros(variable.shape))
    y = np.asarray(block(x, training=False))
    np.testing.assert_allclose(y[..., :3], x[:, ::2, ::2, :], rtol=1e-5)
    np.testing.assert_allclose(y[..., 3:], 0.0)


def test_config_round_trip():
    block = ResidualBlock(filters=8, strides=2, shortcut="zero_pad", kernel_regularizer="l2", batch_norm_momentum=0.8)
    config = block.get_config()
    restored = ResidualBlock.from_config(config)
    assert restored.get_config() == config
    assert isinstance(restored.kernel_regularizer, keras.regularizers.L2)


def test_save_load_and_fit_step(tmp_path):
    model = make_model(filters=8, strides=2, kernel_regularizer=keras.regularizers.L2(1e-4))
    model.compile("sgd", "mse")
    x = np.random.rand(4, 6, 6, 4).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, np.zeros((4, 8)), batch_size=2, epochs=1, verbose=0)
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_mixed_precision():
    block = ResidualBlock(filters=4, dtype="mixed_float16")
    outputs = block(np.random.rand(2, 6, 6, 4).astype("float32"))
    assert keras.backend.standardize_dtype(outputs.dtype) == "float16"
    assert block.conv_1.kernel.dtype == "float32"


def test_bad_arguments():
    with pytest.raises(ValueError, match="shortcut must be one of"):
        ResidualBlock(4, shortcut="option_c")
    with pytest.raises(ValueError, match="cannot reduce"):
        ResidualBlock(2, shortcut="zero_pad")(np.ones((1, 4, 4, 4)))


def test_layer_contract(tmp_path):
    run_layer_test(
        ResidualBlock,
        {"filters": 8, "strides": 2, "shortcut": "zero_pad"},
        np.random.rand(2, 6, 6, 4).astype("float32"),
        (2, 3, 3, 8),
        expected_num_trainable_weights=6,
        expected_num_non_trainable_weights=4,
        tmp_path=tmp_path,
    )
