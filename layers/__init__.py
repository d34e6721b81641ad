"""Reusable Keras layers: backend-agnostic (keras.ops only), serialisable, no task knowledge."""

from keras_tasks.layers.attention_pooling import AttentionPooling
from keras_tasks.layers.pretrained_embedding import EMBEDDING_MODES, PretrainedEmbedding
from keras_tasks.layers.text_cnn_block import TextCNNBlock
