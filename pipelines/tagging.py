"""In-graph text to tokens (with character offsets), token features, and tags back to entity spans.

Everything here is TensorFlow and runs both in `tf.data` and inside an exported SavedModel, so a served
tagger tokenises and featurises raw sentences exactly as its training data was:

    tokens, starts, ends = split_tokens(["U.N. official Ekeus heads for Baghdad."])
    # [[b"U.N.", b"official", b"Ekeus", b"heads", b"for", b"Baghdad", b"."]], starts [[0, 5, 14, ...]]
    features = featurizer(tokens.to_tensor(""))  # {"token_ids", "char_ids", "casing_ids"}
    spans = entity_spans(tag_ids, tag_names, starts, ends, texts)

Offsets count Unicode characters (code points), end exclusive: `text[start:end]` in Python is the token.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_tasks.pipelines.text import OOV_TOKEN, PAD_TOKEN

# CoNLL-style tokens (RE2 syntax), tried in this order at each position: runs of dashes or dots (-- ...),
# abbreviations and initials (U.N., vs., St., M.), currencies (A$ US$), numbers with their separators and
# suffixes (1,000 3.5 .500 +44 1996-08-22 10th 1970s 12-year-old), clitics (Germany 's, does n't), words with
# inner hyphens, ampersands or apostrophes (pro-Western, AT&T, O'Neill), and any other single character. Clitics are
# first split off their word (a space inserted), since RE2 has no look-ahead.
_ABBREVIATIONS = "vs|St|Inc|Mr|Mrs|Ms|Dr|Jr|Sr|Co|Corp|Ltd|No|Gen|Lt|Col|Sgt|Rep|Sen|Gov|Mt|Ft|Jan|Feb|Aug|Sept|Oct|Nov|Dec"
_CLITIC = r"(?i:n't|'s|'re|'ve|'ll|'m|'d)"
_CLITIC_SPLIT = (r"(\p{L})(" + _CLITIC + r")\b", r"\1 \2")
TOKEN_PATTERN = (
    r"-{2,}|\.{2,}|={2,}|\*{2,}"
    r"|(?:\p{L}\.){2,}|(?:" + _ABBREVIATIONS + r")\.|\p{Lu}\."
    r"|\p{Lu}{1,3}\$"
    r"|\+?\p{N}+(?:[.,:/-]\p{N}+)*\p{L}*(?:-[\p{L}\p{N}]+)*|\.\p{N}+"
    r"|" + _CLITIC + r"\b"
    r"|\p{L}[\p{L}\p{N}]*(?:(?:[-&]|'\p{L}{2,})[\p{L}\p{N}]*)*"
    r"|\S"
)
_SPACE = r"[ \t\n\r\f\v]"

# Word shapes (Lample et al.'s casing feature, as in Chiu & Nichols 2016), id 0 is padding.
CASINGS = (
    ("numeric", r"\p{N}+"),
    ("mainly_numeric", r"[\p{N}.,:/-]+"),
    ("lower", r"\p{Ll}+"),
    ("upper", r"\p{Lu}+"),
    ("initial_upper", r"\p{Lu}.*"),
    ("has_digit", r".*\p{N}.*"),
)


def split_tokens(texts, pretokenized=False):
    """Tokens of each text and their character offsets.

    Args:
        texts: string tensor `(batch,)`.
        pretokenized: `True` takes the whitespace-separated tokens as they are; `False` also splits
            punctuation off words (`TOKEN_PATTERN`), as CoNLL-2003 is tokenised.

    Returns:
        `(tokens, starts, ends)`: ragged `(batch, None)` string tokens and int32 offsets in characters.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    spaced = texts
    if not pretokenized:
        spaced = tf.strings.regex_replace(spaced, *_CLITIC_SPLIT)
        spaced = tf.strings.regex_replace(spaced, TOKEN_PATTERN, r" \0 ")
    tokens = tf.strings.split(tf.strings.regex_replace(spaced, _SPACE, " "), sep=" ")
    tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
    # Tokens only add spaces to the text: a token's k-th character is the text's k-th non-space character.
    characters = tf.strings.unicode_split(texts, "UTF-8")  # (batch, None)
    is_text = tf.ragged.map_flat_values(lambda c: tf.logical_not(tf.strings.regex_full_match(c, _SPACE)), characters)
    positions = tf.ragged.boolean_mask(tf.ragged.range(characters.row_lengths()), is_text)  # non-space characters
    lengths = tf.cast(tf.strings.length(tokens.flat_values, unit="UTF8_CHAR"), tf.int64)
    rows = tokens.value_rowids()
    joined = tf.math.cumsum(lengths, exclusive=True)  # over the whole batch's non-space characters
    within_row = joined - tf.gather(joined, tf.gather(tokens.row_starts(), rows))
    first_index = tf.gather(positions.row_starts(), rows) + within_row
    last_index = first_index + lengths - 1
    flat_positions = positions.flat_values
    starts = tf.cast(tf.gather(flat_positions, first_index), tf.int32)
    ends = tf.cast(tf.gather(flat_positions, last_index), tf.int32) + 1
    return tokens, tokens.with_flat_values(starts), tokens.with_flat_values(ends)


def casing_ids(tokens):
    """Word-shape ids of string tokens (any shape): 0 for padding (`""`), 1 for other, then `CASINGS` in order."""
    ids = tf.where(tf.strings.length(tokens) > 0, 1, 0)
    for index, (_, pattern) in reversed(list(enumerate(CASINGS, 2))):
        ids = tf.where(tf.strings.regex_full_match(tokens, pattern), index, ids)
    return tf.cast(ids, tf.int32)


def normalize_words(tokens, lowercase=True, digits_to_zero=True):
    """The form a word is looked up in the vocabulary: lower-cased, every digit 0 (Lample et al.)."""
    if lowercase:
        tokens = tf.strings.lower(tokens, encoding="utf-8")
    if digits_to_zero:
        tokens = tf.strings.regex_replace(tokens, r"\p{Nd}", "0")
    return tokens


class TokenFeaturizer(tf.Module):
    """Padded token strings `(batch, time)` to the tagger's inputs: word ids, character ids and casing ids.

    Args:
        words: the word vocabulary (normalised forms, no padding or OOV entries).
        characters: the character vocabulary.
        lowercase: bool, look words up lower-cased.
        digits_to_zero: bool, look words up with every digit replaced by 0.
        max_word_length: int, characters kept per word for the character features.

    Call returns `{"token_ids": (batch, time), "char_ids": (batch, time, chars), "casing_ids": (batch, time)}`
    (int32; padding tokens `""` give zeros).
    """

    def __init__(self, words, characters, lowercase=True, digits_to_zero=True, max_word_length=25, name="featurizer"):
        super().__init__(name=name)
        self.lowercase = lowercase
        self.digits_to_zero = digits_to_zero
        self.max_word_length = max_word_length
        options = dict(mask_token=PAD_TOKEN, oov_token=OOV_TOKEN, num_oov_indices=1)
        self.word_lookup = keras.layers.StringLookup(vocabulary=list(words), **options)
        self.char_lookup = keras.layers.StringLookup(vocabulary=list(characters), **options)
        self.word_lookup.build((None,))
        self.char_lookup.build((None,))

    @property
    def vocabulary_size(self):
        return self.word_lookup.vocabulary_size()

    @property
    def characters_size(self):
        return self.char_lookup.vocabulary_size()

    def __call__(self, tokens):
        tokens = tf.convert_to_tensor(tokens, tf.string)
        words = normalize_words(tokens, self.lowercase, self.digits_to_zero)
        token_ids = tf.cast(self.word_lookup(words), tf.int32)
        characters = tf.strings.unicode_split(tokens, "UTF-8")[:, :, : self.max_word_length]  # (batch, time, None)
        char_ids = tf.ragged.map_flat_values(lambda c: tf.cast(self.char_lookup(c), tf.int32), characters)
        char_ids = char_ids.to_tensor(0)
        char_ids = tf.pad(char_ids, [[0, 0], [0, 0], [0, tf.maximum(0, 1 - tf.shape(char_ids)[2])]])
        return {"token_ids": token_ids, "char_ids": char_ids, "casing_ids": casing_ids(tokens)}


def tag_parts(tag_names):
    """`(prefix codes, type ids, type names)` of tag names: prefix 0 for O, 1-4 for B, I, E, S; type -1 for O."""
    types = sorted({tag.partition("-")[2] for tag in tag_names if tag != "O"})
    prefixes = [0 if tag == "O" else 1 + "BIES".index(tag[0]) for tag in tag_names]
    kinds = [-1 if tag == "O" else types.index(tag.partition("-")[2]) for tag in tag_names]
    return np.array(prefixes, "int32"), np.array(kinds, "int32"), types


def entity_spans(tag_ids, tag_names, starts, ends, texts, mask=None):
    """Entities of tagged tokens, read as conlleval (and `pipelines.conll.entities`) reads them.

    `B-`/`S-` open an entity, `I-`/`E-` continue an open one of the same type (or open one), `O` closes it,
    `E-`/`S-` close it after their token.

    Args:
        tag_ids: int `(batch, time)`, indices into `tag_names`.
        tag_names: list of tag strings (`O`, `B-PER`, ...).
        starts, ends: int `(batch, time)` character offsets of the tokens.
        texts: string `(batch,)`, the texts the offsets refer to.
        mask: optional bool `(batch, time)`, `True` on real tokens.

    Returns:
        `{"entities", "entity_types"}` strings and `{"entity_starts", "entity_ends"}` int32, all
        `(batch, max entities in the batch)`, padded with `""` and -1.
    """
    prefix_table, kind_table, type_names = tag_parts(tag_names)
    tag_ids = tf.cast(tag_ids, tf.int32)
    if mask is None:
        mask = tf.ones_like(tag_ids, tf.bool)
    prefix = tf.where(mask, tf.gather(prefix_table, tag_ids), 0)
    kind = tf.gather(kind_table, tag_ids)
    member = prefix > 0
    previous_prefix = tf.pad(prefix[:, :-1], [[0, 0], [1, 0]])
    previous_kind = tf.pad(kind[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
    continues = (
        ((prefix == 2) | (prefix == 3))
        & ((previous_prefix == 1) | (previous_prefix == 2))
        & (previous_kind == kind)
    )
    begins = member & tf.logical_not(continues)
    index = tf.cumsum(tf.cast(begins, tf.int32), axis=1) - 1  # the entity each member token belongs to
    counts = tf.reduce_sum(tf.cast(begins, tf.int32), axis=1)
    width = tf.reduce_max(tf.concat([counts, [0]], 0))
    batch = tf.shape(tag_ids)[0]
    segment = tf.where(member, tf.range(batch)[:, None] * width + index, batch * width)  # non-members: a spare
    slots = batch * width + 1

    def reduce(values, fn):
        flat = fn(tf.reshape(tf.cast(values, tf.int32), [-1]), tf.reshape(segment, [-1]), slots)
        return tf.reshape(flat[:-1], [batch, width])

    exists = tf.range(width)[None, :] < counts[:, None]
    entity_starts = tf.where(exists, reduce(tf.where(member, starts, 2**30), tf.math.unsorted_segment_min), -1)
    entity_ends = tf.where(exists, reduce(tf.where(member, ends, -1), tf.math.unsorted_segment_max), -1)
    entity_kinds = reduce(tf.where(begins, kind, -1), tf.math.unsorted_segment_max)
    type_table = tf.constant(list(type_names) + [""], tf.string)
    entity_types = tf.gather(type_table, tf.where(exists, entity_kinds, len(type_names)))
    repeated = tf.repeat(texts[:, None], width, axis=1)
    text = tf.strings.substr(
        repeated, tf.maximum(entity_starts, 0), tf.maximum(entity_ends - entity_starts, 0), unit="UTF8_CHAR"
    )
    return {
        "entities": tf.where(exists, text, ""),
        "entity_types": entity_types,
        "entity_starts": entity_starts,
        "entity_ends": entity_ends,
    }
