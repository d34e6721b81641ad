"""Text to token strings and back, in the TensorFlow graph.

A tokenizer runs inside `tf.data` and inside an exported SavedModel, so the
tokens a model is trained on are the tokens it is served. Every tokenizer maps
a string tensor `(batch,)` to a `tf.RaggedTensor` of token strings
`(batch, None)` and back:

    tokenizer = get_tokenizer("whitespace")
    tokens = tokenizer.tokenize(["the <unk> sat", ""])  # [[b"the", b"<unk>", b"sat"], []]
    tokenizer.detokenize(tokens)  # [b"the <unk> sat", b""]

A scalar string gives a 1-D tensor of tokens (one example inside `Dataset.map`).

Registered names: `kim` (Kim 2014's clean-up, the text classifiers'),
`whitespace`, `characters` and `sentencepiece`. `get_tokenizer(**config)`
rebuilds a tokenizer from its `get_config()`.
"""

import io
import os

import tensorflow as tf

_TOKENIZERS = {}


def register_tokenizer(name):
    """Class decorator: make a `Tokenizer` subclass available as `get_tokenizer(name)`."""

    def register(cls):
        if name in _TOKENIZERS:
            raise ValueError(f"tokenizer {name!r} is already registered (by {_TOKENIZERS[name].__name__})")
        cls.registered_name = name
        _TOKENIZERS[name] = cls
        return cls

    return register


def tokenizer_names():
    return sorted(_TOKENIZERS)


def get_tokenizer(name="kim", **options):
    """A tokenizer by registered name, from a config dict, or a `Tokenizer` returned as it is.

    Args:
        name: a registered name (`kim`, `whitespace`, `characters`,
            `sentencepiece`), a dict as returned by `Tokenizer.get_config()`, or
            a `Tokenizer`.
        **options: the tokenizer's constructor arguments.

    Example:
    ```python
    get_tokenizer("characters")
    get_tokenizer("sentencepiece", model_file="run/assets/spm.model")
    get_tokenizer(tokenizer.get_config())  # a copy
    ```
    """
    if isinstance(name, Tokenizer):
        if options:
            raise ValueError(f"options {sorted(options)} cannot be applied to an existing tokenizer")
        return name
    if isinstance(name, dict):
        options = {**name, **options}
        name = options.pop("name")
    if name not in _TOKENIZERS:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of: {', '.join(tokenizer_names())}")
    return _TOKENIZERS[name](**options)


class Tokenizer(tf.Module):
    """Base class: strings to a ragged tensor of token strings, and back.

    Subclasses implement `tokenize` and `detokenize` with TensorFlow ops only
    (they are traced into `tf.data` functions and SavedModel signatures) and
    return their constructor arguments from `get_config`.

    Args:
        lowercase: bool, lower-case (Unicode-aware) before tokenising.
        name: optional module name.
    """

    registered_name = None
    separator = " "  # what `detokenize` puts between tokens

    def __init__(self, lowercase=False, name=None):
        super().__init__(name=name or f"{self.registered_name}_tokenizer")
        self.lowercase = lowercase

    def tokenize(self, texts):
        raise NotImplementedError

    def detokenize(self, tokens):
        """Token strings `(batch, None)` (ragged or dense) to one string per row, `(batch,)`."""
        return tf.strings.reduce_join(tokens, axis=-1, separator=self.separator)

    def get_config(self):
        return {"name": self.registered_name, "lowercase": self.lowercase}

    def _prepare(self, texts):
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return texts


# Kim (2014)'s clean_str, made Unicode-aware: keep letters, digits and a little
# punctuation, split clitics and punctuation off as tokens.
_KIM_REPLACEMENTS = (
    (r"<br\s*/?>", " "),
    (r"[^\p{L}\p{N}(),!?'`]", " "),
    (r"'s\b", " 's"),
    (r"'ve\b", " 've"),
    (r"n't\b", " n't"),
    (r"'re\b", " 're"),
    (r"'d\b", " 'd"),
    (r"'ll\b", " 'll"),
    (r"([,!?()])", r" \1 "),
    (r"\s+", " "),
)


def standardize(texts, lowercase=True):
    """Lower-case and split punctuation off words, Kim-style (a tf function of strings)."""
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    for pattern, rewrite in _KIM_REPLACEMENTS:
        texts = tf.strings.regex_replace(texts, pattern, rewrite)
    return tf.strings.strip(texts)


@register_tokenizer("kim")
class KimTokenizer(Tokenizer):
    """Kim (2014)'s `clean_str` then whitespace split: the text classifiers' tokens.

    Markup such as `<br />` and symbols other than `(),!?'` are dropped, and
    clitics (`'s`, `n't`, ...) and punctuation become tokens of their own.
    Lossy: `detokenize` joins the cleaned tokens with spaces.

    Args:
        lowercase: bool, lower-case first (default `True`, as Kim).
    """

    def __init__(self, lowercase=True, name=None):
        super().__init__(lowercase=lowercase, name=name)

    def tokenize(self, texts):
        return tf.strings.split(standardize(texts, self.lowercase))


@register_tokenizer("whitespace")
class WhitespaceTokenizer(Tokenizer):
    """Split on runs of whitespace; case, punctuation and markup such as `<unk>` kept.

    For pre-tokenised corpora (Penn Treebank, CoNLL, WMT after Moses).
    `detokenize` joins tokens with one space, so a text with single spaces and
    no leading or trailing space round-trips exactly.

    Args:
        lowercase: bool, lower-case first (default `False`).
    """

    def tokenize(self, texts):
        return tf.strings.split(self._prepare(texts))


@register_tokenizer("characters")
class CharacterTokenizer(Tokenizer):
    """Every Unicode character of the UTF-8 text is a token, spaces and newlines included.

    `detokenize` concatenates, so every valid UTF-8 text round-trips exactly
    (invalid bytes become U+FFFD). Characters are code points: a letter
    followed by a combining accent is two tokens.

    Args:
        lowercase: bool, lower-case first (default `False`).
    """

    separator = ""

    def tokenize(self, texts):
        return tf.strings.unicode_split(self._prepare(texts), "UTF-8")


@register_tokenizer("sentencepiece")
class SentencePieceTokenizer(Tokenizer):
    """Subword pieces of a trained SentencePiece model, run in the graph by tensorflow-text.

    The serialised model is an attribute of the graph op that loads it, so an
    exported SavedModel carries it as a constant; a model read from a file is
    also tracked as an asset, so the `.model` file travels with the export.
    Loading such a SavedModel needs `import tensorflow_text` first (its kernels).

    Args:
        model_file: path to a `.model` file (see `train_sentencepiece`).
        proto: the serialised model bytes instead of a file.
        lowercase: bool, lower-case before encoding (default `False`; train the
            model on lower-cased text too).

    Example:
    ```python
    path = train_sentencepiece(texts, 8000, "unigram", "assets/spm")
    tokenizer = SentencePieceTokenizer(model_file=path)
    tokenizer.tokenize(["Hello world"])  # [[b"\u2581Hello", b"\u2581wor", b"ld"]]
    ```
    """

    separator = ""

    def __init__(self, model_file=None, proto=None, lowercase=False, name=None):
        super().__init__(lowercase=lowercase, name=name)
        if (model_file is None) == (proto is None):
            raise ValueError("give a SentencePiece model as exactly one of `model_file` or `proto`")
        import tensorflow_text  # only this tokenizer needs it; it registers the graph ops

        self.model_file = model_file
        self._proto = proto
        if model_file is not None:
            with open(model_file, "rb") as f:
                proto = f.read()
            self.model_asset = tf.saved_model.Asset(model_file)
        self.sentencepiece = tensorflow_text.SentencepieceTokenizer(model=proto, out_type=tf.string)

    @property
    def vocabulary_size(self):
        return int(self.sentencepiece.vocab_size())

    def tokenize(self, texts):
        return self.sentencepiece.tokenize(self._prepare(texts))

    def detokenize(self, tokens):
        """Pieces (strings) or piece ids (ints) `(batch, None)` to one text per row."""
        return self.sentencepiece.detokenize(tokens)

    def token_ids(self, texts):
        """Piece ids of each text, a `tf.RaggedTensor` of int32 `(batch, None)` (the model's own ids)."""
        return self.sentencepiece.string_to_id(self.tokenize(texts))

    def id_to_piece(self, ids):
        """The piece string of every id, any shape (dense or ragged)."""
        return self.sentencepiece.id_to_string(ids)

    def get_config(self):
        config = super().get_config()
        if self.model_file is not None:
            config["model_file"] = self.model_file
        else:
            config["proto"] = self._proto
        return config


def train_sentencepiece(texts, vocabulary_size, model_type, path, **options):
    """Train a SentencePiece model on an iterable of texts; write `path + ".model"` atomically.

    Args:
        texts: iterable of str (read once, e.g. a generator over a corpus).
        vocabulary_size: int, number of pieces including `<unk>`, `<s>`, `</s>`.
        model_type: `unigram`, `bpe`, `char` or `word`.
        path: output prefix; the model is written to `path + ".model"`.
        **options: further `sentencepiece` trainer flags, e.g.
            `character_coverage=0.9995` for large scripts,
            `max_sentence_length` (longer texts are skipped) or
            `user_defined_symbols=["<eos>"]`. Defaults here:
            `character_coverage=1.0` (every character of small corpora kept).

    Returns:
        The path of the written `.model` file.
    """
    import sentencepiece

    options.setdefault("character_coverage", 1.0)
    model = io.BytesIO()
    with open(os.devnull, "w") as quiet:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=(str(text) for text in texts),
            model_writer=model,
            vocab_size=vocabulary_size,
            model_type=model_type,
            logstream=quiet,
            **options,
        )
    model_file = path + ".model"
    tmp = model_file + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model.getvalue())
    os.replace(tmp, model_file)
    return model_file
