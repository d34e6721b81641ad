"""Image captioning: Show, Attend and Tell (Xu et al. 2015), with decoding, resizing and beam search in the export.

    keras-tasks train image_captioning --model show_attend_tell --dataset coco_captions_mini
    keras-tasks train image_captioning --dataset flickr8k --image-dir PATH/TO/Flicker8k_Dataset \\
        --encoder mobilenet_v2 --set model.encoder_weights=imagenet --set model.cache_features=true
    keras-tasks train image_captioning --dataset captions.json --set data.image_dir=PATH/TO/IMAGES
    keras-tasks export --run-dir DIR --name captioner
    keras-tasks predict --model saved_models/captioner photo.jpg [--set beam_size=1 --set attention_png=a.png]

The encoder is a CNN of the project's vision models (`cnn`, `resnetN`) or a `keras.applications` backbone
(`mobilenet_v2`, `efficientnet_b0`; ImageNet weights with `model.encoder_weights=imagenet`); its last
feature map, average-pooled to at most `model.grid_size` x `model.grid_size`, is the set of image regions.
The decoder is an LSTM `AttentionDecoderCell` with additive (soft) attention over the regions, its state
initialised from the mean region. Training is teacher forcing with START/END tokens, the cross-entropy
of the real (unpadded) words, plus Xu et al.'s doubly stochastic attention penalty
`lambda * mean_i (1 - sum_t alpha_ti)^2` on a second model output. With `model.cache_features=true` the
encoder is frozen, its features are computed once per image, and only the decoder trains.

Validation BLEU-1..4 (sacreBLEU, all reference captions of an image, lower-cased words) is computed every
epoch by greedy decoding; the test split is also scored with beam search. The exported `caption` endpoint
(also `serving_default`) takes `image_bytes` (JPEG/PNG of any size), `beam_size` and `max_length` per image
and returns the `caption`, its `score`, the `words` and the `attention` `(words, grid_h, grid_w)` of each
word over the image.
"""

import collections
import dataclasses
import json
import os
import re
import typing

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_tasks.layers import decoding
from keras_tasks.pipelines import captions as captions_lib
from keras_tasks.pipelines.batching import batch_dataset
from keras_tasks.pipelines.errors import ConfigError
from keras_tasks.pipelines.image_decoding import decode_image, decode_image_batch
from keras_tasks.tasks import bleu
from keras_tasks.tasks.base import Task, float32_policy, register_task
from keras_tasks.tasks.caption_models import (
    END_ID,
    PAD_ID,
    START_ID,
    UNK_ID,
    DoublyStochasticAttention,
    build_encoder,
    check_encoder_name,
    encoder_grid,
    show_attend_tell,
)
from keras_tasks.tasks.config import DataConfig, TrainConfig
from keras_tasks.tasks.losses import MaskedSparseCrossentropy
from keras_tasks.tasks.metrics import Perplexity

PAD, UNK, START, END = "<pad>", "<unk>", "<start>", "<end>"
MAX_BEAM_SIZE = 16
MAX_CAPTION_LENGTH = 100
EVALUATION_BATCH = 64
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def caption_words(caption):
    """Lower-cased words of a caption, punctuation dropped: the vocabulary's and BLEU's normalisation."""
    return _WORD.findall(caption.lower())


@dataclasses.dataclass(frozen=True)
class CaptionDataConfig(DataConfig):
    dataset: str = "coco_captions_mini"  # coco_captions_mini | flickr8k | a COCO-style captions JSON file
    image_dir: typing.Optional[str] = None  # folder of the images (flickr8k, your JSON); default the dataset's own
    validation_fraction: float = 0.1  # of a JSON's images, held out when it has no val sibling file
    test_fraction: float = 0.1  # of a JSON's images, held out when it has no test sibling file
    image_size: typing.Tuple[int, ...] = (128, 128)  # (height, width) every image is resized to
    vocabulary_size: int = 10000  # most frequent training words kept (Xu et al.: 10,000)
    min_count: int = 1  # words seen fewer times in the training captions become <unk>
    max_length: int = 30  # training captions are cut to this many words


@dataclasses.dataclass(frozen=True)
class CaptionModelConfig:
    name: str = "show_attend_tell"  # show_attend_tell
    encoder: str = "cnn"  # cnn | resnetN (resnet20, ...) | mobilenet_v2 | efficientnet_b0 (keras.applications)
    encoder_weights: typing.Optional[str] = None  # keras.applications backbones: imagenet (downloads) | None
    encoder_filters: typing.Tuple[int, ...] = (32, 64, 128, 256)  # cnn: channels per stage
    grid_size: int = 8  # regions per side: the feature map is average-pooled down to at most this
    freeze_encoder: bool = False  # keep the encoder's weights fixed
    cache_features: bool = False  # frozen encoder, its features computed once per image (decoder-only training)
    embedding_dim: int = 256
    decoder_dim: int = 512  # LSTM units and attentional output size
    attention_dim: int = 256  # size of the additive attention's scoring layer
    dropout: float = 0.3  # on word embeddings and the attentional output
    attention_regularization: float = 1.0  # lambda of the doubly stochastic penalty (Xu et al. eq. 14); 0: off
    beam_size: int = 3  # test-split beam search and the export's default
    max_caption_length: int = 20  # words generated at most (evaluation and the export's default)


@dataclasses.dataclass(frozen=True)
class CaptionConfig:
    data: CaptionDataConfig = dataclasses.field(default_factory=CaptionDataConfig)
    model: CaptionModelConfig = dataclasses.field(default_factory=CaptionModelConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            epochs=30, batch_size=32, optimizer="adam", learning_rate=1e-3, clipnorm=5.0, monitor="val_bleu_4",
            early_stopping_patience=None,
        )
    )


@register_task("image_captioning")
class ImageCaptioningTask(Task):
    """Images to captions; BLEU-1..4 against every reference caption."""

    config_class = CaptionConfig
    metric_modes = {f"bleu_{n}{suffix}": "max" for n in range(1, 5) for suffix in ("", "_beam")}
    metric_modes["perplexity"] = "min"
    validation_metrics_each_epoch = True

    def __init__(self, config):
        super().__init__(config)
        model = config.model
        if model.name != "show_attend_tell":
            raise ConfigError(f"model.name must be show_attend_tell, got {model.name!r}")
        check_encoder_name(model.encoder)
        if len(config.data.image_size) != 2:
            raise ConfigError(f"data.image_size must be (height, width), got {config.data.image_size!r}")
        self.words = None
        self.encoder = None
        self.grid = None
        self._pixels = {}
        self._features = {}
        self._decoders = {}
        self.last_captions = {}

    @property
    def image_shape(self):
        return tuple(self.config.data.image_size) + (3,)

    # === Data ===

    def load_data(self):
        data = self.config.data
        return captions_lib.load_captions(
            data.dataset, data.data_dir, data.image_dir, data.validation_fraction, data.test_fraction,
            seed=self.config.train.seed,
        )

    def num_examples(self, splits, split):
        return sum(len(c) for c in splits[split].captions)

    def adapt(self, splits, assets_dir):
        data = self.config.data
        train = splits["train"]
        if data.max_examples:
            train = train.select(range(min(len(train), data.max_examples)))
        counts = collections.Counter(w for _, caption in train.pairs() for w in caption_words(caption))
        kept = [w for w, c in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if c >= data.min_count]
        words = [PAD, UNK, START, END] + kept[: max(0, data.vocabulary_size - 4)]
        with open(os.path.join(assets_dir, "vocabulary.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(words) + "\n")
        keras.utils.set_random_seed(self.config.train.seed)
        encoder = self.build_encoder()
        grid = encoder_grid(encoder)
        with open(os.path.join(assets_dir, "image_spec.json"), "w", encoding="utf-8") as f:
            json.dump({"height": self.image_shape[0], "width": self.image_shape[1], "grid": list(grid)}, f)
        if self.config.model.cache_features:
            # The frozen encoder is part of the preprocessing: its weights live with the vocabulary.
            encoder.save(os.path.join(assets_dir, "encoder.keras"))

    def restore(self, assets_dir):
        with open(os.path.join(assets_dir, "vocabulary.txt"), encoding="utf-8") as f:
            self.words = [line.rstrip("\n") for line in f if line.rstrip("\n")]
        with open(os.path.join(assets_dir, "image_spec.json"), encoding="utf-8") as f:
            self.grid = tuple(json.load(f)["grid"])
        self.encoder = None
        if self.config.model.cache_features:
            self.encoder = keras.saving.load_model(os.path.join(assets_dir, "encoder.keras"))
            self.encoder.trainable = False
        self._ids = {word: i for i, word in enumerate(self.words)}
        self._features, self._decoders = {}, {}

    def caption_ids(self, caption):
        """`[START] + word ids + [END]`, cut to `data.max_length` words."""
        ids = [self._ids.get(w, UNK_ID) for w in caption_words(caption)][: self.config.data.max_length]
        return [START_ID] + ids + [END_ID]

    def pixels(self, splits, split):
        """The split's images decoded and resized once: uint8 `(images, height, width, 3)`."""
        if split not in self._pixels:
            size = tuple(self.config.data.image_size)
            files = tf.data.Dataset.from_tensor_slices(list(splits[split].image_paths))
            images = files.map(lambda p: decode_image(tf.io.read_file(p), 3, size), num_parallel_calls=tf.data.AUTOTUNE)
            self._pixels[split] = np.stack(list(images.as_numpy_iterator()))
        return self._pixels[split]

    def regions_input(self, splits, split):
        """What the training model takes per image: cached encoder features, or pixels."""
        if not self.config.model.cache_features:
            return self.pixels(splits, split)
        if split not in self._features:
            self._features[split] = self.encoder.predict(self.pixels(splits, split), batch_size=EVALUATION_BATCH,
                                                         verbose=0)
        return self._features[split]

    def make_dataset(self, splits, split, training):
        source = splits[split]
        if training and self.config.data.max_examples:
            source = source.select(range(min(len(source), self.config.data.max_examples)))
        pairs = source.pairs()
        images = tf.constant(self.regions_input(splits, split)[: len(source)])
        name = "features" if self.config.model.cache_features else "image"
        ids = tf.ragged.constant([self.caption_ids(caption) for _, caption in pairs], dtype=tf.int32)
        dataset = tf.data.Dataset.from_tensor_slices((tf.constant([i for i, _ in pairs], tf.int32), ids))

        def example(index, caption):
            image = tf.gather(images, index)
            if name == "image":
                image = tf.cast(image, tf.float32)
            return {name: image, "caption_ids": caption[:-1]}, {"logits": caption[1:], "attention": caption[1:]}

        dataset = dataset.map(example, num_parallel_calls=tf.data.AUTOTUNE)
        return batch_dataset(dataset, self.config.train.batch_size, training, seed=self.config.train.seed,
                             padded=True, cache=False)

    # === Model ===

    def build_model(self):
        if self.config.model.cache_features:
            return self._captioner(None)
        encoder = self.build_encoder()
        encoder.trainable = not self.config.model.freeze_encoder
        return self._captioner(encoder)

    def build_encoder(self):
        model = self.config.model
        return build_encoder(model.encoder, self.image_shape, model.grid_size, model.encoder_filters,
                             model.encoder_weights)

    def _captioner(self, encoder):
        """The teacher-forced captioner over `encoder`'s regions, or over cached `features` when `encoder` is None."""
        model = self.config.model
        return show_attend_tell(
            len(self.words), encoder=encoder, image_shape=self.image_shape,
            feature_shape=None if encoder is not None else self.encoder.output_shape[1:],
            embedding_dim=model.embedding_dim, decoder_dim=model.decoder_dim, attention_dim=model.attention_dim,
            dropout=model.dropout,
        )

    def compile_args(self, steps_per_epoch=None):
        return {
            "optimizer": self.make_optimizer(steps_per_epoch),
            "loss": {
                "logits": MaskedSparseCrossentropy(label_smoothing=self.config.train.label_smoothing, pad_id=PAD_ID),
                "attention": DoublyStochasticAttention(self.config.model.attention_regularization, pad_id=PAD_ID),
            },
            "metrics": {"logits": [Perplexity("perplexity", pad_id=PAD_ID)]},
        }

    def build_inference_model(self, model):
        """The captioner from image pixels: the trained model, with the frozen encoder put back when it was cached."""
        if not self.config.model.cache_features:
            return super().build_inference_model(model)
        with float32_policy():
            inference = self._captioner(self.encoder)
        for layer in model.layers:
            if layer.weights:
                inference.get_layer(layer.name).set_weights(layer.get_weights())
        return inference

    # === Decoding ===

    def decoder_functions(self, model):
        """`(encode, search, forced_attention)` over the layers of a captioner."""
        region_norm = model.get_layer("region_norm")
        init_h, init_c = model.get_layer("init_h"), model.get_layer("init_c")
        embedding = model.get_layer("word_embedding")
        decoder = model.get_layer("decoder")
        logits_layer = model.get_layer("logits")
        # Never generate padding, the unknown word or the start token; and never end before the first word.
        unspeakable = ops.convert_to_tensor([-1e9] * 3 + [0.0] * (len(self.words) - 3), "float32")
        no_end = ops.convert_to_tensor([-1e9 if i == END_ID else 0.0 for i in range(len(self.words))], "float32")

        def encode(regions):
            """Normalised regions and the decoder's initial state from raw regions (encoder output or features)."""
            regions = region_norm(regions)
            mean = ops.mean(regions, axis=1)
            return regions, [init_h(mean), init_c(mean)]

        def search(regions, rnn_states, beam_size, max_length, row_beam_sizes=None):
            batch = ops.shape(regions)[0]
            state = decoder.get_initial_state(batch, rnn_states)
            start = ops.full((batch,), START_ID, "int32")

            def make_step_fn(memory):
                keys = decoder.project_keys(memory)

                def step_fn(token_ids, state):
                    output, state, _ = decoder.step(embedding(token_ids), state, memory, keys)
                    first = ops.cast(ops.equal(token_ids, START_ID), "float32")[:, None]  # only the first step reads START
                    return logits_layer(output) + unspeakable + first * no_end, state

                return step_fn

            if isinstance(beam_size, int) and beam_size == 1 and row_beam_sizes is None:
                tokens, _ = decoding.greedy(make_step_fn(regions), start, state, max_length, end_id=END_ID)
                return tokens, ops.zeros((batch,), "float32")
            return decoding.beam_search(make_step_fn(decoding.tile_state(regions, beam_size)), start, state,
                                        max_length, beam_size, end_id=END_ID, row_beam_sizes=row_beam_sizes)

        def forced_attention(regions, rnn_states, token_ids):
            """The attention `(batch, steps, regions)` of the decoder fed `token_ids` (what a search chose)."""
            inputs = ops.concatenate([ops.full((ops.shape(token_ids)[0], 1), START_ID, "int32"), token_ids[:, :-1]], 1)
            _, attention = decoder(embedding(inputs), regions, initial_state=rnn_states, training=False)
            return attention

        return encode, search, forced_attention

    def raw_regions(self, model, splits, split):
        """Encoder outputs of a split's images, computed by the model's own encoder unless they are cached."""
        if self.config.model.cache_features:
            return self.regions_input(splits, split)
        return model.get_layer("encoder").predict(self.pixels(splits, split), batch_size=EVALUATION_BATCH, verbose=0)

    def _evaluation_decoder(self, model, beam_size):
        key = (id(model), beam_size)
        if key not in self._decoders:
            encode, search, _ = self.decoder_functions(model)
            max_length = self.config.model.max_caption_length + 1  # the end token

            @tf.function(reduce_retracing=True)  # batches of every size, one trace
            def decode(raw):
                regions, rnn_states = encode(raw)
                tokens, _ = search(regions, rnn_states, beam_size, max_length)
                return tokens

            self._decoders = {k: v for k, v in self._decoders.items() if k[0] == id(model)}
            self._decoders[key] = decode
        return self._decoders[key]

    def ids_to_caption(self, ids):
        """The words before the end token, at most `model.max_caption_length` of them (as the export cuts)."""
        words = []
        for i in ids[: self.config.model.max_caption_length]:
            if i in (END_ID, PAD_ID):
                break
            words.append(self.words[i])
        return " ".join(words)

    def generate_captions(self, model, splits, split, beam_size=1):
        """Generated captions (lower-case words joined by spaces) of every image of a split."""
        decode = self._evaluation_decoder(model, beam_size)
        raw = self.raw_regions(model, splits, split)
        captions = []
        for start in range(0, len(raw), EVALUATION_BATCH):
            tokens = decode(tf.constant(raw[start:start + EVALUATION_BATCH])).numpy()
            captions += [self.ids_to_caption(row) for row in tokens]
        return captions

    # === Evaluation ===

    def evaluate_split(self, model, splits, split):
        """BLEU-1..4 of greedy captions against every reference of each image; beam search too on the test split."""
        references = [[" ".join(caption_words(c)) for c in refs] for refs in splits[split].captions]
        results = {}
        searches = [("greedy", 1)] + ([("beam", self.config.model.beam_size)] if split == "test" else [])
        for name, beam_size in searches:
            hypotheses = self.generate_captions(model, splits, split, beam_size)
            self.last_captions[(split, name)] = hypotheses
            suffix = "" if name == "greedy" else "_beam"
            for order, score in enumerate(bleu.corpus_bleu_orders(hypotheses, references), start=1):
                results[f"bleu_{order}{suffix}"] = score
        return results

    def after_evaluate(self, model, splits, run_dir):
        """Writes the generated captions of each split (`captions/SPLIT.SEARCH.tsv`: image file, caption)."""
        folder = os.path.join(run_dir, "captions")
        os.makedirs(folder, exist_ok=True)
        for (split, name), hypotheses in self.last_captions.items():
            with open(os.path.join(folder, f"{split}.{name}.tsv"), "w", encoding="utf-8") as f:
                for path, caption in zip(splits[split].image_paths, hypotheses):
                    f.write(f"{os.path.basename(path)}\t{caption}\n")
        return {"bleu_signature": bleu.multi_reference_signature(), "beam_size": self.config.model.beam_size}

    # === Export ===

    def signature_defaults(self):
        defaults = {"beam_size": self.config.model.beam_size, "max_length": self.config.model.max_caption_length}
        return {"serving_default": defaults, "caption": defaults}

    def export_assets(self):
        return {"vocabulary.txt": "\n".join(self.words) + "\n"}

    def export_endpoints(self, model):
        encode, search, forced_attention = self.decoder_functions(model)
        encoder = model.get_layer("encoder")
        words_table = tf.constant(self.words)
        height, width = self.config.data.image_size
        grid_h, grid_w = self.grid

        @tf.function
        def caption(image_bytes, beam_size, max_length):
            images = tf.cast(decode_image_batch(image_bytes, 3, (height, width)), tf.float32)
            regions, rnn_states = encode(encoder(images, training=False))
            rows = tf.clip_by_value(beam_size, 1, MAX_BEAM_SIZE)
            max_length = tf.clip_by_value(max_length, 1, MAX_CAPTION_LENGTH)
            limit = tf.reduce_max(max_length) + 1  # room for the end token
            tokens, scores = search(regions, rnn_states, tf.reduce_max(rows), limit, row_beam_sizes=rows)
            # A row's words stop at its end token or at its own max_length.
            ended = tf.cumsum(tf.cast(tf.equal(tokens, END_ID), tf.int32), axis=1) > 0
            lengths = tf.minimum(tf.reduce_sum(tf.cast(tf.logical_and(tokens > 0, ~ended), tf.int32), axis=1),
                                 max_length)
            steps = tf.maximum(tf.reduce_max(lengths), 1)
            kept = tf.sequence_mask(lengths, steps)
            tokens = tf.where(kept, tokens[:, :steps], PAD_ID)
            attention = forced_attention(regions, rnn_states, tokens) * tf.cast(kept, tf.float32)[:, :, None]
            words = tf.where(kept, tf.gather(words_table, tokens), "")
            return {
                "caption": _join_words(words),
                "score": scores,
                "words": words,
                "attention": tf.reshape(attention, (tf.shape(tokens)[0], steps, grid_h, grid_w)),
            }

        signature = [
            tf.TensorSpec([None], tf.string, name="image_bytes"),
            tf.TensorSpec([None], tf.int32, name="beam_size"),
            tf.TensorSpec([None], tf.int32, name="max_length"),
        ]
        return {"serving_default": (caption, signature), "caption": (caption, signature)}


def _join_words(words):
    """`(batch, steps)` words ("" after the end) to one space-separated caption per row."""
    joined = tf.strings.reduce_join(tf.where(words == "", "", words + " "), axis=1)
    return tf.strings.strip(joined)
