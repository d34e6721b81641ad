"""Translation: an attention encoder-decoder (Bahdanau or Luong) with SentencePiece and beam search in the graph.

    keras-tasks train translation --model seq2seq_attention --dataset multi30k --set data.source=de data.target=en
    keras-tasks train translation --dataset multi30k --set model.attention=luong model.input_feeding=true
    keras-tasks train translation --dataset deu.txt --set data.source=en data.target=de   # Anki/Tatoeba TSV
    keras-tasks export --run-dir DIR --name de_en
    keras-tasks predict --model saved_models/de_en "Ein Mann fährt Fahrrad ." [--set beam_size=1 attention_png=a.png]

SentencePiece (unigram or BPE) is trained on the training split only, jointly on both languages or one model
per side. The encoder is a bidirectional LSTM or GRU over the source pieces; the decoder is an
`AttentionDecoderCell` whose attention sees every encoder state, its padding masked. Training is teacher
forcing with label smoothing; validation BLEU (greedy, sacreBLEU) is computed every epoch and picks the best
checkpoint; the test split is scored greedy and with beam search (GNMT length penalty).

The exported `translate` endpoint (also `serving_default`) takes raw `text`, `beam_size`, `length_penalty` and
`max_length` per sentence and returns the `translation`, its `score`, the `source_tokens` and `target_tokens`
(pieces, the end token included) and the `attention` matrix `(target, source)` of each sentence.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf
from keras import ops

from keras_tasks.layers import decoding
from keras_tasks.pipelines import parallel, tokenizers
from keras_tasks.pipelines.batching import batch_dataset
from keras_tasks.pipelines.errors import ConfigError
from keras_tasks.tasks.base import Task, register_task
from keras_tasks.tasks.config import DataConfig, TrainConfig
from keras_tasks.tasks.losses import MaskedSparseCrossentropy
from keras_tasks.tasks.metrics import Perplexity
from keras_tasks.tasks.translation_models import BOS_ID, EOS_ID, PAD_ID, UNK_ID, bridge_states, seq2seq_attention

MAX_BEAM_SIZE = 32
MAX_TRANSLATE_LENGTH = 512
EVALUATION_BATCH = 100


@dataclasses.dataclass(frozen=True)
class TranslationDataConfig(DataConfig):
    dataset: str = "multi30k"  # multi30k | a folder of train.SRC/train.TGT files | a TSV of pairs | SRC_FILE,TGT_FILE
    source: str = "de"  # source language (file suffix in a folder)
    target: str = "en"
    encoding: str = "utf-8"  # of your own files
    reverse: bool = False  # a TSV of pairs: its second column is the source
    validation_fraction: float = 0.05  # held out of train when the data has no validation split
    test_fraction: float = 0.05  # held out of train when the data has no test split
    subword_model: str = "unigram"  # SentencePiece: unigram | bpe
    # SentencePiece pieces (joint: shared by both languages; else per language). Sized for Multi30k's 29k pairs: the
    # old settings (8000 pieces, dropout 0.3, Adam 2e-3, batch 64) reached validation BLEU 2.0 after 2 epochs of Luong
    # 256/256, 2000 pieces with dropout 0.1, Adam 3e-3, batch 32 reached 14.9 (docs/benchmarks_translation.md; dropout
    # is 0.2 since the default model's row). Raise it for corpora of hundreds of thousands of pairs.
    vocabulary_size: int = 2000
    joint_vocabulary: bool = True  # one SentencePiece model for both languages
    lowercase: bool = False  # lower-case both sides (BLEU is then case-insensitive)
    max_length: int = 100  # training pairs with more pieces on either side are skipped


@dataclasses.dataclass(frozen=True)
class TranslationModelConfig:
    name: str = "seq2seq_attention"  # seq2seq_attention
    attention: str = "bahdanau"  # bahdanau (additive) | luong (multiplicative)
    score: str = "general"  # luong: general | dot
    rnn: str = "gru"  # gru | lstm, encoder and decoder
    embedding_dim: int = 256
    hidden_dim: int = 256  # encoder units per direction
    decoder_dim: int = 512  # decoder units and attentional output size
    attention_dim: int = 256  # bahdanau: size of the scoring layer
    input_feeding: bool = False  # feed the previous attentional output into the next step (Luong et al.)
    dropout: float = 0.2  # on embeddings and the attentional output
    beam_size: int = 5  # evaluation and the export's default
    length_penalty: float = 0.6  # GNMT alpha, evaluation and the export's default


@dataclasses.dataclass(frozen=True)
class TranslationConfig:
    data: TranslationDataConfig = dataclasses.field(default_factory=TranslationDataConfig)
    model: TranslationModelConfig = dataclasses.field(default_factory=TranslationModelConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            epochs=12, batch_size=32, optimizer="adam", learning_rate=3e-3, clipnorm=1.0, label_smoothing=0.1,
            lr_schedule="plateau", lr_decay_factor=0.5, lr_decay_patience=0, monitor="val_bleu",
            early_stopping_patience=3,
        )
    )


@register_task("translation")
class TranslationTask(Task):
    """Raw source sentences to target sentences; BLEU and chrF by sacreBLEU on the test split."""

    config_class = TranslationConfig
    metric_modes = {"bleu": "max", "chrf": "max", "bleu_beam": "max", "chrf_beam": "max", "perplexity": "min"}
    validation_metrics_each_epoch = True

    def __init__(self, config):
        super().__init__(config)
        model, data = config.model, config.data
        if model.name != "seq2seq_attention":
            raise ConfigError(f"model.name must be seq2seq_attention, got {model.name!r}")
        choices = {"model.attention": (model.attention, ("bahdanau", "luong")), "model.score": (model.score, ("general", "dot")),
                   "model.rnn": (model.rnn, ("gru", "lstm")), "data.subword_model": (data.subword_model, ("unigram", "bpe"))}
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise ConfigError(f"{key} must be {' or '.join(allowed)}, got {value!r}")
        if model.attention == "luong" and model.score == "dot" and model.decoder_dim != 2 * model.hidden_dim:
            raise ConfigError("model.score=dot compares decoder states with encoder states: it needs model.decoder_dim "
                              f"= 2 * model.hidden_dim ({2 * model.hidden_dim}), got {model.decoder_dim}")
        self.source_tokenizer = self.target_tokenizer = None
        self._ids = {}
        self._decoders = {}
        self.last_translations = {}

    # === Data ===

    def load_data(self):
        data = self.config.data
        return parallel.load_parallel(
            data.dataset, data.source, data.target, data_dir=data.data_dir, encoding=data.encoding,
            reverse=data.reverse, validation_fraction=data.validation_fraction, test_fraction=data.test_fraction,
            seed=self.config.train.seed, max_examples=data.max_examples,
        )

    def num_examples(self, splits, split):
        return len(splits.sources(split))

    def _prepare(self, texts):
        return [text.lower() for text in texts] if self.config.data.lowercase else list(texts)

    def adapt(self, splits, assets_dir):
        data = self.config.data
        sources, targets = self._prepare(splits.sources("train")), self._prepare(splits.targets("train"))
        options = dict(pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, max_sentence_length=1 << 16)
        if data.joint_vocabulary:
            tokenizers.train_sentencepiece(sources + targets, data.vocabulary_size, data.subword_model,
                                           os.path.join(assets_dir, "joint"), **options)
        else:
            for name, texts in (("source", sources), ("target", targets)):
                tokenizers.train_sentencepiece(texts, data.vocabulary_size, data.subword_model,
                                               os.path.join(assets_dir, name), **options)

    def restore(self, assets_dir):
        if self.config.data.joint_vocabulary:
            self.source_tokenizer = tokenizers.SentencePieceTokenizer(model_file=os.path.join(assets_dir, "joint.model"))
            self.target_tokenizer = self.source_tokenizer
        else:
            self.source_tokenizer = tokenizers.SentencePieceTokenizer(model_file=os.path.join(assets_dir, "source.model"))
            self.target_tokenizer = tokenizers.SentencePieceTokenizer(model_file=os.path.join(assets_dir, "target.model"))
        # Read once, eagerly: the tokenizer's op cannot give a Python int inside a traced function.
        self.vocabulary_sizes = (self.source_tokenizer.vocabulary_size, self.target_tokenizer.vocabulary_size)
        self._ids = {}
        self._decoders = {}

    def _piece_ids(self, tokenizer, texts):
        pieces = []
        for start in range(0, len(texts), 4096):
            batch = tf.constant(self._prepare(texts[start:start + 4096]))
            pieces += tokenizer.token_ids(batch).to_list()
        return pieces

    def split_ids(self, splits, split):
        """`(source ids, target ids)` of every pair of a split, lists of int lists (computed once)."""
        if split not in self._ids:
            self._ids[split] = (self._piece_ids(self.source_tokenizer, splits.sources(split)),
                                self._piece_ids(self.target_tokenizer, splits.targets(split)))
        return self._ids[split]

    def make_dataset(self, splits, split, training):
        sources, targets = self.split_ids(splits, split)
        limit = self.config.data.max_length
        pairs = [(s, t) for s, t in zip(sources, targets) if not training or (len(s) <= limit and len(t) <= limit)]
        source = tf.ragged.constant([s + [EOS_ID] for s, _ in pairs], dtype=tf.int32)
        target = tf.ragged.constant([[BOS_ID] + t + [EOS_ID] for _, t in pairs], dtype=tf.int32)
        dataset = tf.data.Dataset.from_tensor_slices((source, target))
        dataset = dataset.map(lambda s, t: ({"source_ids": s, "target_ids": t[:-1]}, t[1:]))
        return batch_dataset(
            dataset, self.config.train.batch_size, training, seed=self.config.train.seed,
            bucket_boundaries=[8, 12, 16, 20, 25, 30, 40, 60], length_key="source_ids",
        )

    # === Model ===

    def _vocabulary_sizes(self):
        return self.vocabulary_sizes

    def build_model(self):
        model = self.config.model
        source_size, target_size = self._vocabulary_sizes()
        return seq2seq_attention(
            source_size, target_size, embedding_dim=model.embedding_dim, hidden_dim=model.hidden_dim,
            decoder_dim=model.decoder_dim, attention=model.attention, attention_dim=model.attention_dim,
            score=model.score, rnn=model.rnn, input_feeding=model.input_feeding, dropout=model.dropout,
        )

    def compile_args(self, steps_per_epoch=None):
        return {
            "optimizer": self.make_optimizer(steps_per_epoch),
            "loss": MaskedSparseCrossentropy(label_smoothing=self.config.train.label_smoothing, pad_id=PAD_ID),
            "metrics": [Perplexity("perplexity", pad_id=PAD_ID)],
        }

    # === Decoding ===

    def decoder_functions(self, model):
        """`(encode, make_step_fn, forced_attention)` over the model's layers, for every decoding loop."""
        source_embedding = model.get_layer("source_embedding")
        target_embedding = model.get_layer("target_embedding")
        encoder = model.get_layer("encoder")
        bridges = [layer for layer in model.layers if layer.name.startswith("bridge_")]
        decoder = model.get_layer("decoder")
        logits_layer = model.get_layer("logits")
        target_size = self._vocabulary_sizes()[1]
        # Never generate padding, the unknown piece or the start token.
        unspeakable = ops.convert_to_tensor([-1e9] * 3 + [0.0] * (target_size - 3), "float32")

        def encode(source_ids):
            mask = ops.not_equal(source_ids, PAD_ID)
            memory, *final_states = encoder(source_embedding(source_ids), mask=mask, training=False)
            return memory, mask, bridge_states(bridges, final_states)

        def make_step_fn(memory, mask):
            keys = decoder.project_keys(memory)

            def step_fn(token_ids, state):
                output, state, _ = decoder.step(target_embedding(token_ids), state, memory, keys, mask)
                return logits_layer(output) + unspeakable, state

            return step_fn

        def forced_attention(memory, mask, rnn_states, token_ids):
            """The attention of the decoder fed `token_ids` (what a search chose): `(batch, steps, time)`."""
            inputs = ops.concatenate([ops.full((ops.shape(token_ids)[0], 1), BOS_ID, "int32"), token_ids[:, :-1]], 1)
            _, attention = decoder(target_embedding(inputs), memory, initial_state=rnn_states, memory_mask=mask,
                                   training=False)
            return attention

        return encode, make_step_fn, forced_attention, decoder

    def _search(self, model, source_ids, beam_size, length_penalty, max_length, row_beam_sizes=None):
        """Token ids `(batch, steps)` (end token included, 0 after it), scores `(batch,)` and the encoder's outputs.

        `max_length` is a scalar or one limit per row. A row's output ends by its own limit, counting the end
        token: the smaller of its `max_length` and twice its source length plus 10. A row's translation thus
        depends on its own inputs only, not on the other rows of its batch.
        """
        encode, make_step_fn, _, decoder = self.decoder_functions(model)
        memory, mask, rnn_states = encode(source_ids)
        batch = ops.shape(source_ids)[0]
        source_lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
        limits = ops.minimum(ops.cast(max_length, "int32") + ops.zeros((batch,), "int32"), 2 * source_lengths + 10)
        state = (ops.zeros((batch,), "int32"), limits, decoder.get_initial_state(batch, rnn_states))
        start = ops.full((batch,), BOS_ID, "int32")

        def limited(step_fn):
            end_only = ops.where(ops.arange(self.vocabulary_sizes[1]) == EOS_ID, 0.0, -1e9)

            def limited_step_fn(token_ids, state):
                steps, limits, cell_state = state
                logits, cell_state = step_fn(token_ids, cell_state)
                logits = ops.where(ops.expand_dims(steps >= limits - 1, 1), end_only, logits)  # the last allowed step
                return logits, (steps + 1, limits, cell_state)

            return limited_step_fn

        loop_length = ops.max(limits)
        if isinstance(beam_size, int) and beam_size == 1 and row_beam_sizes is None:
            tokens, _ = decoding.greedy(limited(make_step_fn(memory, mask)), start, state, loop_length, end_id=EOS_ID)
            scores = ops.zeros((batch,), "float32")
        else:
            tiled_memory, tiled_mask = decoding.tile_state((memory, mask), beam_size)
            tokens, scores = decoding.beam_search(
                limited(make_step_fn(tiled_memory, tiled_mask)), start, state, loop_length, beam_size, end_id=EOS_ID,
                length_penalty=length_penalty, row_beam_sizes=row_beam_sizes,
            )
        return tokens, scores, (memory, mask, rnn_states)

    def _evaluation_decoder(self, model, beam_size):
        key = (id(model), beam_size)
        if key not in self._decoders:
            length_penalty = self.config.model.length_penalty

            @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
            def decode(source_ids):
                tokens, _, _ = self._search(model, source_ids, beam_size, length_penalty, MAX_TRANSLATE_LENGTH)
                tokens = tf.where(tf.equal(tokens, EOS_ID), PAD_ID, tokens)
                return self.target_tokenizer.detokenize(tf.RaggedTensor.from_tensor(tokens, padding=PAD_ID))

            self._decoders = {k: v for k, v in self._decoders.items() if k[0] == id(model)}
            self._decoders[key] = decode
        return self._decoders[key]

    def translate_ids(self, model, source_ids, beam_size=1):
        """Translations (str) of lists of source piece ids, decoded in batches of similar length."""
        decode = self._evaluation_decoder(model, beam_size)
        order = np.argsort([len(ids) for ids in source_ids], kind="stable")
        translations = [None] * len(source_ids)
        for start in range(0, len(order), EVALUATION_BATCH):
            rows = order[start:start + EVALUATION_BATCH]
            batch = tf.ragged.constant([source_ids[i] + [EOS_ID] for i in rows], dtype=tf.int32).to_tensor(PAD_ID)
            for i, text in zip(rows, decode(batch).numpy()):
                translations[i] = text.decode("utf-8")
        return translations

    # === Evaluation ===

    def evaluate_split(self, model, splits, split):
        """sacreBLEU BLEU and chrF of greedy decoding; on the test split also of beam search (`bleu_beam`, ...)."""
        from keras_tasks.tasks import bleu

        source_ids, _ = self.split_ids(splits, split)
        references = self._prepare(splits.targets(split))
        results = {}
        searches = [("greedy", 1)] + ([("beam", self.config.model.beam_size)] if split == "test" else [])
        for name, beam_size in searches:
            hypotheses = self.translate_ids(model, source_ids, beam_size)
            self.last_translations[(split, name)] = hypotheses
            scores = bleu.corpus_scores(hypotheses, references, lowercase=self.config.data.lowercase)
            suffix = "" if name == "greedy" else "_beam"
            results[f"bleu{suffix}"] = scores["bleu"]
            results[f"chrf{suffix}"] = scores["chrf"]
        return results

    def after_evaluate(self, model, splits, run_dir):
        """Writes the decoded test and validation translations; returns sacreBLEU's signature strings."""
        from keras_tasks.tasks import bleu

        folder = os.path.join(run_dir, "translations")
        os.makedirs(folder, exist_ok=True)
        for (split, name), hypotheses in self.last_translations.items():
            with open(os.path.join(folder, f"{split}.{name}.txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(hypotheses) + "\n")
        signatures = bleu.signatures(lowercase=self.config.data.lowercase)
        return {"bleu_signature": signatures["bleu"], "chrf_signature": signatures["chrf"],
                "beam": {"beam_size": self.config.model.beam_size, "length_penalty": self.config.model.length_penalty}}

    # === Export ===

    def export_resources(self):
        unique = list({id(t): t for t in (self.source_tokenizer, self.target_tokenizer)}.values())  # one when joint
        return [*unique, *(t.model_asset for t in unique)]

    def signature_defaults(self):
        defaults = {"beam_size": self.config.model.beam_size, "length_penalty": self.config.model.length_penalty,
                    "max_length": 100}
        return {"serving_default": defaults, "translate": defaults}

    def export_endpoints(self, model):
        source_tokenizer, target_tokenizer = self.source_tokenizer, self.target_tokenizer
        lowercase = self.config.data.lowercase
        _, _, forced_attention, _ = self.decoder_functions(model)

        @tf.function
        def translate(text, beam_size, length_penalty, max_length):
            if lowercase:
                text = tf.strings.lower(text, encoding="utf-8")
            ids = source_tokenizer.token_ids(text)
            ends = tf.fill([tf.shape(text)[0], 1], EOS_ID)
            source_ids = tf.concat([ids, tf.RaggedTensor.from_tensor(ends)], axis=1).to_tensor(PAD_ID)
            rows = tf.clip_by_value(beam_size, 1, MAX_BEAM_SIZE)
            max_length = tf.clip_by_value(max_length, 1, MAX_TRANSLATE_LENGTH)
            tokens, scores, (memory, mask, rnn_states) = self._search(
                model, source_ids, tf.reduce_max(rows), length_penalty, max_length, row_beam_sizes=rows
            )
            lengths = tf.reduce_sum(tf.cast(tokens > 0, tf.int32), axis=1)  # the end token included
            steps = tf.maximum(tf.reduce_max(lengths), 1)
            kept = tf.sequence_mask(lengths, steps)
            tokens = tokens[:, :steps]
            words = tf.where(tf.equal(tokens, EOS_ID), PAD_ID, tokens)
            attention = forced_attention(memory, mask, rnn_states, tokens)
            return {
                "translation": target_tokenizer.detokenize(tf.RaggedTensor.from_tensor(words, padding=PAD_ID)),
                "score": scores,
                "source_tokens": tf.where(mask, source_tokenizer.id_to_piece(source_ids), ""),
                "target_tokens": tf.where(kept, target_tokenizer.id_to_piece(tokens), ""),
                "attention": attention * tf.cast(kept, attention.dtype)[:, :, None],
            }

        signature = [
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([None], tf.int32, name="beam_size"),
            tf.TensorSpec([None], tf.float32, name="length_penalty"),
            tf.TensorSpec([None], tf.int32, name="max_length"),
        ]
        return {"serving_default": (translate, signature), "translate": (translate, signature)}

