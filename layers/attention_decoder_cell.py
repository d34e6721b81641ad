import keras
from keras import ops

from keras_tasks.layers.bahdanau_attention import BahdanauAttention
from keras_tasks.layers.luong_attention import LuongAttention

ATTENTIONS = ("bahdanau", "luong")
RNNS = ("lstm", "gru")


@keras.saving.register_keras_serializable(package="keras_tasks")
class AttentionDecoderCell(keras.layers.Layer):
    """A recurrent decoder that attends over a whole memory at every step.

    Two flavours of one step, given the input `x_t` (e.g. the previous
    token's embedding), the recurrent state `s_{t-1}` and the memory `M`
    (encoder states of a sentence, or image regions):

    - `attention="bahdanau"` (Bahdanau et al. 2015; Xu et al. 2015's Show,
      Attend and Tell): `c_t = attend(s_{t-1}, M)`, then
      `s_t = RNN([x_t; c_t], s_{t-1})`;
    - `attention="luong"` (Luong et al. 2015): `s_t = RNN(x_t, s_{t-1})`, then
      `c_t = attend(s_t, M)`.

    Both output the attentional state `o_t = tanh(W [s_t; c_t])` (`units`
    values). With `input_feeding=True` (Luong et al.), `o_{t-1}` is also part of
    the RNN input, so the decoder knows what it attended to before. Without it,
    Luong's recurrence does not depend on the attention, and a whole teacher-
    forced sequence runs as one `keras.layers.LSTM`/`GRU` call (cuDNN-eligible)
    followed by one batched attention.

    Calling the layer runs it over a teacher-forced sequence; `step` advances
    one step (for decoding loops such as `decoding.beam_search`), with the keys
    from `project_keys(memory)` computed once per memory.

    Args:
        units: int, RNN units and size of the attentional output.
        attention: `"bahdanau"` (additive) or `"luong"` (multiplicative).
        attention_units: int, size of Bahdanau's scoring layer (default `units`).
        score: Luong's score, `"general"` or `"dot"` (needs
            `memory_dim == units`).
        rnn: `"lstm"` or `"gru"`.
        input_feeding: bool, feed `o_{t-1}` into step `t`.
        dropout: float, dropout on the attentional output (one mask per sequence
            when the steps run in a loop).
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `(batch, steps, input_dim)`.
        memory: float tensor `(batch, time, memory_dim)`.
        initial_state: optional list of the RNN's states (`[h, c]` for an
            LSTM, `[h]` for a GRU), each `(batch, units)`; default zeros.
        memory_mask: optional boolean tensor `(batch, time)`, `True` at real
            steps; padding gets exactly 0 attention.
        training: bool, dropout on or off.

    Returns:
        `(outputs, attention)`: `(batch, steps, units)` attentional outputs and
        `(batch, steps, time)` attention weights.

    Example:
    >>> cell = AttentionDecoderCell(8, attention="luong", input_feeding=True)
    >>> outputs, attention = cell(np.ones((2, 3, 4)), np.ones((2, 5, 6)))
    >>> outputs.shape, attention.shape
    ((2, 3, 8), (2, 3, 5))
    """

    def __init__(
        self,
        units,
        attention="bahdanau",
        attention_units=None,
        score="general",
        rnn="lstm",
        input_feeding=False,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if attention not in ATTENTIONS:
            raise ValueError(f"`attention` must be one of {ATTENTIONS}. Received: attention={attention!r}")
        if rnn not in RNNS:
            raise ValueError(f"`rnn` must be one of {RNNS}. Received: rnn={rnn!r}")
        self.units = int(units)
        self.attention = attention
        self.attention_units = int(attention_units or units)
        self.score = score
        self.rnn = rnn
        self.input_feeding = bool(input_feeding)
        self.dropout = float(dropout)

        # === Layers ===
        if attention == "bahdanau":
            self.attention_layer = BahdanauAttention(self.attention_units, dtype=self.dtype_policy, name="attention")
        else:
            self.attention_layer = LuongAttention(score, dtype=self.dtype_policy, name="attention")
        # Defaults (tanh/sigmoid, no recurrent dropout) keep the sequence path cuDNN-eligible.
        recurrent = keras.layers.LSTM if rnn == "lstm" else keras.layers.GRU
        self.recurrent_layer = recurrent(
            self.units, return_sequences=True, return_state=True, dtype=self.dtype_policy, name=rnn
        )
        self.output_layer = keras.layers.Dense(
            self.units, activation="tanh", dtype=self.dtype_policy, name="attentional_output"
        )
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="dropout")

    def build(self, inputs_shape, memory_shape=None):
        memory_dim = memory_shape[-1]
        rnn_input_dim = inputs_shape[-1] + (self.units if self.input_feeding else 0)
        if self.attention == "bahdanau":
            rnn_input_dim += memory_dim
        self.recurrent_layer.build((None, None, rnn_input_dim))
        self.attention_layer.build((None, self.units), (None, None, memory_dim))
        self.output_layer.build((None, self.units + memory_dim))
        self.built = True

    @property
    def state_size(self):
        """The number of `(batch, units)` tensors in a `step` state."""
        return (2 if self.rnn == "lstm" else 1) + int(self.input_feeding)

    def get_initial_state(self, batch_size, rnn_states=None):
        """The state of `step` before the first step: the RNN's states (zeros by default), then `o_0 = 0`."""
        zeros = ops.zeros((batch_size, self.units), self.compute_dtype)
        if rnn_states is None:
            rnn_states = [zeros] * (2 if self.rnn == "lstm" else 1)
        return tuple(rnn_states) + ((zeros,) if self.input_feeding else ())

    def project_keys(self, memory):
        """The attention keys of a memory, computed once and passed to every `step`."""
        return self.attention_layer.project_keys(memory)

    def step(self, inputs, state, memory, keys, memory_mask=None, dropout_mask=None):
        """One step: `inputs` `(batch, input_dim)` and the state to `(output, state, attention)`.

        `dropout_mask` (`(batch, units)`, scaled, e.g. from training) multiplies the attentional output; a
        sequence draws one mask for all its steps, outside the loop (a random draw inside a JAX loop would leak
        its seed state), so the dropout is the same at every step (variational, Gal & Ghahramani 2016).
        """
        rnn_state = list(state[: len(state) - int(self.input_feeding)])
        x = inputs
        if self.input_feeding:
            x = ops.concatenate([x, state[-1]], axis=-1)
        if self.attention == "bahdanau":
            context, weights = self.attention_layer(
                rnn_state[0], memory, value_mask=memory_mask, keys=keys, return_attention_scores=True
            )
            x = ops.concatenate([x, context], axis=-1)
        hidden, rnn_state = self.recurrent_layer.cell(x, rnn_state)
        rnn_state = list(rnn_state) if isinstance(rnn_state, (list, tuple)) else [rnn_state]
        if self.attention == "luong":
            context, weights = self.attention_layer(
                hidden, memory, value_mask=memory_mask, keys=keys, return_attention_scores=True
            )
        output = self.output_layer(ops.concatenate([hidden, context], axis=-1))
        if dropout_mask is not None:
            output = output * dropout_mask
        return output, tuple(rnn_state) + ((output,) if self.input_feeding else ()), weights

    def call(self, inputs, memory, initial_state=None, memory_mask=None, training=None):
        if self.attention == "luong" and not self.input_feeding:
            # The recurrence ignores the attention: one RNN call, then one attention over every step.
            hidden, *_ = self.recurrent_layer(inputs, initial_state=initial_state, training=training)
            context, weights = self.attention_layer(hidden, memory, value_mask=memory_mask, return_attention_scores=True)
            output = self.output_layer(ops.concatenate([hidden, context], axis=-1))
            return self.dropout_layer(output, training=training), weights

        keys = self.project_keys(memory)
        state = self.get_initial_state(ops.shape(inputs)[0], initial_state)
        # Keras' scan stacks outputs of the carry's own structure: the step's output and weights ride in it.
        first = (
            ops.zeros((ops.shape(inputs)[0], self.units), self.compute_dtype),
            ops.zeros(ops.shape(memory)[:2], self.compute_dtype),
        )

        dropout_mask = None
        if training and self.dropout > 0:
            dropout_mask = self.dropout_layer(ops.ones_like(first[0]), training=True)

        def body(carry, x):
            output, state, weights = self.step(x, carry[0], memory, keys, memory_mask, dropout_mask)
            carry = (state, (output, ops.cast(weights, self.compute_dtype)))
            return carry, carry

        _, (_, (outputs, weights)) = ops.scan(body, (state, first), ops.transpose(inputs, (1, 0, 2)))  # time-major
        return ops.transpose(outputs, (1, 0, 2)), ops.transpose(weights, (1, 0, 2))

    def compute_output_spec(self, inputs, memory, initial_state=None, memory_mask=None, training=None):
        return (
            keras.KerasTensor(inputs.shape[:-1] + (self.units,), dtype=self.compute_dtype),
            keras.KerasTensor(inputs.shape[:-1] + memory.shape[1:2], dtype=self.compute_dtype),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "attention": self.attention,
                "attention_units": self.attention_units,
                "score": self.score,
                "rnn": self.rnn,
                "input_feeding": self.input_feeding,
                "dropout": self.dropout,
            }
        )
        return config
