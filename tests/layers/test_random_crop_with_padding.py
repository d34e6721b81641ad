import keras
import numpy as np

from test_case import run_layer_test

from keras_tasks.layers.random_crop_with_padding import RandomCropWithPadding


def images():
    return (np.arange(3 * 6 * 6 * 2, dtype="float32").reshape(3, 6, 6, 2) + 1) / 100


def test_inference_is_identity():
    layer = RandomCropWithPadding(padding=2, seed=0)
    x = images()
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


def test_training_shifts_each_image_by_at_most_padding():
    layer = RandomCropWithPadding(padding=2, seed=3)
    x = images()
    outputs = [np.asarray(layer(x, training=True)) for _ in range(5)]
    assert outputs[0].shape == x.shape
    assert any(not np.array_equal(y, x) for y in outputs)
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    for y in outputs:
        for i in range(len(x)):
            # every output is one of the 25 windows of the zero-padded image
            windows = [padded[i, r : r + 6, c : c + 6] for r in range(5) for c in range(5)]
            assert any(np.array_equal(y[i], w) for w in windows)


def test_active_only_in_training_inside_a_model():
    inputs = keras.Input((6, 6, 2))
    model = keras.Model(inputs, RandomCropWithPadding(padding=3, seed=1)(inputs))
    x = images()
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    assert not np.array_equal(np.asarray(model(x, training=True)), x)


def test_config_round_trip_and_save(tmp_path):
    layer = RandomCropWithPadding(padding=3, seed=7, name="shift")
    restored = RandomCropWithPadding.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    inputs = keras.Input((6, 6, 2))
    model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
    model.compile("sgd", "mse")
    model.fit(images(), np.zeros((3, 6, 6, 1)), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded.predict(images(), verbose=0), model.predict(images(), verbose=0), rtol=1e-6)


def test_layer_contract(tmp_path):
    run_layer_test(RandomCropWithPadding, {"padding": 1, "seed": 2}, images(), (3, 6, 6, 2), tmp_path=tmp_path)
