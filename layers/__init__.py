"""Reusable Keras layers: backend-agnostic (keras.ops only), serialisable, no task knowledge."""

from keras_tasks.layers.attention_pooling import AttentionPooling
from keras_tasks.layers import decoding  # greedy, sample, beam_search, tile_state
from keras_tasks.layers.locked_dropout import LockedDropout
from keras_tasks.layers.pretrained_embedding import EMBEDDING_MODES, PretrainedEmbedding
from keras_tasks.layers.text_cnn_block import TextCNNBlock
from keras_tasks.layers.tied_embedding import TiedEmbedding
