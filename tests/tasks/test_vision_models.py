import keras
import numpy as np
import pytest

from keras_tasks.tasks.vision_models import augmentation_layers, build_image_model


def trainable_params(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize(
    "name,shape,params",
    [
        # LeNet-5 with a full C3 and a softmax output: 156 + 2,416 + 48,120 + 10,164 + 850
        ("lenet5", (28, 28, 1), 61706),
        ("lenet5", (32, 32, 3), 62006),
        ("cnn", (28, 28, 1), 201898),
        # He et al. 2016, table 6: ResNet-20 has 0.27M parameters (option A shortcuts)
        ("resnet20", (32, 32, 3), 269722),
        ("resnet32", (32, 32, 3), 464154),
    ],
)
def test_output_shape_and_parameter_count(name, shape, params):
    model = build_image_model(name, shape, num_classes=10)
    assert model.input.name == "image"
    assert trainable_params(model) == params
    x = np.random.randint(0, 256, (2, *shape)).astype("uint8")
    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def test_resnet_depth_must_be_6n_plus_2():
    assert len([l for l in build_image_model("resnet8", (8, 8, 3), 4).layers if "block" in l.name]) == 3
    with pytest.raises(ValueError, match="6n\\+2"):
        build_image_model("resnet21", (32, 32, 3), 10)
    with pytest.raises(ValueError, match="unknown image model"):
        build_image_model("vgg16", (32, 32, 3), 10)


@pytest.mark.parametrize("name,augmentation", [("lenet5", "shift:2,rotate:10,zoom:0.1"), ("resnet8", "shift:4,flip")])
def test_augmentation_only_in_training(name, augmentation):
    shape = (28, 28, 1) if name == "lenet5" else (16, 16, 3)
    plain = build_image_model(name, shape, 10)
    augmented = build_image_model(name, shape, 10, augmentation=augmentation)
    augmented.set_weights(plain.get_weights())
    x = np.random.randint(0, 256, (4, *shape)).astype("float32")
    np.testing.assert_allclose(augmented.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    # batch-norm statistics differ between modes in ResNets, so compare the augmented model with itself
    stem = keras.Model(augmented.input, augmented.get_layer(augmentation_layer_names(augmented)[-1]).output)
    assert not np.allclose(np.asarray(stem(x, training=True)), np.asarray(stem(x, training=False)))


def augmentation_layer_names(model):
    return [l.name for l in model.layers if l.name.startswith("random_")]


def test_augmentation_spec():
    assert [type(l).__name__ for l in augmentation_layers("shift:2, flip")] == ["RandomCropWithPadding", "RandomFlip"]
    assert augmentation_layers("none") == [] and augmentation_layers("") == []
    with pytest.raises(ValueError, match="unknown augmentation 'cutout'"):
        augmentation_layers("cutout")


def test_models_save_and_reload(tmp_path):
    model = build_image_model("resnet8", (8, 8, 3), 3, augmentation="shift:1,flip")
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.randint(0, 256, (4, 8, 8, 3)).astype("float32")
    model.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
