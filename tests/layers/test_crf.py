"""CRF: the forward algorithm and Viterbi against brute-force enumeration of every tag path, constraints, training."""

import itertools

import keras
import numpy as np
from test_case import run_layer_test

from keras_tasks.layers import CRF, CharacterEncoder, CRFLoss, crf_decode
from keras_tasks.layers.crf import crf_log_normalizer, crf_sequence_score
from keras_tasks.pipelines import conll

K, B, T = 3, 2, 4


def path_scores(layer, emissions, length):
    """Every path of `length` tags and its score, from the layer's weights (brute force)."""
    transitions, start, end = (keras.ops.convert_to_numpy(w) for w in (layer.transitions, layer.start, layer.end))
    if layer.allowed is not None:
        allowed_start, allowed_transitions, allowed_end = (np.array(a) for a in layer.allowed)
        start = np.where(allowed_start, start, -1e4)
        transitions = np.where(allowed_transitions, transitions, -1e4)
        end = np.where(allowed_end, end, -1e4)
    scores = {}
    for path in itertools.product(range(layer.num_tags), repeat=length):
        score = start[path[0]] + end[path[-1]] + sum(emissions[t, tag] for t, tag in enumerate(path))
        scores[path] = score + sum(transitions[a, b] for a, b in zip(path, path[1:]))
    return scores


def tiny(allowed=None, seed=0):
    rng = np.random.default_rng(seed)
    emissions = rng.normal(size=(B, T, K)).astype("float32")
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
    layer = CRF(K, allowed=allowed)
    layer.build((None, None, K))
    for weight in (layer.start, layer.end):
        weight.assign(rng.normal(size=(K,)))
    return layer, emissions, mask


def test_forward_algorithm_and_viterbi_equal_brute_force():
    for seed in range(3):
        layer, emissions, mask = tiny(seed=seed)
        potentials = layer(emissions, mask=mask)
        log_z = keras.ops.convert_to_numpy(crf_log_normalizer(potentials, mask))
        tags, best = (keras.ops.convert_to_numpy(x) for x in crf_decode(potentials, mask))
        for i in range(B):
            length = int(mask[i].sum())
            scores = path_scores(layer, emissions[i], length)
            values = np.array(list(scores.values()), "float64")
            np.testing.assert_allclose(log_z[i], np.log(np.exp(values).sum()), rtol=1e-5)
            path = max(scores, key=scores.get)
            assert tags[i].tolist() == list(path) + [0] * (T - length)
            np.testing.assert_allclose(best[i], scores[path], rtol=1e-5)
            # The gold score of any path, padding ignored.
            other = np.array(list(itertools.islice(scores, 5, 6))[0] + (2,) * (T - length))
            score = crf_sequence_score(potentials, np.stack([other, other]), mask)
            np.testing.assert_allclose(keras.ops.convert_to_numpy(score)[i], scores[tuple(other[:length])], rtol=1e-5)


def test_loss_is_the_mean_negative_log_likelihood_and_ignores_padding():
    layer, emissions, mask = tiny()
    potentials = layer(emissions, mask=mask)
    tags = np.array([[0, 2, 1, 1], [2, 0, -1, -1]])
    expected = []
    for i in range(B):
        length = int(mask[i].sum())
        scores = path_scores(layer, emissions[i], length)
        log_z = np.log(np.exp(np.array(list(scores.values()), "float64")).sum())
        expected.append(log_z - scores[tuple(tags[i, :length])])
    loss = keras.ops.convert_to_numpy(CRFLoss()(tags, potentials))
    np.testing.assert_allclose(loss, np.mean(expected), rtol=1e-5)
    assert CRFLoss.from_config(CRFLoss().get_config()).name == "crf_loss"


def test_constrained_decoding_never_uses_a_forbidden_transition():
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    allowed = conll.allowed_transitions(tags, "iob2")
    rng = np.random.default_rng(1)
    layer = CRF(len(tags), allowed=allowed)
    emissions = rng.normal(size=(64, 6, len(tags))).astype("float32")
    emissions[:, :, [2, 4]] += 3.0  # the I- tags score best: an unconstrained decoder would start entities with I-
    mask = np.arange(6)[None, :] < rng.integers(1, 7, size=(64, 1))
    decoded = keras.ops.convert_to_numpy(crf_decode(layer(emissions, mask=mask), mask)[0])
    for row, row_mask in zip(decoded, mask):
        names = [tags[t] for t in row[row_mask]]
        assert conll.check_tags(names, "iob2") is None, names
    free = keras.ops.convert_to_numpy(crf_decode(CRF(len(tags))(emissions, mask=mask), mask)[0])
    assert any(conll.check_tags([tags[t] for t in row[m]], "iob2") is not None for row, m in zip(free, mask))
    layer, emissions, mask = tiny(allowed=conll.allowed_transitions(["O", "B-X", "I-X"], "iob2"))
    scores = path_scores(layer, emissions[0], T)
    path = max(scores, key=scores.get)
    assert keras.ops.convert_to_numpy(crf_decode(layer(emissions, mask=mask), mask)[0])[0].tolist() == list(path)


def test_crf_layer(tmp_path):
    allowed = conll.allowed_transitions(["O", "B-X", "I-X"], "iob2")
    data = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    layer = run_layer_test(
        CRF, {"num_tags": 3, "allowed": allowed}, data, (2, 5, 3, 3), expected_num_trainable_weights=3,
        tmp_path=tmp_path,
    )
    assert CRF.from_config(layer.get_config()).allowed == layer.allowed


def test_crf_trains_through_compile_and_fit():
    """Tags copied from the input's argmax are learnt by model.fit with CRFLoss (no custom train step)."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 4, size=(64, 5))
    ids[::3, 3:] = 0  # padding
    tags = np.where(ids > 0, ids - 1, -1)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(4, 4, mask_zero=True)(inputs)
    x = keras.layers.Dense(3)(x)
    model = keras.Model(inputs, CRF(3)(x))
    model.compile(keras.optimizers.Adam(0.05), loss=CRFLoss())
    history = model.fit(ids, tags, epochs=30, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    decoded = keras.ops.convert_to_numpy(crf_decode(model.predict(ids, verbose=0), ids > 0)[0])
    np.testing.assert_array_equal(decoded, np.maximum(tags, 0))


def test_character_encoders():
    data = np.random.default_rng(0).integers(0, 6, size=(2, 5, 4)).astype("int32")
    data[0, 4] = 0  # a padded word
    for encoder, size in (("cnn", 6), ("lstm", 8)):
        init = {"vocabulary_size": 6, "embedding_dim": 4, "encoder": encoder, "filters": 6, "hidden_dim": 4}
        layer = run_layer_test(CharacterEncoder, init, data, (2, 5, size))
        out = keras.ops.convert_to_numpy(layer(data))
        assert np.all(out[0, 4] == 0)
        # A word's vector depends on its own characters only, not on its padding.
        wider = np.concatenate([data, np.zeros((2, 5, 3), "int32")], axis=2)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(wider)), out, atol=1e-5)
