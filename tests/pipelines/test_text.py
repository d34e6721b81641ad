import numpy as np
import tensorflow as tf

from keras_tasks.pipelines import text as text_lib
from keras_tasks.pipelines.batching import batch_dataset


def test_standardize_splits_punctuation_and_clitics():
    out = text_lib.standardize(["It's a GRIPPING, funny film!<br />Didn't (like) it?", "Café"]).numpy()
    assert out[0].decode() == "it 's a gripping , funny film ! did n't ( like ) it ?"
    assert out[1].decode() == "café"


def test_vocabulary_order_and_cap():
    counts = text_lib.count_tokens(["b a b", "c b a"])
    assert text_lib.build_vocabulary(counts) == ["b", "a", "c"]
    assert text_lib.build_vocabulary(counts, max_tokens=4) == ["b", "a"]
    assert text_lib.build_vocabulary(counts, min_count=2) == ["b", "a"]


def test_vectorizer_right_pads_and_maps_oov(tmp_path):
    path = str(tmp_path / "v.txt")
    text_lib.write_vocabulary(["film", "fine"], path)
    vectorizer = text_lib.TextVectorizer(path, max_length=3)
    ids = vectorizer(["Fine film", "unknown", "fine film fine film", ""]).numpy()
    np.testing.assert_array_equal(ids, [[3, 2, 0], [1, 0, 0], [3, 2, 3], [0, 0, 0]])
    assert vectorizer.vocabulary == ["", "[UNK]", "film", "fine"]
    assert vectorizer([""]).shape == (1, 1)  # an empty text still gives one (padding) step


def test_batches_padded_to_their_own_length_on_the_right():
    rows = [[1], [2, 3, 4], [5, 6], [7, 8, 9, 10, 11]]
    ds = tf.data.Dataset.from_generator(lambda: iter(rows), output_signature=tf.TensorSpec([None], tf.int32))
    batches = [b.numpy() for b in batch_dataset(ds, 2, training=False, padded=True)]
    np.testing.assert_array_equal(batches[0], [[1, 0, 0], [2, 3, 4]])
    assert batches[1].shape == (2, 5) and batches[1][0, 2:].tolist() == [0, 0, 0]


def test_training_batches_are_reshuffled_each_epoch_with_a_seed():
    ds = batch_dataset(tf.data.Dataset.range(100), 100, training=True, seed=1)
    first, second = [b.numpy().tolist() for b in ds], [b.numpy().tolist() for b in ds]
    assert first != second and sorted(first[0]) == list(range(100))
