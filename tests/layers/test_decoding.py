import itertools
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_tasks.layers.decoding import beam_search, greedy, sample, tile_state

VOCABULARY_SIZE = 7
HIDDEN_DIM = 4
END_ID = 6


# === A toy decoder ===
# A second-order Markov chain: the logits of the next token are table[previous, current].
# `previous` lives in the state, so a beam search that gathers the state by the wrong
# parent scores the wrong continuations.


def make_step_fn(table, calls=None):
    flat_table = ops.convert_to_tensor(table.reshape(VOCABULARY_SIZE * VOCABULARY_SIZE, VOCABULARY_SIZE))

    def step_fn(token_ids, state):
        if calls is not None:
            count_call(calls)
        logits = ops.take(flat_table, state["previous"] * VOCABULARY_SIZE + token_ids, axis=0)
        (history,) = state["memory"]
        history = 0.5 * history + ops.one_hot(token_ids % HIDDEN_DIM, HIDDEN_DIM)
        return logits, {"previous": token_ids, "memory": (history,)}

    return step_fn


def count_call(calls):
    """Appends to `calls` each time the loop runs a step (JAX traces the loop body once, so count at run time)."""
    if keras.backend.backend() == "jax":
        import jax

        jax.debug.callback(lambda: calls.append(1))
    else:
        calls.append(1)


def initial_state(batch):
    return {"previous": ops.zeros((batch,), "int32"), "memory": (ops.zeros((batch, HIDDEN_DIM)),)}


def trap_table():
    """From (0, 1), token 2 is likeliest but leads nowhere; 3 leads to a near-certain 4."""
    table = np.random.default_rng(0).normal(size=(VOCABULARY_SIZE,) * 3).astype("float32")
    table[0, 1] = [0, 0, 3.0, 2.8, 0, 0, 0]
    table[1, 2] = 0.0
    table[1, 3] = [0, 0, 0, 0, 6.0, 0, 0]
    return table


def length_table():
    """From (0, 1): END at once is likeliest, but 2, 3, 4 is a likely longer sentence."""
    table = np.random.default_rng(1).normal(size=(VOCABULARY_SIZE,) * 3).astype("float32") * 0.3
    table[0, 1] = [-3, -3, 2.1, -3, -3, -3, 2.3]
    table[1, 2] = [-3, -3, -3, 3.0, -3, -3, -1]
    table[2, 3] = [-3, -3, -3, -3, 3.0, -3, -1]
    return table


def chain_table(next_token):
    """A near-deterministic first-order chain: token t is followed by next_token[t]."""
    table = np.full((VOCABULARY_SIZE,) * 3, -8.0, "float32")
    for token, successor in enumerate(next_token):
        table[:, token, successor] = 8.0
    return table


def flat_table(logits):
    """Every context gives the same logits: tokens are independent and identically distributed."""
    return np.broadcast_to(np.asarray(logits, "float32"), (VOCABULARY_SIZE,) * 3).copy()


# === Numpy references ===


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def score(table, start, tokens, end_id=None, alpha=0.0):
    """Length-normalised log-probability of `tokens` after `start`, up to and including end_id."""
    log_p = log_softmax(table)
    previous, current, total, length = 0, start, 0.0, 0
    for token in tokens:
        total += log_p[previous, current, token]
        length += 1
        if token == end_id:
            break
        previous, current = current, token
    return total / ((5.0 + length) / 6.0) ** alpha


def numpy_greedy(table, start, max_length):
    previous, current, tokens = 0, start, []
    for _ in range(max_length):
        token = int(np.argmax(table[previous, current]))
        tokens.append(token)
        previous, current = current, token
    return tokens


def all_hypotheses(max_length, end_id=None):
    """Every distinct output of length max_length: after end_id, only padding."""
    hypotheses = set()
    for tokens in itertools.product(range(VOCABULARY_SIZE), repeat=max_length):
        tokens = list(tokens)
        if end_id in tokens:
            stop = tokens.index(end_id) + 1
            tokens = tokens[:stop] + [0] * (max_length - stop)
        hypotheses.add(tuple(tokens))
    return sorted(hypotheses)


def run(decoder, table, start_ids, max_length, **kwargs):
    start_ids = np.asarray(start_ids, "int32")
    outputs = decoder(make_step_fn(table), start_ids, initial_state(len(start_ids)), max_length, **kwargs)
    return tuple(ops.convert_to_numpy(x) for x in outputs)


def chi_square(tokens, probabilities):
    counts = np.bincount(tokens.ravel(), minlength=VOCABULARY_SIZE)
    expected = probabilities * tokens.size
    keep = expected > 0
    assert counts[~keep].sum() == 0, f"sampled impossible tokens: {counts}"
    return float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())


# === Greedy and beam search ===


def test_greedy_follows_the_argmax_chain():
    table = trap_table()
    tokens, lengths = run(greedy, table, [1, 4], 5)
    np.testing.assert_array_equal(tokens, [numpy_greedy(table, 1, 5), numpy_greedy(table, 4, 5)])
    np.testing.assert_array_equal(lengths, [5, 5])
    assert tokens.dtype == np.int32 and lengths.dtype == np.int32


def test_beam_search_finds_the_best_sequence_where_greedy_does_not():
    table = trap_table()
    tokens, scores = run(beam_search, table, [1, 4], 3, beam_size=7)
    greedy_tokens, _ = run(greedy, table, [1, 4], 3)
    for row, start in enumerate([1, 4]):
        best = max(all_hypotheses(3), key=lambda tokens: score(table, start, tokens))
        np.testing.assert_array_equal(tokens[row], best)
        np.testing.assert_allclose(scores[row], score(table, start, best), rtol=1e-5)
    # The table is built so that greedy misses the best sequence of row 0.
    assert score(table, 1, greedy_tokens[0]) < score(table, 1, tokens[0]) - 1.0


def test_every_beam_is_distinct_sorted_and_scored_by_its_own_tokens():
    table = trap_table()
    tokens, scores = run(beam_search, table, [1, 4], 3, beam_size=4, return_all_beams=True)
    assert tokens.shape == (2, 4, 3) and scores.shape == (2, 4)
    for row, start in enumerate([1, 4]):
        assert len({tuple(beam) for beam in tokens[row]}) == 4
        assert np.all(np.diff(scores[row]) <= 0)
        expected = [score(table, start, beam) for beam in tokens[row]]
        np.testing.assert_allclose(scores[row], expected, rtol=1e-5)


@pytest.mark.parametrize("end_id", [None, END_ID])
def test_beam_size_one_is_greedy(end_id):
    for table in (trap_table(), length_table()):
        greedy_tokens, _ = run(greedy, table, [1, 4], 4, end_id=end_id)
        beam_tokens, _ = run(beam_search, table, [1, 4], 4, beam_size=1, end_id=end_id, length_penalty=0.6)
        np.testing.assert_array_equal(beam_tokens, greedy_tokens)


def test_length_penalty_trades_an_early_end_for_a_likelier_long_sentence():
    table = length_table()
    hypotheses = all_hypotheses(3, END_ID)
    found = {}
    for alpha in (0.0, 2.0):
        tokens, scores = run(beam_search, table, [1], 3, beam_size=7, end_id=END_ID, length_penalty=alpha)
        best = max(hypotheses, key=lambda tokens: score(table, 1, tokens, END_ID, alpha))
        np.testing.assert_array_equal(tokens[0], best)
        np.testing.assert_allclose(scores[0], score(table, 1, best, END_ID, alpha), rtol=1e-5)
        found[alpha] = tuple(tokens[0])
    assert found[0.0] == (END_ID, 0, 0)
    assert found[2.0] == (2, 3, 4)


def test_per_row_beam_sizes_and_length_penalties_equal_separate_searches():
    """One batch mixing requests: each row's result is that of a search with its own beam size and alpha."""
    tables = (trap_table(), length_table())
    starts = [1, 4, 1, 2]
    beams, alphas = [1, 4, 2, 7], [0.6, 0.0, 2.0, 1.0]
    for table in tables:
        tokens, scores = run(beam_search, table, starts, 3, beam_size=7, end_id=END_ID,
                             length_penalty=np.array(alphas, "float32"), row_beam_sizes=np.array(beams, "int32"))
        for row, (start, beam, alpha) in enumerate(zip(starts, beams, alphas)):
            alone, alone_scores = run(beam_search, table, [start], 3, beam_size=beam, end_id=END_ID, length_penalty=alpha)
            np.testing.assert_array_equal(tokens[row], alone[0])
            np.testing.assert_allclose(scores[row], alone_scores[0], rtol=1e-5)
        greedy_tokens, _ = run(greedy, table, [1], 3, end_id=END_ID)
        np.testing.assert_array_equal(tokens[0], greedy_tokens[0])  # a beam of 1 is greedy, in a mixed batch too


def test_beam_size_may_be_a_tensor_inside_a_graph():
    """A serving signature takes the beam size from the request (TensorFlow backend)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("a tensor beam size sets shapes at run time: TensorFlow graphs only")
    table = trap_table()

    @tf.function
    def search(beam_size):
        return beam_search(make_step_fn(table), np.array([1, 4], "int32"), initial_state(2), 3, beam_size,
                           end_id=END_ID, length_penalty=0.6)

    for beam in (1, 3, 7):
        tokens, scores = (x.numpy() for x in search(tf.constant(beam)))
        expected, expected_scores = run(beam_search, table, [1, 4], 3, beam_size=beam, end_id=END_ID, length_penalty=0.6)
        np.testing.assert_array_equal(tokens, expected)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)


def test_beam_search_stops_once_every_beam_has_ended():
    # Every context ends at once, except the start of row 0, which prefers 3, then 5.
    table = np.full((VOCABULARY_SIZE,) * 3, -8.0, "float32")
    table[..., END_ID] = 8.0
    table[0, 1] = [-8, -8, -8, 8.0, -8, 7.0, -8]
    calls = []
    tokens, scores = beam_search(
        make_step_fn(table, calls), np.array([1, 2], "int32"), initial_state(2), 6, beam_size=2, end_id=END_ID
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(tokens), [[3, END_ID, 0, 0, 0, 0], [END_ID, 0, 0, 0, 0, 0]])
    expected = [score(table, 1, [3, END_ID], END_ID), score(table, 2, [END_ID], END_ID)]
    np.testing.assert_allclose(ops.convert_to_numpy(scores), expected, rtol=1e-4, atol=1e-6)
    assert len(calls) == 2


# === End of sequence ===


def test_end_id_stops_rows_and_their_lengths():
    table = chain_table([0, 3, END_ID, 5, 0, END_ID, 0])
    calls = []
    tokens, lengths = greedy(make_step_fn(table, calls), np.array([1, 2], "int32"), initial_state(2), 6, end_id=END_ID)
    np.testing.assert_array_equal(ops.convert_to_numpy(tokens), [[3, 5, END_ID, 0, 0, 0], [END_ID, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(ops.convert_to_numpy(lengths), [3, 1])
    assert len(calls) == 3  # the loop stops once both rows have ended


def test_sampled_rows_stop_at_their_end_token():
    table = flat_table([0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.6])
    tokens, lengths = run(sample, table, np.ones(64), 5, seed=3, end_id=END_ID)
    for row, length in zip(tokens, lengths):
        ends = np.flatnonzero(row == END_ID)
        expected_length = ends[0] + 1 if len(ends) else 5
        assert length == expected_length
        assert np.all(row[expected_length:] == 0)
        assert END_ID not in row[: expected_length - 1]
    assert 0 < (lengths < 5).sum() < 64


# === Sampling ===


def test_seeded_sampling_is_deterministic_and_seeds_differ():
    table = flat_table(np.zeros(VOCABULARY_SIZE))
    first, _ = run(sample, table, [1, 1], 8, seed=42)
    again, _ = run(sample, table, [1, 1], 8, seed=42)
    other, _ = run(sample, table, [1, 1], 8, seed=43)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first[0], first[1])  # rows of one batch get their own draws


def test_tiny_temperature_and_top_k_one_are_greedy():
    table = trap_table()
    expected, _ = run(greedy, table, [1, 4], 6)
    cold, _ = run(sample, table, [1, 4], 6, temperature=1e-6, seed=5)
    zero, _ = run(sample, table, [1, 4], 6, temperature=0.0, seed=5)
    top_one, _ = run(sample, table, [1, 4], 6, top_k=1, seed=5)
    np.testing.assert_array_equal(cold, expected)
    np.testing.assert_array_equal(zero, expected)
    np.testing.assert_array_equal(top_one, expected)


def test_per_row_temperature_top_k_and_seed():
    """A serving batch mixes requests: each row has its own settings, and its text does not depend on its neighbours."""
    table = trap_table()
    expected, _ = run(greedy, table, [1, 4], 6)
    mixed, _ = run(sample, table, [1, 4], 6, temperature=np.array([0.0, 1.0], "float32"),
                   top_k=np.array([0, 1], "int32"), seed=np.array([5, 6], "int32"))
    np.testing.assert_array_equal(mixed, expected)  # row 0 by temperature 0, row 1 by top_k 1
    flat = flat_table(np.zeros(VOCABULARY_SIZE))
    seeds = np.array([11, 12, 13], "int32")
    together, _ = run(sample, flat, [1, 1, 1], 8, seed=seeds)
    alone, _ = run(sample, flat, [1], 8, seed=seeds[2:])
    np.testing.assert_array_equal(together[2], alone[0])
    assert len({tuple(row) for row in together}) == 3
    truncated, _ = run(sample, flat_table(np.log(PROBABILITIES)), [1] * 200, 1, top_k=np.array([2] * 100 + [0] * 100, "int32"),
                       seed=np.arange(200, dtype="int32"))
    assert set(truncated[:100, 0]) <= {0, 1} and len(set(truncated[100:, 0])) > 2


PROBABILITIES = np.array([0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05])
ROWS = 3000
CHI_SQUARE_6_DOF_P001 = 22.46


def test_sampling_frequencies_follow_the_softmax():
    table = flat_table(np.log(PROBABILITIES))
    tokens, _ = run(sample, table, np.ones(ROWS), 2, seed=1)
    for step in range(2):
        assert chi_square(tokens[:, step], PROBABILITIES) < CHI_SQUARE_6_DOF_P001
    # Steps draw independently: two equal tokens in a row as often as sum(p^2).
    np.testing.assert_allclose(np.mean(tokens[:, 0] == tokens[:, 1]), np.sum(PROBABILITIES**2), atol=0.035)


def test_temperature_sharpens_and_top_k_truncates():
    table = flat_table(np.log(PROBABILITIES))
    sharp, _ = run(sample, table, np.ones(ROWS), 1, temperature=0.5, seed=2)
    sharpened = PROBABILITIES**2 / np.sum(PROBABILITIES**2)
    assert chi_square(sharp, sharpened) < CHI_SQUARE_6_DOF_P001
    assert np.mean(sharp == 0) > PROBABILITIES[0] + 0.1

    top, _ = run(sample, table, np.ones(ROWS), 1, top_k=3, seed=4)
    truncated = np.where(np.arange(VOCABULARY_SIZE) < 3, PROBABILITIES, 0.0)
    assert chi_square(top, truncated / truncated.sum()) < CHI_SQUARE_6_DOF_P001


# === Inside a tf.function ===


def tensorflow_backend_only(reason):
    return pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason=reason)


@tensorflow_backend_only("a tf.function graph; test_jax_backend_decodes_the_same_tokens_under_jit checks jax.jit")
def test_one_graph_loop_with_tensor_arguments_matches_eager():
    table = length_table()
    calls = []
    step_fn = make_step_fn(table, calls)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32),
        ]
    )
    def decode(start_ids, max_length, temperature, top_k, seed):
        state = initial_state(tf.shape(start_ids)[0])
        return (
            sample(step_fn, start_ids, state, max_length, temperature, top_k, seed, end_id=END_ID)
            + greedy(step_fn, start_ids, state, max_length, end_id=END_ID)
            + beam_search(step_fn, start_ids, state, max_length, beam_size=3, end_id=END_ID, length_penalty=0.6)
        )

    start_ids = np.array([1, 4, 2], "int32")
    for max_length, temperature, top_k, seed in [(4, 1.0, 0, 11), (5, 0.7, 2, 12), (3, 0.0, 0, 13), (6, 2.0, 1, 14)]:
        graph = decode(start_ids, max_length, temperature, top_k, seed)
        eager = (
            run(sample, table, start_ids, max_length, temperature=temperature, top_k=top_k, seed=seed, end_id=END_ID)
            + run(greedy, table, start_ids, max_length, end_id=END_ID)
            + run(beam_search, table, start_ids, max_length, beam_size=3, end_id=END_ID, length_penalty=0.6)
        )
        for got, expected in zip(graph, eager):
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
            assert got.shape[-1:] == expected.shape[-1:]
    # Traced once, and step_fn ran once per decoder at tracing: one graph loop each, not a call per token.
    assert decode.experimental_get_tracing_count() == 1
    assert len(calls) == 3


# === Helpers and other backends ===


def test_tile_state_repeats_each_row_beam_size_times():
    state = {"hidden": np.arange(6, dtype="float32").reshape(2, 3), "ids": (np.array([5, 6], "int32"),)}
    tiled = tile_state(state, 3)
    np.testing.assert_array_equal(ops.convert_to_numpy(tiled["hidden"]), np.repeat(state["hidden"], 3, axis=0))
    np.testing.assert_array_equal(ops.convert_to_numpy(tiled["ids"][0]), [5, 5, 5, 6, 6, 6])


JAX_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    sys.path.insert(0, sys.argv[1])
    import test_decoding as t

    table = t.length_table()
    start_ids = np.array([1, 4, 2], "int32")
    step_fn = t.make_step_fn(table)

    @jax.jit
    def decode(temperature, top_k, seed):
        state = t.initial_state(3)
        return (
            t.sample(step_fn, start_ids, state, 5, temperature, top_k, seed, end_id=t.END_ID)
            + t.greedy(step_fn, start_ids, state, 5, end_id=t.END_ID)
            + t.beam_search(step_fn, start_ids, state, 5, beam_size=3, end_id=t.END_ID, length_penalty=0.6)
        )

    print(json.dumps([np.asarray(x).tolist() for x in decode(np.float32(0.8), np.int32(3), np.int32(21))]))
    """
)


@tensorflow_backend_only("compares JAX (in a subprocess) with the TensorFlow session's eager decoding")
def test_jax_backend_decodes_the_same_tokens_under_jit():
    environment = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, os.path.dirname(__file__)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jax_outputs = json.loads(result.stdout.strip().splitlines()[-1])
    table = length_table()
    start_ids = np.array([1, 4, 2], "int32")
    expected = (
        run(sample, table, start_ids, 5, temperature=0.8, top_k=3, seed=21, end_id=END_ID)
        + run(greedy, table, start_ids, 5, end_id=END_ID)
        + run(beam_search, table, start_ids, 5, beam_size=3, end_id=END_ID, length_penalty=0.6)
    )
    for got, want in zip(jax_outputs, expected):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
