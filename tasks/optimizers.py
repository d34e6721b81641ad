"""Optimizers the spine adds to `keras.optimizers` (named by `train.optimizer`)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_tasks")
class LazyAdam(keras.optimizers.Adam):
    """Adam whose update of a sparse gradient (an embedding's looked-up rows) touches only those rows.

    Keras' Adam densifies an embedding's `tf.IndexedSlices` gradient and updates every row's moments and value
    each step: for a 2M-row table and a batch that looks up 20k rows, that is 100 times the work of the rows
    themselves, and on a CPU it dominates the step. Here the looked-up rows (duplicates summed) get Adam's update
    with the step's bias correction; rows not looked up keep their moments and values until they are (the
    "lazy" Adam of TensorFlow Addons and of PyTorch's SparseAdam). Dense gradients get Keras' Adam unchanged.
    TensorFlow backend only (other backends' gradients are always dense, so this is plain Adam there).
    """

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        indices, positions = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), positions, tf.shape(indices)[0])
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = tf.cast(learning_rate, dtype) * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        m_rows = beta_1 * tf.gather(_tensor(m), indices) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(_tensor(v), indices) + (1 - beta_2) * tf.square(values)
        shape = tf.shape(_tensor(variable), out_type=indices.dtype)
        self.assign(m, tf.IndexedSlices(m_rows, indices, shape))
        self.assign(v, tf.IndexedSlices(v_rows, indices, shape))
        self.assign_sub(variable, tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), indices, shape))



def _tensor(variable):
    """The `tf.Variable` behind a Keras variable (the optimizer sees either)."""
    return variable.value if isinstance(variable, keras.Variable) else variable
