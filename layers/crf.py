"""Linear-chain conditional random field: pairwise potentials, their negative log-likelihood, Viterbi decoding.

The `CRF` layer turns per-token tag scores (emissions) into pairwise potentials
`potentials[b, t, i, j]`: the score of tag `j` at step `t` after tag `i` at step `t - 1`, with the learned
transition, start and end scores folded in. A path's score is then a sum of potentials, so the loss
(`CRFLoss`, by the forward algorithm) and the decoder (`crf_decode`, Viterbi) are functions of the layer's
output alone: the loss plugs into `model.compile`, the decoder runs on a trained model's output, and neither
needs the layer's weights.
"""

import keras
from keras import ops

# The score of a forbidden transition: far below any path, yet finite in float16.
FORBIDDEN = -1e4


@keras.saving.register_keras_serializable(package="keras_tasks")
class CRF(keras.layers.Layer):
    """Linear-chain CRF potentials with learned transition, start and end scores (Lample et al. 2016).

    A sentence of length `L` with tags `y` scores
    `start[y_0] + sum_t emissions[t, y_t] + sum_{t>0} transitions[y_{t-1}, y_t] + end[y_{L-1}]`,
    and `potentials` holds exactly these terms per step, so that
    `score(y) = potentials[0, 0, y_0] + sum_{0<t<L} potentials[t, y_{t-1}, y_t]`:

    - step 0: `start[j] + emissions[0, j]` (the same for every row `i`);
    - step t > 0: `transitions[i, j] + emissions[t, j]`;
    - the last unmasked step also adds `end[j]`; masked (padding) steps are zeros.

    With `allowed`, forbidden starts, transitions and ends score `FORBIDDEN` (-1e4): no decoded path uses
    them while an allowed path exists (e.g. `O -> I-PER` in IOB2; see `pipelines.conll.allowed_transitions`).

    Args:
        num_tags: int, number of tags (the last dimension of the emissions).
        allowed: optional `(start, transitions, end)`: `num_tags` bools, `num_tags x num_tags` bools (row: the
            previous tag), `num_tags` bools. None allows everything.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `(batch, time, num_tags)` of emission scores.
        mask: optional bool tensor `(batch, time)`, right padding (`True` on the tokens).

    Returns:
        Potentials `(batch, time, num_tags, num_tags)`; no mask is passed on (the loss reads the padding from
        the tags, the decoder takes the mask).

    Example:
    ```python
    emissions = keras.layers.Dense(5)(features)  # (batch, time, 5)
    potentials = CRF(5, name="crf")(emissions)
    model = keras.Model(inputs, potentials)
    model.compile("adam", loss=CRFLoss())  # tags (batch, time), -1 at padding
    tags, scores = crf_decode(model.predict(x), mask)
    ```
    """

    def __init__(self, num_tags, allowed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_tags = int(num_tags)
        if allowed is not None:
            start, transitions, end = allowed
            allowed = (
                [bool(v) for v in start],
                [[bool(v) for v in row] for row in transitions],
                [bool(v) for v in end],
            )
            shapes = (len(allowed[0]), len(allowed[1]), {len(row) for row in allowed[1]}, len(allowed[2]))
            if shapes != (self.num_tags, self.num_tags, {self.num_tags}, self.num_tags):
                raise ValueError(f"allowed must be ({num_tags},), ({num_tags}, {num_tags}), ({num_tags},) lists")
        self.allowed = allowed
        self.supports_masking = True

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.num_tags:
            raise ValueError(f"CRF of {self.num_tags} tags got emissions of size {input_shape[-1]}")
        k = self.num_tags
        self.transitions = self.add_weight(name="transitions", shape=(k, k), initializer="glorot_uniform")
        self.start = self.add_weight(name="start", shape=(k,), initializer="zeros")
        self.end = self.add_weight(name="end", shape=(k,), initializer="zeros")
        self.built = True

    def _penalties(self):
        """Forbidden-move scores (constants) for start, transitions, end."""
        if self.allowed is None:
            return 0.0, 0.0, 0.0
        start, transitions, end = (ops.convert_to_tensor(a) for a in self.allowed)
        return tuple(ops.where(a, 0.0, FORBIDDEN) for a in (start, transitions, end))

    def call(self, inputs, mask=None):
        emissions = ops.cast(inputs, self.compute_dtype)
        start_penalty, transition_penalty, end_penalty = self._penalties()
        transitions = ops.cast(self.transitions + transition_penalty, self.compute_dtype)
        start = ops.cast(self.start + start_penalty, self.compute_dtype)
        end = ops.cast(self.end + end_penalty, self.compute_dtype)

        steps = emissions[:, :, None, :] + transitions[None, None]  # (batch, time, prev tag, tag)
        first = ops.broadcast_to((emissions[:, :1, :] + start)[:, :, None, :], ops.shape(steps[:, :1]))
        potentials = ops.concatenate([first, steps[:, 1:]], axis=1)
        if mask is None:
            mask = ops.ones(ops.shape(emissions)[:2], "bool")
        mask = ops.cast(mask, "bool")
        following = ops.concatenate([mask[:, 1:], ops.zeros_like(mask[:, :1])], axis=1)
        last = ops.cast(ops.logical_and(mask, ops.logical_not(following)), self.compute_dtype)
        potentials = potentials + last[:, :, None, None] * end
        return potentials * ops.cast(mask, self.compute_dtype)[:, :, None, None]

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.num_tags,)

    def get_config(self):
        config = super().get_config()
        config.update({"num_tags": self.num_tags, "allowed": self.allowed})
        return config


def _time_major(potentials, mask):
    """`(steps, mask)` time-major, and the two packed into one tensor `(time, batch, k, k + 1)` to scan over.

    (One scanned tensor: Keras' TensorFlow `scan` cannot check several inputs of unknown length.)
    """
    potentials = ops.cast(potentials, "float32")
    shape = ops.shape(potentials)
    if mask is None:
        mask = ops.ones(shape[:2], "bool")
    mask = ops.cast(mask, "bool")
    steps = ops.transpose(potentials, (1, 0, 2, 3))  # (time, batch, prev tag, tag)
    mask = ops.transpose(mask, (1, 0))  # (time, batch)
    flags = ops.broadcast_to(ops.cast(mask, "float32")[:, :, None, None], ops.shape(steps[..., :1]))
    return steps, mask, ops.concatenate([steps, flags], axis=-1)


def _unpack(packed):
    return packed[..., :-1], packed[:, 0, -1] > 0.5  # (batch, prev tag, tag), (batch,)


def crf_log_normalizer(potentials, mask=None):
    """log Z, the log-sum-exp of every path's score, by the forward algorithm: `(batch,)` float32."""
    steps, _, packed = _time_major(potentials, mask)

    def step(alpha, inputs):
        potential, valid = _unpack(inputs)
        updated = ops.logsumexp(alpha[:, :, None] + potential, axis=1)
        return ops.where(valid[:, None], updated, alpha), None

    alpha, _ = ops.scan(step, steps[0, :, 0, :], packed[1:])
    return ops.logsumexp(alpha, axis=-1)


def crf_sequence_score(potentials, tags, mask=None):
    """The score of the given tag paths `(batch, time)` (values at padding are ignored): `(batch,)` float32."""
    potentials = ops.cast(potentials, "float32")
    k = ops.shape(potentials)[-1]
    tags = ops.cast(tags, "int32")
    if mask is None:
        mask = ops.ones(ops.shape(tags), "bool")
    tags = ops.where(mask, tags, 0)
    previous = ops.concatenate([ops.zeros_like(tags[:, :1]), tags[:, :-1]], axis=1)  # row 0 at step 0
    flat = ops.reshape(potentials, (ops.shape(potentials)[0], ops.shape(potentials)[1], k * k))  # (batch, time, k*k)
    picked = ops.take_along_axis(flat, (previous * k + tags)[:, :, None], axis=2)[:, :, 0]
    return ops.sum(picked * ops.cast(mask, "float32"), axis=1)


def crf_log_likelihood(potentials, tags, mask=None):
    """log p(tags | sentence) of each sentence: `(batch,)` float32."""
    return crf_sequence_score(potentials, tags, mask) - crf_log_normalizer(potentials, mask)


def crf_decode(potentials, mask=None):
    """The best tag paths by Viterbi: `(tags (batch, time) int32, 0 at padding; their scores (batch,))`."""
    steps, time_mask, packed = _time_major(potentials, mask)
    k = ops.shape(steps)[-1]
    identity = ops.arange(k, dtype="int32")

    def forward(carry, inputs):
        delta, _ = carry
        potential, valid = _unpack(inputs)
        candidates = delta[:, :, None] + potential  # (batch, prev tag, tag)
        best = ops.max(candidates, axis=1)
        pointers = ops.cast(ops.argmax(candidates, axis=1), "int32")
        # Padding keeps the scores and points every tag to itself, so the backtrack walks through it.
        carry = (ops.where(valid[:, None], best, delta), ops.where(valid[:, None], pointers, identity[None, :]))
        return carry, carry  # (ops.scan stacks outputs shaped like its carry)

    delta = steps[0, :, 0, :]
    (delta, _), (_, pointers) = ops.scan(
        forward, (delta, ops.zeros(ops.shape(delta), "int32")), packed[1:]
    )  # pointers (time - 1, batch, k)
    last = ops.cast(ops.argmax(delta, axis=-1), "int32")

    def backward(tag, step_pointers):
        previous = ops.take_along_axis(step_pointers, tag[:, None], axis=1)[:, 0]
        return previous, tag

    first, later = ops.scan(backward, last, pointers, reverse=True)  # later[t] = tag at step t + 1
    tags = ops.concatenate([first[None, :], later], axis=0)
    tags = ops.transpose(tags, (1, 0))
    tags = ops.where(ops.transpose(time_mask, (1, 0)), tags, 0)
    return tags, ops.max(delta, axis=-1)


@keras.saving.register_keras_serializable(package="keras_tasks")
class CRFLoss(keras.losses.Loss):
    """Negative log-likelihood of the gold tag paths under a `CRF` layer's potentials (the forward algorithm).

    `y_true`: int tags `(batch, time)`, negative at padding (e.g. -1). `y_pred`: the `CRF` layer's potentials
    `(batch, time, num_tags, num_tags)`. The loss of a sentence is `-log p(tags | sentence)`; the default
    reduction averages over sentences.
    """

    def __init__(self, name="crf_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        mask = ops.greater_equal(y_true, 0)
        return -crf_log_likelihood(y_pred, y_true, mask)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}
