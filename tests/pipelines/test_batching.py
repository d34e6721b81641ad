import numpy as np
import pytest
import tensorflow as tf

from keras_tasks.pipelines import batching


def ragged_examples():
    """(({"token_ids": ids, "char_ids": (len, 2)}, tags)) examples of lengths 1..6."""

    def gen():
        for n in [3, 1, 6, 2, 5, 4]:
            ids = np.arange(1, n + 1, dtype="int32")
            yield {"token_ids": ids, "char_ids": np.ones((n, 2), "int32")}, ids * 10

    spec = (
        {"token_ids": tf.TensorSpec([None], tf.int32), "char_ids": tf.TensorSpec([None, 2], tf.int32)},
        tf.TensorSpec([None], tf.int32),
    )
    return tf.data.Dataset.from_generator(gen, output_signature=spec)


def test_padding_values_per_component_and_default():
    dataset = batching.batch_dataset(
        ragged_examples(), 6, training=False, padding_values=({"token_ids": 0}, -1), drop_remainder=True
    )
    (features, tags), = list(dataset)
    assert features["token_ids"].shape == (6, 6) and features["char_ids"].shape == (6, 6, 2)
    assert tags.numpy()[1].tolist() == [10, -1, -1, -1, -1, -1]  # tags padded with -1
    assert features["token_ids"].numpy()[1].tolist() == [1, 0, 0, 0, 0, 0]
    assert features["char_ids"].numpy()[1, 1:].sum() == 0  # a key left out pads with 0
    with pytest.raises(ValueError, match=r"names \['nope'\]"):
        batching.batch_dataset(ragged_examples(), 2, training=False, padding_values=({"nope": 0}, -1))
    with pytest.raises(ValueError, match="3 parts, the element 2"):
        batching.batch_dataset(ragged_examples(), 2, training=False, padding_values=(0, 0, 0))


def test_bucketing_groups_similar_lengths_and_keeps_every_example():
    dataset = batching.batch_dataset(
        ragged_examples(), 2, training=False, bucket_boundaries=[3, 5], length_key="token_ids", padding_values=(0, -1)
    )
    batches = [features["token_ids"].numpy() for features, _ in dataset]
    widths = sorted(b.shape[1] for b in batches)
    lengths = sorted(int((row > 0).sum()) for b in batches for row in b)
    assert lengths == [1, 2, 3, 4, 5, 6]  # nothing dropped
    assert widths == [2, 4, 6]  # (1, 2), (3, 4), (5, 6): padded to their own longest
    with pytest.raises(ValueError, match="increasing positive"):
        batching.batch_dataset(ragged_examples(), 2, training=False, bucket_boundaries=[5, 3])
    with pytest.raises(ValueError, match="needs 3 sizes"):
        batching.batch_dataset(ragged_examples(), 2, training=False, bucket_boundaries=[3, 5], bucket_batch_sizes=[2])
    with pytest.raises(ValueError, match="length_key 'nope': no components"):
        batching.batch_dataset(ragged_examples(), 2, training=False, bucket_boundaries=[3], length_key="nope")


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    dataset = batching.batch_dataset(tf.data.Dataset.range(50), 50, training=True, seed=3)
    first, second = [next(iter(dataset)).numpy().tolist() for _ in range(2)]
    again = next(iter(batching.batch_dataset(tf.data.Dataset.range(50), 50, training=True, seed=3))).numpy().tolist()
    assert sorted(first) == list(range(50)) and first != list(range(50))
    assert first == again  # same seed, same first epoch
    unshuffled = batching.batch_dataset(tf.data.Dataset.range(5), 5, training=True, shuffle=False)
    assert next(iter(unshuffled)).numpy().tolist() == [0, 1, 2, 3, 4]
    assert second != first and sorted(second) == list(range(50))  # a new order each epoch


def test_batch_map_runs_once_per_batch_after_shuffling():
    examples = tf.data.Dataset.from_tensor_slices({"image": np.arange(10, dtype="float32"), "label": np.arange(10) % 3})
    dataset = batching.batch_dataset(
        examples, 4, training=True, seed=1, batch_map=lambda x: (x["image"] * 2, tf.one_hot(x["label"], 3))
    )
    batches = list(dataset)
    assert [int(images.shape[0]) for images, _ in batches] == [4, 4, 2]
    images = np.concatenate([images.numpy() for images, _ in batches])
    labels = np.concatenate([np.argmax(onehot.numpy(), -1) for _, onehot in batches])
    assert sorted(images.tolist()) == [2.0 * i for i in range(10)] and images.tolist() != sorted(images.tolist())
    assert (labels == (images / 2).astype(int) % 3).all()  # image and label still travel together


def test_stream_batches_continue_each_other():
    ids = np.arange(43)  # 2 streams of 21 tokens: windows of 5 -> 4 full windows (20 + 1 target)
    windows = [(x.numpy(), y.numpy()) for x, y in batching.stream_batches(ids, 2, 5)]
    assert len(windows) == 4 and all(x.shape == (2, 5) for x, _ in windows)
    stream0 = np.concatenate([x[0] for x, _ in windows])
    stream1 = np.concatenate([x[1] for x, _ in windows])
    assert stream0.tolist() == list(range(20)) and stream1.tolist() == list(range(21, 41))
    for x, y in windows:
        assert (x[:, 1:] == y[:, :-1]).all() and (y == x + 1).all()
    ragged = [x.shape for x, _ in batching.stream_batches(np.arange(46), 2, 5, drop_remainder=False)]
    assert ragged == [(2, 5)] * 4 + [(2, 2)]  # 23 per stream: 20 + a last window of 2 (+1 target)
    with pytest.raises(ValueError, match="too few"):
        batching.stream_batches(np.arange(8), 2, 5)
    with pytest.raises(ValueError, match="must be 1-D"):
        batching.stream_batches(np.zeros((2, 3)), 2, 5)
