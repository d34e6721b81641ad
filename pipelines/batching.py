"""Shuffling, batching, padding and prefetching: the one place every task batches."""

import tensorflow as tf


def batch_dataset(
    dataset,
    batch_size,
    training,
    seed=0,
    shuffle_buffer=None,
    padded=False,
    cache=True,
    drop_remainder=False,
):
    """Cache, shuffle (training only), batch and prefetch a dataset of examples.

    With `padded=True`, variable-length elements are right-padded with zeros to
    the longest element of their own batch (right padding keeps RNNs on cuDNN).

    Args:
        dataset: `tf.data.Dataset` of preprocessed, unbatched examples.
        batch_size: int.
        training: bool, shuffle with a new order every epoch when `True`.
        seed: int, shuffle seed (the order is reproducible across runs).
        shuffle_buffer: optional int; defaults to the whole dataset.
        padded: bool, pad each batch to its own longest element.
        cache: bool, keep preprocessed examples in memory after the first epoch.
        drop_remainder: bool.
    """
    if cache:
        dataset = dataset.cache()
    if training:
        buffer = shuffle_buffer or 1_000_000
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if padded:
        dataset = dataset.padded_batch(batch_size, drop_remainder=drop_remainder)
    else:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
