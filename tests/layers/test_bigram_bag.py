import numpy as np
import pytest

import keras

from keras_tasks.layers import BigramBag
from keras_tasks.layers.bigram_bag import count_bigram_keys

VOCABULARY = 7


def key(first, second):
    return first * VOCABULARY + second


def test_mean_of_words_and_known_bigrams_only():
    keys = sorted([key(1, 2), key(3, 4), key(5, 0)])  # (5, 0) touches padding: never counted
    layer = BigramBag(VOCABULARY, 3, len(keys), keys)
    ids = np.array([[1, 2, 3, 5, 0, 0], [6, 6, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], "int32")
    out = keras.ops.convert_to_numpy(layer(ids))
    table = keras.ops.convert_to_numpy(layer.embeddings)
    bigram_row = {k: VOCABULARY + i for i, k in enumerate(keys)}
    # Row 0: words 1, 2, 3, 5 and the known bigram (1, 2); (2, 3), (3, 5), (5, 0) are not known.
    expected = table[[1, 2, 3, 5, bigram_row[key(1, 2)]]].mean(axis=0)
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)
    np.testing.assert_allclose(out[1], table[[6, 6]].mean(axis=0), rtol=1e-6)  # no known bigram
    np.testing.assert_allclose(out[2], 0.0)  # an empty text: zeros, not NaN


def test_keys_travel_with_the_weights(tmp_path):
    keys = [key(1, 2), key(2, 3)]
    inputs = keras.Input((None,), dtype="int32")
    model = keras.Model(inputs, BigramBag(VOCABULARY, 2, 2, keys, name="bag")(inputs))
    path = str(tmp_path / "bag.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert keras.ops.convert_to_numpy(restored.get_layer("bag").bigram_keys).tolist() == keys
    ids = np.array([[1, 2, 3, 4]], "int32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(ids)), keras.ops.convert_to_numpy(model(ids)))


def test_bad_arguments_say_what_to_change():
    with pytest.raises(ValueError, match="data.max_tokens"):
        BigramBag(50000, 4, 1, [0])
    with pytest.raises(ValueError, match="sorted and distinct"):
        BigramBag(VOCABULARY, 4, 2, [key(2, 3), key(1, 2)])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        BigramBag(VOCABULARY, 4, 3, [1, 2])


def test_count_bigram_keys_keeps_the_most_frequent():
    rows = [np.array([[1, 2, 1, 2, 0], [1, 2, 3, 0, 0]]), np.array([[3, 4, 3, 4, 3]])]
    # (1,2) x3, (2,1) x1, (2,3) x1, (3,4) x2, (4,3) x2; pairs with padding are skipped.
    assert count_bigram_keys(rows, VOCABULARY, 2).tolist() == sorted([key(1, 2), key(3, 4)])  # (4,3) loses the tie
    assert count_bigram_keys(rows, VOCABULARY, 10, min_count=2).tolist() == sorted([key(1, 2), key(3, 4), key(4, 3)])
    assert count_bigram_keys([], VOCABULARY, 3).tolist() == []
