"""BahdanauAttention, LuongAttention and AttentionDecoderCell: masking, shapes, config round trips, decoding steps."""

import keras
import numpy as np
import pytest
from test_case import run_layer_test

from keras_tasks.layers import AttentionDecoderCell, BahdanauAttention, LuongAttention

MEMORY = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
MASK = np.array([[True, True, True, False, False], [True] * 5])


@pytest.mark.parametrize(
    "layer_cls, kwargs, weights",
    [(BahdanauAttention, {"units": 3}, 4), (LuongAttention, {"score": "general"}, 1), (LuongAttention, {"score": "dot"}, 0)],
)
def test_attention_layers(layer_cls, kwargs, weights, tmp_path):
    query = np.random.default_rng(1).normal(size=(2, 4)).astype("float32")
    run_layer_test(
        layer_cls, kwargs, query, (2, 4), call_kwargs={"value": MEMORY},
        expected_num_trainable_weights=weights, tmp_path=tmp_path,
    )
    layer = layer_cls(**kwargs)
    context, attention = layer(query, MEMORY, value_mask=MASK, return_attention_scores=True)
    attention = keras.ops.convert_to_numpy(attention)
    np.testing.assert_allclose(attention.sum(axis=-1), [1.0, 1.0], rtol=1e-6)
    assert np.all(attention[0, 3:] == 0.0)  # padding gets exactly nothing
    np.testing.assert_allclose(keras.ops.convert_to_numpy(context), np.einsum("bt,btd->bd", attention, MEMORY), rtol=1e-5,
                               atol=1e-6)
    # The padded steps' values cannot leak into the context.
    changed = MEMORY.copy()
    changed[0, 3:] = 100.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(query, changed, value_mask=MASK))[0],
                               keras.ops.convert_to_numpy(context)[0], rtol=1e-6)
    # A sequence of queries equals its steps one by one; precomputed keys change nothing.
    queries = np.random.default_rng(2).normal(size=(2, 3, 4)).astype("float32")
    whole, weights_whole = layer(queries, MEMORY, value_mask=MASK, return_attention_scores=True)
    keys = layer.project_keys(MEMORY)
    for t in range(3):
        one, weights_one = layer(queries[:, t], MEMORY, value_mask=MASK, keys=keys, return_attention_scores=True)
        np.testing.assert_allclose(whole[:, t], one, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(weights_whole[:, t], weights_one, rtol=1e-5, atol=1e-6)


def test_fully_masked_memory_gets_zero_weights():
    _, attention = BahdanauAttention(3)(np.ones((1, 4), "float32"), MEMORY[:1], value_mask=np.zeros((1, 5), bool),
                                        return_attention_scores=True)
    assert np.all(keras.ops.convert_to_numpy(attention) == 0.0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="score"):
        LuongAttention(score="concat")
    with pytest.raises(ValueError, match="one size"):
        LuongAttention(score="dot")(np.ones((2, 3), "float32"), MEMORY)
    with pytest.raises(ValueError, match="attention"):
        AttentionDecoderCell(4, attention="monotonic")


CELLS = [
    {"attention": "bahdanau", "rnn": "lstm"},
    {"attention": "bahdanau", "rnn": "gru", "input_feeding": True},
    {"attention": "luong", "rnn": "lstm"},  # the recurrence runs as one LSTM call
    {"attention": "luong", "rnn": "gru", "input_feeding": True, "score": "dot"},
]


@pytest.mark.parametrize("kwargs", CELLS)
def test_decoder_cell_sequence_equals_its_steps(kwargs):
    units = 4
    cell = AttentionDecoderCell(units, dropout=0.5, **kwargs)
    inputs = np.random.default_rng(3).normal(size=(2, 3, 6)).astype("float32")
    initial = [np.random.default_rng(4).normal(size=(2, units)).astype("float32")] * (2 if kwargs["rnn"] == "lstm" else 1)
    outputs, attention = cell(inputs, MEMORY, initial_state=initial, memory_mask=MASK)
    assert tuple(outputs.shape) == (2, 3, units) and tuple(attention.shape) == (2, 3, 5)
    attention = keras.ops.convert_to_numpy(attention)
    np.testing.assert_allclose(attention.sum(axis=-1), np.ones((2, 3)), rtol=1e-5)
    assert np.all(attention[0, :, 3:] == 0.0)

    keys = cell.project_keys(MEMORY)
    state = cell.get_initial_state(2, initial)
    assert len(state) == cell.state_size
    for t in range(3):
        output, state, weights = cell.step(inputs[:, t], state, MEMORY, keys, MASK)
        np.testing.assert_allclose(outputs[:, t], output, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(attention[:, t], weights, rtol=1e-4, atol=1e-5)
    training_outputs, _ = cell(inputs, MEMORY, initial_state=initial, memory_mask=MASK, training=True)
    assert not np.allclose(training_outputs, outputs)  # dropout on the attentional output


def test_decoder_cell_config_and_saving(tmp_path):
    cell = AttentionDecoderCell(4, attention="luong", rnn="gru", input_feeding=True, dropout=0.1, attention_units=3)
    restored = AttentionDecoderCell.from_config(cell.get_config())
    assert restored.get_config() == cell.get_config()

    inputs = keras.Input((None, 6))
    memory = keras.Input((None, 4))
    outputs, attention = AttentionDecoderCell(4, attention="bahdanau", name="decoder")(inputs, memory)
    model = keras.Model([inputs, memory], [outputs, attention])
    x = np.random.default_rng(5).normal(size=(2, 3, 6)).astype("float32")
    before = model.predict([x, MEMORY], verbose=0)
    model.save(tmp_path / "cell.keras")
    after = keras.saving.load_model(tmp_path / "cell.keras").predict([x, MEMORY], verbose=0)
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # Gradients reach every weight through the teacher-forced loop.
    model.compile(optimizer="sgd", loss=["mse", None])
    weights = [w.numpy().copy() for w in model.trainable_weights]
    model.fit([x, MEMORY], np.ones((2, 3, 4)), verbose=0)
    assert all(not np.allclose(a, w.numpy()) for a, w in zip(weights, model.trainable_weights))


def test_decoder_cell_mixed_precision():
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_float16")
        outputs, attention = AttentionDecoderCell(4)(np.ones((2, 3, 6), "float32"), MEMORY, memory_mask=MASK)
        assert keras.backend.standardize_dtype(outputs.dtype) == "float16" and np.all(np.isfinite(keras.ops.convert_to_numpy(outputs)))
    finally:
        keras.config.set_dtype_policy(previous)
