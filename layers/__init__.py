"""Reusable Keras layers: backend-agnostic (keras.ops only), serialisable, no task knowledge."""

from keras_tasks.layers.attention_decoder_cell import AttentionDecoderCell
from keras_tasks.layers.attention_pooling import AttentionPooling
from keras_tasks.layers.bahdanau_attention import BahdanauAttention
from keras_tasks.layers.bigram_bag import BigramBag
from keras_tasks.layers import decoding  # greedy, sample, beam_search, tile_state
from keras_tasks.layers.locked_dropout import LockedDropout
from keras_tasks.layers.luong_attention import LuongAttention
from keras_tasks.layers.pretrained_embedding import EMBEDDING_MODES, PretrainedEmbedding
from keras_tasks.layers.text_cnn_block import TextCNNBlock
from keras_tasks.layers.tied_embedding import TiedEmbedding
from keras_tasks.layers.character_encoder import CHARACTER_ENCODERS, CharacterEncoder
from keras_tasks.layers.crf import CRF, CRFLoss, crf_decode, crf_log_likelihood
