import numpy as np
import tensorflow as tf

import keras

from keras_tasks.tasks.optimizers import LazyAdam


def embedding_steps(optimizer, batches, rows=6, dim=2, dense=False):
    """Embedding table after one optimizer step per batch of looked-up ids (loss: sum of squares looked up).

    `dense=True` hands the optimizer the gradient as a dense tensor: the reference Adam.
    """
    table = keras.Variable(np.arange(rows * dim, dtype="float32").reshape(rows, dim) / 10)
    for ids in batches:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(table.value, ids) ** 2)
        gradient = tape.gradient(loss, table.value)
        assert isinstance(gradient, tf.IndexedSlices)
        optimizer.apply([tf.convert_to_tensor(gradient) if dense else gradient], [table])
    return table.numpy()


def test_sparse_rows_only_and_equal_to_adam_on_the_rows_it_touches():
    start = np.arange(12, dtype="float32").reshape(6, 2) / 10
    # One step: Adam's moments of untouched rows stay 0, so both give the same table. A row looked up twice gets
    # the sum of its two gradients (Keras' Adam on the sparse gradient squares each copy: a step sqrt(2) too long).
    lazy = embedding_steps(LazyAdam(learning_rate=0.1), [[1, 3, 3]])
    dense = embedding_steps(keras.optimizers.Adam(learning_rate=0.1), [[1, 3, 3]], dense=True)
    np.testing.assert_allclose(lazy, dense, atol=1e-5)
    assert np.all(lazy[[0, 2, 4, 5]] == start[[0, 2, 4, 5]]) and np.all(lazy[[1, 3]] != start[[1, 3]])
    # Two steps: Adam moves row 1 again by its momentum; the lazy update leaves rows the batch did not look up.
    lazy = embedding_steps(LazyAdam(learning_rate=0.1), [[1, 3], [3]])
    dense = embedding_steps(keras.optimizers.Adam(learning_rate=0.1), [[1, 3], [3]], dense=True)
    one_step = embedding_steps(LazyAdam(learning_rate=0.1), [[1, 3]])
    np.testing.assert_allclose(lazy[1], one_step[1])
    assert np.abs(dense[1] - one_step[1]).max() > 0.01
    np.testing.assert_allclose(lazy[3], dense[3], atol=1e-5)  # a row looked up in both steps: Adam's update


def test_dense_gradients_get_plain_adam():
    variable_a, variable_b = keras.Variable([1.0, -2.0]), keras.Variable([1.0, -2.0])
    for optimizer, variable in ((LazyAdam(learning_rate=0.1), variable_a), (keras.optimizers.Adam(learning_rate=0.1), variable_b)):
        for _ in range(3):
            optimizer.apply([tf.constant([0.5, -1.0])], [variable])
    np.testing.assert_allclose(variable_a.numpy(), variable_b.numpy(), rtol=1e-6)
