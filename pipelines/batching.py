"""Shuffling, batching, padding, bucketing and prefetching: the one place every task batches.

Two shapes of training data:

- independent examples (a sentence and its label, a tagged sentence, a
  translation pair, an image and its caption): `batch_dataset` caches,
  shuffles, pads each batch to its own longest element (or groups examples of
  similar length into buckets) and prefetches;
- one long text for a language model: `stream_batches` cuts it into parallel
  contiguous streams, so a stateful RNN carries its state from one window to
  the next.
"""

import numpy as np
import tensorflow as tf

# The shuffle buffer when none is given: the whole dataset for every dataset of
# examples that fits in memory. Bound it (`shuffle_buffer=`) for big elements.
_WHOLE_DATASET = 1_000_000


def batch_dataset(
    dataset,
    batch_size,
    training,
    seed=0,
    shuffle_buffer=None,
    padded=False,
    cache=True,
    drop_remainder=False,
    *,
    shuffle=None,
    padding_values=None,
    padded_shapes=None,
    bucket_boundaries=None,
    bucket_batch_sizes=None,
    length_fn=None,
    length_key=None,
    batch_map=None,
):
    """Cache, shuffle (training only), batch and prefetch a dataset of examples.

    With `padded=True`, variable-length elements are right-padded to the
    longest element of their own batch (right padding keeps RNNs on cuDNN).
    With `bucket_boundaries`, examples are grouped by length first, so a batch
    holds examples of similar length and is padded to its own longest one:
    less padding for translation pairs and tagged sentences.

    Args:
        dataset: `tf.data.Dataset` of preprocessed, unbatched examples: a
            tensor, or a (nested) tuple or dict of tensors such as
            `({"token_ids": ..., "char_ids": ...}, tag_ids)`.
        batch_size: int.
        training: bool, shuffle with a new order every epoch when `True`
            (unless `shuffle` says otherwise).
        seed: int, shuffle seed (the order is reproducible across runs).
        shuffle_buffer: optional int, examples the shuffle draws from; default
            the whole dataset. Bound it when elements are big (decoded
            images) or the dataset does not fit in memory.
        padded: bool, pad each batch to its own longest element.
        cache: `True` to keep the examples in memory after the first epoch,
            `False` to recompute them every epoch (e.g. images decoded from
            files), or a file path to cache on disk.
        drop_remainder: bool, drop the last batch (of each bucket) when it is
            smaller than `batch_size`, so every batch has a static size.
        shuffle: optional bool, shuffle or not whatever `training` says.
        padding_values: what padding is filled with, per input: one scalar for
            every component, or the element's structure with a scalar (or
            `None` for the default 0 / `""`) per component, e.g.
            `({"token_ids": 0, "char_ids": 0}, -1)`; a dict may leave keys
            out. Implies `padded`.
        padded_shapes: optional structure of shapes for `padded_batch` (e.g.
            a fixed length); default each batch's own longest element.
        bucket_boundaries: optional increasing list of lengths; bucket `i`
            holds examples of length in `[boundaries[i-1], boundaries[i])`.
            Implies `padded`.
        bucket_batch_sizes: optional batch size per bucket
            (`len(bucket_boundaries) + 1` ints); default `batch_size` for all.
        length_fn: the length of an element for bucketing, called like a
            `Dataset.map` function (a tuple element's parts as arguments),
            returning a scalar int.
        length_key: instead of `length_fn`, the dict key of the component
            whose first dimension is the length (searched in nested dicts,
            e.g. `"token_ids"` in `({"token_ids": ...}, tags)`). Default: the
            longest first dimension of the element's variable-length
            components.
        batch_map: optional function applied to each batch (after batching,
            before prefetching), e.g. one-hot labels: one vectorised call
            per batch costs far less than a `Dataset.map` per example, whose
            first pass over 50k in-memory images alone takes seconds.

    Returns:
        The batched `tf.data.Dataset`, prefetching.

    Example:
    ```python
    batch_dataset(
        dataset,  # ({"token_ids": (time,), "char_ids": (time, chars)}, tag_ids (time,))
        32,
        training=True,
        padding_values=({"token_ids": 0, "char_ids": 0}, -1),  # -1: tags the loss ignores
        bucket_boundaries=[10, 20, 40],
        length_key="token_ids",
    )
    ```
    """
    bucketing = bucket_boundaries is not None
    padded = padded or bucketing or padding_values is not None or padded_shapes is not None
    if padding_values is not None:
        padding_values = _padding_values(dataset.element_spec, padding_values)
    if bucketing and (length_fn is not None and length_key is not None):
        raise ValueError("give at most one of `length_fn` and `length_key`")

    if cache is True:
        dataset = dataset.cache()
    elif cache:
        dataset = dataset.cache(str(cache))
    if shuffle is None:
        shuffle = training
    if shuffle:
        buffer = shuffle_buffer or _WHOLE_DATASET
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)

    if bucketing:
        boundaries = [int(b) for b in bucket_boundaries]
        if not boundaries or boundaries != sorted(set(boundaries)) or boundaries[0] < 1:
            raise ValueError(f"bucket_boundaries must be increasing positive lengths, got {list(bucket_boundaries)}")
        sizes = list(bucket_batch_sizes) if bucket_batch_sizes is not None else [batch_size] * (len(boundaries) + 1)
        if len(sizes) != len(boundaries) + 1:
            raise ValueError(
                f"bucket_batch_sizes needs {len(boundaries) + 1} sizes (one more than the boundaries), got {len(sizes)}"
            )
        if length_fn is None:
            length_fn = _length_fn(dataset.element_spec, length_key)
        dataset = dataset.bucket_by_sequence_length(
            length_fn,
            boundaries,
            sizes,
            padded_shapes=padded_shapes,
            padding_values=padding_values,
            drop_remainder=drop_remainder,
        )
    elif padded:
        dataset = dataset.padded_batch(
            batch_size, padded_shapes=padded_shapes, padding_values=padding_values, drop_remainder=drop_remainder
        )
    else:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if batch_map is not None:
        dataset = dataset.map(batch_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _padding_values(spec, values):
    """A full structure of padding scalars, typed like `spec`, from a partial one."""
    if isinstance(spec, dict):
        if isinstance(values, dict):
            unknown = set(values) - set(spec)
            if unknown:
                raise ValueError(f"padding_values names {sorted(unknown)}, not in the element's keys {sorted(spec)}")
            return {key: _padding_values(s, values.get(key)) for key, s in spec.items()}
        if isinstance(values, (tuple, list)):
            raise ValueError(f"padding_values {values!r} is a sequence where the element has a dict")
        return {key: _padding_values(s, values) for key, s in spec.items()}
    if isinstance(spec, (tuple, list)):
        if isinstance(values, (tuple, list)):
            if len(values) != len(spec):
                raise ValueError(f"padding_values has {len(values)} parts, the element {len(spec)}")
            parts = [_padding_values(s, v) for s, v in zip(spec, values)]
        elif isinstance(values, dict):
            raise ValueError(f"padding_values {values!r} is a dict where the element has a tuple")
        else:
            parts = [_padding_values(s, values) for s in spec]
        return type(spec)(*parts) if hasattr(spec, "_fields") else type(spec)(parts)
    if values is None:
        values = "" if spec.dtype == tf.string else 0
    return tf.constant(values, dtype=spec.dtype)


def _length_fn(spec, key):
    """The bucketing length of an element: its `key` component's first dimension, or the longest one."""
    paths = [
        (path, s)
        for path, s in _leaves(spec)
        if isinstance(s, tf.TensorSpec) and s.shape.rank and s.shape[0] is None
    ]
    if key is not None:
        paths = [(path, s) for path, s in _leaves(spec) if path and path[-1] == key]
        if len(paths) != 1:
            found = "no" if not paths else f"{len(paths)}"
            raise ValueError(f"length_key {key!r}: {found} components of the element have that key")
        if paths[0][1].shape.rank == 0:
            raise ValueError(f"length_key {key!r} names a scalar component; bucketing needs sequences")
    if not paths:
        raise ValueError("no variable-length component to bucket by; give `length_fn` or `length_key`")

    def length(*args):
        # tf.data passes the parts of a (plain) tuple element as separate arguments.
        element = args if type(spec) is tuple else args[0]
        lengths = [tf.shape(_get(element, path))[0] for path, _ in paths]
        return tf.reduce_max(tf.stack(lengths))

    return length


def _leaves(spec, path=()):
    if isinstance(spec, dict):
        for key, s in spec.items():
            yield from _leaves(s, path + (key,))
    elif isinstance(spec, (tuple, list)):
        for i, s in enumerate(spec):
            yield from _leaves(s, path + (i,))
    else:
        yield path, spec


def _get(element, path):
    for part in path:
        element = element[part]
    return element


def stream_batches(token_ids, batch_size, sequence_length, drop_remainder=True):
    """Language-model batches that continue each other: `(inputs, targets)` windows of parallel streams.

    The whole split's token ids are cut into `batch_size` contiguous streams
    (stream `b` is the `b`-th of `batch_size` equal slices; the few tokens left
    over at the end are dropped) and each stream into windows of
    `sequence_length` tokens. Row `b` of window `i` continues row `b` of window
    `i - 1`, so a stateful RNN can carry its state across windows (truncated
    backpropagation through time), as in Zaremba et al. (2014)'s PTB setup:

        inputs[i][b]  = stream_b[i * T : (i + 1) * T]
        targets[i][b] = stream_b[i * T + 1 : (i + 1) * T + 1]   # inputs shifted by one

    Windows come in order, never shuffled; reset the RNN state at each epoch.

    Args:
        token_ids: 1-D int array of a split's token ids (documents joined,
            e.g. with an end-of-sentence id between them).
        batch_size: int, number of parallel streams.
        sequence_length: int, tokens per window, `T`.
        drop_remainder: bool; `True` (default) drops the last, shorter window
            so every batch is `(batch_size, sequence_length)` (static shapes
            for stateful RNNs); `False` keeps it (the time dimension is then
            `None` in the element spec).

    Returns:
        A `tf.data.Dataset` of int32 `(inputs, targets)`, each
        `(batch_size, sequence_length)`, whose cardinality is the number of
        windows.

    Example:
    ```python
    dataset = stream_batches(train_ids, batch_size=20, sequence_length=35)
    for inputs, targets in dataset:  # inputs[:, 1:] == targets[:, :-1]
        ...
    ```
    """
    token_ids = np.asarray(token_ids)
    if token_ids.ndim != 1:
        raise ValueError(f"token_ids must be 1-D (one split's ids end to end), got shape {token_ids.shape}")
    if batch_size < 1 or sequence_length < 1:
        raise ValueError(f"batch_size and sequence_length must be positive, got {batch_size}, {sequence_length}")
    stream_length = len(token_ids) // batch_size
    # A window of T inputs needs T + 1 tokens: the targets reach one token further.
    full_windows, rest = divmod(stream_length - 1, sequence_length) if stream_length > 1 else (0, 0)
    if full_windows == 0 and (drop_remainder or rest == 0):
        raise ValueError(
            f"{len(token_ids)} tokens are too few for {batch_size} streams of windows of {sequence_length} "
            f"(+1 target) tokens; lower batch_size or sequence_length"
            + ("" if rest == 0 else ", or pass drop_remainder=False")
        )
    streams = tf.constant(token_ids[: batch_size * stream_length].astype("int32").reshape(batch_size, stream_length))

    def window(start, length):
        tokens = tf.slice(streams, [0, start], [batch_size, length + 1])  # (batch, length + 1)
        return tokens[:, :-1], tokens[:, 1:]

    starts = tf.data.Dataset.range(full_windows)
    dataset = starts.map(lambda i: window(tf.cast(i, tf.int32) * sequence_length, sequence_length))
    if rest and not drop_remainder:
        last = tf.data.Dataset.from_tensors(full_windows * sequence_length).map(lambda start: window(start, rest))
        dataset = dataset.concatenate(last) if full_windows else last
    return dataset
