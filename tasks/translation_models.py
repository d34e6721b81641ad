"""The translation model builder, TensorFlow-free (keras.ops only): it runs under any Keras backend."""

import keras
from keras import ops

from keras_tasks.layers.attention_decoder_cell import AttentionDecoderCell

# SentencePiece ids: padding is 0, as everywhere in the project (masks, decoding loops).
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


def seq2seq_attention(
    source_vocabulary_size,
    target_vocabulary_size,
    embedding_dim=256,
    hidden_dim=256,
    decoder_dim=512,
    attention="bahdanau",
    attention_dim=256,
    score="general",
    rnn="gru",
    input_feeding=False,
    dropout=0.3,
):
    """The teacher-forced training graph: `{"source_ids", "target_ids"}` (right-padded with 0) to target logits.

    A bidirectional `rnn` encodes the source; `bridge_i` layers map its final forward and backward states to
    the decoder's initial states; an `AttentionDecoderCell` named `decoder` reads the target embeddings while
    attending over every encoder state (padding masked); `logits` projects its outputs to the vocabulary. The
    decoding loops reuse these layers by name.
    """
    recurrent = keras.layers.LSTM if rnn == "lstm" else keras.layers.GRU

    # === Layers ===
    source_embedding = keras.layers.Embedding(source_vocabulary_size, embedding_dim, name="source_embedding")
    target_embedding = keras.layers.Embedding(target_vocabulary_size, embedding_dim, name="target_embedding")
    # Defaults (tanh/sigmoid, no recurrent dropout) and right padding keep the encoder cuDNN-eligible.
    encoder = keras.layers.Bidirectional(recurrent(hidden_dim, return_sequences=True, return_state=True), name="encoder")
    bridges = [keras.layers.Dense(decoder_dim, activation="tanh", name=f"bridge_{i}")
               for i in range(2 if rnn == "lstm" else 1)]
    decoder = AttentionDecoderCell(
        decoder_dim, attention=attention, attention_units=attention_dim, score=score, rnn=rnn,
        input_feeding=input_feeding, dropout=dropout, name="decoder",
    )
    logits_layer = keras.layers.Dense(target_vocabulary_size, dtype="float32", name="logits")

    # === Functional Model ===
    source_ids = keras.Input(shape=(None,), dtype="int32", name="source_ids")
    target_ids = keras.Input(shape=(None,), dtype="int32", name="target_ids")
    source_mask = ops.not_equal(source_ids, PAD_ID)
    x = keras.layers.Dropout(dropout, name="source_dropout")(source_embedding(source_ids))
    memory, *final_states = encoder(x, mask=source_mask)
    y = keras.layers.Dropout(dropout, name="target_dropout")(target_embedding(target_ids))
    outputs, _ = decoder(y, memory, initial_state=bridge_states(bridges, final_states), memory_mask=source_mask)
    logits = logits_layer(outputs)
    return keras.Model({"source_ids": source_ids, "target_ids": target_ids}, logits, name="seq2seq_attention")


def bridge_states(bridges, final_states):
    """The decoder's initial RNN states from the encoder's final forward and backward states."""
    half = len(final_states) // 2  # forward states, then backward states
    return [bridge(ops.concatenate([final_states[i], final_states[half + i]], axis=-1))
            for i, bridge in enumerate(bridges)]
