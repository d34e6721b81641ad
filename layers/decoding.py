"""Autoregressive decoding loops: sampling, greedy search and beam search.

Every loop drives a user-supplied `step_fn(token_ids, state) -> (logits, state)`
with one `keras.ops.while_loop`, so a whole decode is one graph loop inside a
`tf.function` (an exported SavedModel endpoint) and one `lax.while_loop` under
JAX. The loops know nothing about the model: `step_fn` owns the embedding, the
recurrence or the attention cache, and `state` is any nested structure (tuple,
list, dict) of tensors whose first axis is the batch.

`max_length`, `temperature`, `top_k` and `seed` may be scalar tensors, so a
serving signature can take them from the request. Under JAX, `max_length` must
be a Python int because it sets the output shape.

Randomness. Keras 3.15's `keras.random` accepts only a Python int or a
`keras.random.SeedGenerator` as `seed` on the TensorFlow backend: a seed tensor
raises `ValueError`, eagerly and inside a `tf.function`. A `SeedGenerator`
keeps its state in a variable, which a SavedModel endpoint would share between
concurrent requests, and it cannot take a per-request seed. Sampling therefore
uses the Gumbel-max trick with counter-based noise computed here with integer
`keras.ops`: the noise of a cell is a hash of (seed, step, row, token), so the
same seed gives the same tokens on every call, in eager mode, in a graph, and
on every backend.
"""

import random as python_random

import keras
from keras import ops

# Log-probability of impossible candidates. Finite, so that differences and
# sums of scores never produce NaN the way `-inf - -inf` would.
_IMPOSSIBLE = -1e9
# At or below this temperature, sampling is exactly greedy (argmax).
_MIN_TEMPERATURE = 1e-5
# Written after a row's end token.
_PAD_ID = 0
# Multipliers of a 32-bit integer hash (Wellons' "lowbias32"), as int32 bit patterns.
_HASH_MULTIPLIERS = (0x7FEB352D, 0x846CA68B - (1 << 32))


def tile_state(state, beam_size):
    """Repeat every tensor of a decoding state `beam_size` times along the batch axis.

    Row `b` of the input becomes rows `b * beam_size ... b * beam_size +
    beam_size - 1` of the output, the layout `beam_search` uses for its
    flattened `(batch * beam_size, ...)` state. Use it to tile tensors that
    `step_fn` closes over, such as an encoder output or its padding mask.

    Args:
        state: a tensor or a nested structure (tuple, list, dict) of tensors,
            each with the batch as first axis.
        beam_size: int, the number of copies of each row.

    Returns:
        The same structure, each tensor of shape `(batch * beam_size, ...)`.

    Example:
    >>> state = {"hidden": np.array([[1.0, 2.0], [3.0, 4.0]])}
    >>> keras.ops.convert_to_numpy(tile_state(state, 2)["hidden"])
    array([[1., 2.],
           [1., 2.],
           [3., 4.],
           [3., 4.]])
    """
    return keras.tree.map_structure(lambda x: ops.repeat(x, beam_size, axis=0), state)


def greedy(step_fn, start_ids, state, max_length, end_id=None):
    """Greedy decoding: feed back the most likely token at every step.

    Args:
        step_fn: callable `(token_ids, state) -> (logits, state)`. `token_ids`
            is int32 `(batch,)`, the token to consume; `logits` is float
            `(batch, vocabulary_size)`, the scores of the next token; the
            returned state has the structure, shapes and dtypes of `state`.
        start_ids: int tensor `(batch,)`, the first token fed to `step_fn`
            (e.g. a start-of-sequence id, or the last token of a prompt whose
            other tokens are already folded into `state`).
        state: nested structure of tensors with the batch as first axis, or
            `()`.
        max_length: int or scalar int tensor, the number of tokens to generate.
        end_id: optional int or scalar int tensor. A row that emits it stops:
            its later positions hold 0 and its length stops growing. The loop
            ends early once every row has stopped.

    Returns:
        A tuple `(token_ids, lengths)`: int32 `(batch, max_length)` generated
        tokens (the start token is not included) and int32 `(batch,)` the
        number of tokens of each row, its end token included.

    Example:
    >>> transitions = np.log(np.array([[0.1, 0.9], [0.8, 0.2]], "float32"))
    >>> def step_fn(token_ids, state):
    ...     return keras.ops.take(transitions, token_ids, axis=0), state
    >>> token_ids, lengths = greedy(step_fn, np.array([0]), (), max_length=4)
    >>> keras.ops.convert_to_numpy(token_ids)
    array([[1, 0, 1, 0]], dtype=int32)
    """

    def choose(logits, step):
        return ops.cast(ops.argmax(logits, axis=-1), "int32")

    return _decode(step_fn, start_ids, state, max_length, end_id, choose)


def sample(
    step_fn,
    start_ids,
    state,
    max_length,
    temperature=1.0,
    top_k=0,
    seed=None,
    end_id=None,
):
    """Ancestral sampling with temperature and optional top-k truncation.

    At every step the next token is drawn from `softmax(logits / temperature)`,
    restricted to the `top_k` highest logits when `top_k > 0` (tokens tied with
    the k-th highest logit are kept too). A temperature at or below `1e-5`, or
    `top_k == 1`, is exactly greedy decoding. The draw for (row, step) depends
    only on `seed`, the step, the row's position in the batch and the logits,
    so the same seed always gives the same tokens.

    Args:
        step_fn: callable `(token_ids, state) -> (logits, state)`, as in
            `greedy`.
        start_ids: int tensor `(batch,)`, the first token fed to `step_fn`.
        state: nested structure of tensors with the batch as first axis, or
            `()`.
        max_length: int or scalar int tensor, the number of tokens to generate.
        temperature: float, scalar float tensor, or `(batch,)` tensor (one per
            row); below 1 sharpens the distribution, above 1 flattens it.
        top_k: int, scalar int tensor, or `(batch,)` tensor; 0 samples from the
            whole vocabulary.
        seed: int, scalar int tensor (taken modulo 2**32), or `(batch,)` int
            tensor of per-row seeds (a row's draws then depend on its own seed
            only, not on its place in the batch). `None` draws a
            fresh Python seed when this function runs: inside a traced function
            that happens once, at tracing, so pass a seed tensor there.
        end_id: optional int or scalar int tensor, as in `greedy`.

    Returns:
        A tuple `(token_ids, lengths)`, as in `greedy`.

    Example:
    >>> logits = np.log(np.array([[0.5, 0.3, 0.2]] * 3, "float32"))
    >>> def step_fn(token_ids, state):
    ...     return keras.ops.take(logits, token_ids, axis=0), state
    >>> token_ids, lengths = sample(
    ...     step_fn, np.array([0, 0]), (), max_length=5, top_k=2, seed=7
    ... )
    >>> tuple(token_ids.shape)
    (2, 5)
    """
    if seed is None:
        seed = python_random.randint(0, (1 << 31) - 1)
    seed = _as_int32_seed(seed)
    temperature = ops.convert_to_tensor(temperature, "float32")
    if not isinstance(top_k, int):
        top_k = ops.cast(top_k, "int32")

    def choose(logits, step):
        logits = ops.cast(logits, "float32")
        greedy_ids = ops.cast(ops.argmax(logits, axis=-1), "int32")
        # A (batch,) temperature scales each row by its own value.
        row_temperature = temperature if len(temperature.shape) == 0 else ops.expand_dims(temperature, -1)
        scaled = _keep_top_k(logits / ops.maximum(row_temperature, _MIN_TEMPERATURE), top_k)
        noise = _gumbel_noise(ops.shape(logits)[0], ops.shape(logits)[-1], seed, step)
        sampled = ops.cast(ops.argmax(scaled + noise, axis=-1), "int32")
        use_greedy = ops.logical_or(temperature <= _MIN_TEMPERATURE, top_k == 1)
        return ops.where(use_greedy, greedy_ids, sampled)

    return _decode(step_fn, start_ids, state, max_length, end_id, choose)


def beam_search(
    step_fn,
    start_ids,
    state,
    max_length,
    beam_size,
    end_id=None,
    length_penalty=0.0,
    return_all_beams=False,
    row_beam_sizes=None,
):
    """Beam search with GNMT length normalisation.

    The batch is flattened to `batch * beam_size` rows: `state` is tiled on
    entry (`tile_state`) and, at every step, every tensor of the state returned
    by `step_fn` is gathered by the parent beam of each surviving hypothesis.
    The first step expands beam 0 only, so the beams start distinct. A
    hypothesis that has emitted `end_id` stays in the beam with its score and
    writes 0s; the loop ends early once every beam of every row has ended.
    Hypotheses are ranked by `log_prob / ((5 + length) / 6) ** length_penalty`
    (Wu et al., 2016), where `length` counts the end token. With
    `length_penalty=0` the score is the summed log-probability, and
    `beam_size=1` gives exactly `greedy`.

    Args:
        step_fn: callable `(token_ids, state) -> (logits, state)`, as in
            `greedy`, called on `batch * beam_size` rows. Tensors that it
            closes over and that have a batch axis (an encoder output) must be
            tiled with `tile_state` first.
        start_ids: int tensor `(batch,)`, the first token fed to `step_fn`.
        state: nested structure of tensors with the batch as first axis, or
            `()`.
        max_length: int or scalar int tensor, the number of tokens to generate.
        beam_size: int, the number of hypotheses kept per row. A scalar int
            tensor also works on the TensorFlow backend (a serving signature
            whose beam size comes from the request).
        end_id: optional int or scalar int tensor: the token that ends a
            hypothesis.
        length_penalty: float, scalar float tensor, or `(batch,)` tensor (one
            `alpha` per row).
        return_all_beams: bool; when `True` return every beam, best first.
        row_beam_sizes: optional int tensor `(batch,)` of beam sizes from 1 to
            `beam_size`: row `b` then keeps only its best `row_beam_sizes[b]`
            hypotheses, which gives exactly a search of that size (the other
            slots hold impossible hypotheses), so one batch can mix requests
            with different beam sizes.

    Returns:
        A tuple `(token_ids, scores)`: int32 `(batch, max_length)` the best
        hypothesis of each row (0 after its end token) and float32 `(batch,)`
        its length-normalised log-probability. With `return_all_beams=True`,
        shapes `(batch, beam_size, max_length)` and `(batch, beam_size)`.

    Example:
    >>> transitions = np.log(np.array([[0.1, 0.9], [0.8, 0.2]], "float32"))
    >>> def step_fn(token_ids, state):
    ...     return keras.ops.take(transitions, token_ids, axis=0), state
    >>> token_ids, scores = beam_search(
    ...     step_fn, np.array([0]), (), max_length=3, beam_size=2
    ... )
    >>> keras.ops.convert_to_numpy(token_ids)
    array([[1, 0, 1]], dtype=int32)
    """
    if isinstance(beam_size, int):
        if beam_size < 1:
            raise ValueError(f"`beam_size` must be at least 1. Received: beam_size={beam_size}")
    else:
        beam_size = ops.cast(beam_size, "int32")
    if end_id is not None:
        end_id = ops.cast(end_id, "int32")
    length_penalty = ops.convert_to_tensor(length_penalty, "float32")
    if len(length_penalty.shape) == 1:  # one alpha per row, against (batch, beam[, vocabulary]) lengths
        length_penalty = ops.expand_dims(length_penalty, -1)

    start_ids = ops.cast(start_ids, "int32")
    batch = ops.shape(start_ids)[0]
    positions = ops.arange(max_length, dtype="int32")
    # Row b's beams sit at flat rows b * beam_size + k.
    row_offsets = ops.expand_dims(ops.arange(batch, dtype="int32") * beam_size, 1)

    def normalise(log_probs, lengths):
        alpha = length_penalty
        if len(alpha.shape) == 2 and len(lengths.shape) == 3:
            alpha = ops.expand_dims(alpha, -1)
        penalty = ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, alpha)
        return log_probs / penalty

    if row_beam_sizes is not None:
        # Slots past a row's own beam size are impossible from the start and never chosen again.
        outside = ops.expand_dims(ops.arange(beam_size, dtype="int32"), 0) >= ops.expand_dims(
            ops.cast(row_beam_sizes, "int32"), 1
        )  # (batch, beam)

    def gather_beams(x, beam_ids):
        """Rows of a flat `(batch * beam, ...)` tensor, picked per row by beam_ids `(batch, beam)`."""
        flat_rows = ops.reshape(beam_ids + row_offsets, (-1,))
        return ops.take(x, flat_rows, axis=0)

    def gather_sequences(sequences, beam_ids):
        flat = ops.reshape(sequences, (batch * beam_size, -1))  # (batch * beam, max_length)
        return ops.reshape(gather_beams(flat, beam_ids), ops.shape(sequences))

    def condition(step, token_ids, state, sequences, log_probs, lengths, finished):
        return ops.logical_and(step < max_length, ops.logical_not(ops.all(finished)))

    def body(step, token_ids, state, sequences, log_probs, lengths, finished):
        logits, new_state = step_fn(token_ids, state)
        state = _same_structure(state, new_state)
        vocabulary_size = ops.shape(logits)[-1]
        log_p = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        log_p = ops.reshape(log_p, (batch, beam_size, vocabulary_size))
        if end_id is not None:
            # An ended hypothesis has one continuation, at no cost: it keeps its score.
            only_end = ops.where(ops.arange(vocabulary_size, dtype="int32") == end_id, 0.0, _IMPOSSIBLE)
            log_p = ops.where(ops.expand_dims(finished, -1), only_end, log_p)
        totals = ops.expand_dims(log_probs, -1) + log_p  # (batch, beam, vocabulary)
        candidate_lengths = lengths + ops.cast(ops.logical_not(finished), "int32")
        scores = normalise(totals, ops.expand_dims(candidate_lengths, -1))
        _, best = ops.top_k(ops.reshape(scores, (batch, -1)), k=beam_size)  # (batch, beam)
        best = ops.cast(best, "int32")
        parents = ops.floor_divide(best, vocabulary_size)
        next_ids = ops.mod(best, vocabulary_size)

        log_probs = ops.take_along_axis(ops.reshape(totals, (batch, -1)), best, axis=1)
        lengths = ops.take_along_axis(candidate_lengths, parents, axis=1)
        parent_finished = ops.take_along_axis(ops.cast(finished, "int32"), parents, axis=1) > 0
        if row_beam_sizes is not None:
            log_probs = ops.where(outside, _IMPOSSIBLE, log_probs)
            parent_finished = ops.logical_or(parent_finished, outside)
        next_ids = ops.where(parent_finished, _PAD_ID, next_ids)
        if end_id is not None:
            finished = ops.logical_or(parent_finished, next_ids == end_id)
        state = keras.tree.map_structure(lambda x: gather_beams(x, parents), state)
        sequences = gather_sequences(sequences, parents)
        sequences = ops.where(positions == step, ops.expand_dims(next_ids, -1), sequences)
        return step + 1, ops.reshape(next_ids, (-1,)), state, sequences, log_probs, lengths, finished

    first_beam_only = ops.where(ops.arange(beam_size) == 0, 0.0, _IMPOSSIBLE)
    loop_vars = (
        ops.convert_to_tensor(0, "int32"),
        ops.repeat(start_ids, beam_size, axis=0),
        tile_state(state, beam_size),
        ops.zeros((batch, beam_size, max_length), "int32"),
        ops.zeros((batch, 1), "float32") + ops.cast(first_beam_only, "float32"),
        ops.zeros((batch, beam_size), "int32"),
        ops.zeros((batch, beam_size), "bool"),
    )
    _, _, _, sequences, log_probs, lengths, _ = ops.while_loop(condition, body, loop_vars)

    scores, order = ops.top_k(normalise(log_probs, lengths), k=beam_size)  # best first
    sequences = gather_sequences(sequences, ops.cast(order, "int32"))
    if return_all_beams:
        return sequences, scores
    return sequences[:, 0], scores[:, 0]


def _decode(step_fn, start_ids, state, max_length, end_id, choose):
    """The loop shared by `greedy` and `sample`; `choose(logits, step)` picks the next ids."""
    start_ids = ops.cast(start_ids, "int32")
    if end_id is not None:
        end_id = ops.cast(end_id, "int32")
    batch = ops.shape(start_ids)[0]
    positions = ops.arange(max_length, dtype="int32")

    def condition(step, token_ids, state, output, lengths, finished):
        return ops.logical_and(step < max_length, ops.logical_not(ops.all(finished)))

    def body(step, token_ids, state, output, lengths, finished):
        logits, new_state = step_fn(token_ids, state)
        state = _same_structure(state, new_state)
        next_ids = ops.where(finished, _PAD_ID, choose(logits, step))
        lengths = lengths + ops.cast(ops.logical_not(finished), "int32")
        if end_id is not None:
            finished = ops.logical_or(finished, next_ids == end_id)
        output = ops.where(positions == step, ops.expand_dims(next_ids, -1), output)
        return step + 1, next_ids, state, output, lengths, finished

    loop_vars = (
        ops.convert_to_tensor(0, "int32"),
        start_ids,
        state,
        ops.zeros((batch, max_length), "int32"),
        ops.zeros((batch,), "int32"),
        ops.zeros((batch,), "bool"),
    )
    _, _, _, output, lengths, _ = ops.while_loop(condition, body, loop_vars)
    return output, lengths


def _same_structure(state, new_state):
    # Loops require identical structures; accept a list where a tuple went in.
    return keras.tree.pack_sequence_as(state, keras.tree.flatten(new_state))


def _keep_top_k(logits, top_k):
    """Sets every logit below the `top_k`-th highest of its row to -inf; `top_k == 0` keeps all.

    `top_k` is an int, a scalar tensor, or a `(batch,)` tensor (one k per row).
    """

    def truncate():
        vocabulary_size = ops.shape(logits)[-1]
        k = ops.minimum(ops.maximum(top_k, 1), vocabulary_size)
        k = ops.broadcast_to(ops.reshape(k, (-1, 1)), (ops.shape(logits)[0], 1))  # (batch, 1)
        descending = ops.flip(ops.sort(logits, axis=-1), axis=-1)
        kth_highest = ops.take_along_axis(descending, k - 1, axis=1)  # (batch, 1)
        off = ops.reshape(top_k <= 0, (-1, 1))  # rows with top_k == 0 keep everything
        return ops.where(ops.logical_or(off, logits >= kth_highest), logits, float("-inf"))

    if isinstance(top_k, int):
        return truncate() if top_k > 0 else logits
    if len(top_k.shape) == 0:
        return ops.cond(top_k > 0, truncate, lambda: logits)
    return truncate()


def _as_int32_seed(seed):
    """A scalar int32 seed, or a `(batch,)` int32 vector of per-row seeds."""
    if isinstance(seed, int):
        # The int32 with the same low 32 bits.
        return ops.convert_to_tensor(((seed & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000, "int32")
    seed = ops.cast(seed, "int32")
    return seed if len(seed.shape) == 1 else ops.reshape(seed, ())


def _shift_right(x, bits):
    # `right_shift` sign-extends int32; the mask makes it a logical (uint32) shift.
    return ops.bitwise_and(ops.right_shift(x, bits), (1 << (32 - bits)) - 1)


def _hash(x):
    """A 32-bit integer hash on int32 bit patterns (multiplication wraps on every backend)."""
    x = ops.bitwise_xor(x, _shift_right(x, 16))
    x = ops.multiply(x, _HASH_MULTIPLIERS[0])
    x = ops.bitwise_xor(x, _shift_right(x, 15))
    x = ops.multiply(x, _HASH_MULTIPLIERS[1])
    return ops.bitwise_xor(x, _shift_right(x, 16))


def _gumbel_noise(batch, vocabulary_size, seed, step):
    """Standard Gumbel noise `(batch, vocabulary_size)`, a pure function of (seed, step, row, token).

    With a `(batch,)` seed each row's noise depends on its own seed only (not on its place in
    the batch), so a request gives the same text however a server batches it with others.
    """
    per_row = len(seed.shape) == 1
    step_key = _hash(_hash(seed) + step)
    # A second, independent key: xor-ing one key into consecutive cell numbers
    # only permutes them, so one key alone would repeat noise across steps.
    mix_key = _hash(ops.bitwise_xor(step_key, 0x2545F491))
    tokens = ops.expand_dims(ops.arange(vocabulary_size, dtype="int32"), 0)
    if per_row:
        cells = ops.broadcast_to(tokens, (batch, vocabulary_size))
        step_key, mix_key = ops.expand_dims(step_key, 1), ops.expand_dims(mix_key, 1)
    else:
        cells = ops.expand_dims(ops.arange(batch, dtype="int32") * vocabulary_size, 1) + tokens  # (batch, vocabulary)
    bits = _hash(ops.bitwise_xor(_hash(ops.bitwise_xor(cells, step_key)), mix_key))
    # The top 24 bits give a float32-exact uniform strictly inside (0, 1).
    uniform = (ops.cast(_shift_right(bits, 8), "float32") + 0.5) * (1.0 / (1 << 24))
    return -ops.log(-ops.log(uniform))
