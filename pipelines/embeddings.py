"""Pretrained word vectors: readers for the published formats, and alignment to a task vocabulary.

Every reader returns a gensim `KeyedVectors` (a `FastTextKeyedVectors` for fastText `.bin` files, which keeps
the subword buckets so that any word gets a vector). Text and word2vec binary files are parsed here rather than by
gensim's loader so that a bad file is reported with its line (or record) and the fix; fastText `.bin` and gensim's
own files go through gensim.
"""

import bz2
import dataclasses
import gzip
import json
import logging
import os
import pathlib

import numpy as np
from gensim.models import KeyedVectors

from keras_tasks.pipelines.errors import DataError

logger = logging.getLogger(__name__)

FORMATS = ("word2vec-binary", "word2vec-text", "glove", "fasttext-vec", "fasttext-bin", "gensim")
_ALIASES = {
    "word2vec-bin": "word2vec-binary",
    "w2v-binary": "word2vec-binary",
    "w2v-text": "word2vec-text",
    "vec": "fasttext-vec",
    "fasttext": "fasttext-bin",
    "keyedvectors": "gensim",
    "kv": "gensim",
}
# fastText's binary models start with this little-endian int32.
_FASTTEXT_MAGIC = np.int32(793712314).tobytes()
_SNIFF_BYTES = 1 << 16
_FORMAT_HINT = f"pass the format explicitly, one of: {', '.join(FORMATS)}"


def load_vectors(path, format=None):
    """Reads pretrained word vectors from `path`.

    Args:
        path: a word2vec binary or text file, a GloVe text file (no header), a fastText `.vec` or `.bin` file,
            or a gensim `KeyedVectors` (or full `Word2Vec`/`FastText` model) file. Text and word2vec binary files
            may be gzip or bz2 compressed (`.gz`, `.bz2`).
        format: one of `FORMATS`, or None to detect it from the extension and the first bytes.

    Returns:
        A gensim `KeyedVectors` with float32 vectors, words in file order (most frequent first in the published
        files); `source_path` and `source_format` attributes say where it came from.

    Raises:
        DataError: the file is missing, empty or corrupt, its header disagrees with its contents, or its vectors
            do not all have the same size.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(path, "no such vector file", hint="check the path given to --embeddings")
    format = _canonical_format(path, format) if format else detect_format(path)
    if format == "fasttext-bin":
        vectors = _read_fasttext_bin(path)
    elif format == "gensim":
        vectors = _read_gensim(path)
    else:
        try:
            if format == "word2vec-binary":
                vectors = _read_word2vec_binary(path)
            else:
                vectors = _read_text(path, header=format != "glove", format=format)
        except (OSError, EOFError) as error:  # a damaged .gz/.bz2 archive, or a read error
            raise DataError(path, f"cannot read the file: {error}", hint="re-download the file") from error
    vectors.source_path = str(path)
    vectors.source_format = format
    logger.info("read %d vectors of %d dims from %s (%s)", len(vectors), vectors.vector_size, path, format)
    return vectors


def detect_format(path):
    """Guesses the format of a vector file from its extension and first bytes (see `load_vectors`)."""
    path = pathlib.Path(path)
    head = _read_head(path)
    if not head:
        raise DataError(path, "the vector file is empty", hint="re-download or regenerate it")
    suffix = _suffix(path)
    if head[:4] == _FASTTEXT_MAGIC:
        return "fasttext-bin"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "gensim"  # a pickle, which is how gensim's `save` writes
    first_line, _, rest = head.partition(b"\n")
    header = _parse_header(first_line)
    if header is None:
        if suffix == ".bin":
            raise DataError(
                path,
                "neither a fastText model nor a word2vec binary file (no 'COUNT DIM' header)",
                line=1,
                hint=f"the file may be truncated or of another kind; {_FORMAT_HINT}",
            )
        return "glove"
    if _looks_like_text_record(rest, header[1]):
        return "fasttext-vec" if suffix == ".vec" else "word2vec-text"
    return "word2vec-binary"


def _canonical_format(path, format):
    format = _ALIASES.get(format.lower(), format.lower())
    if format not in FORMATS:
        raise DataError(path, f"unknown vector format {format!r}", hint=f"use one of: {', '.join(FORMATS)}")
    return format


def _suffix(path):
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2"):
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _open_binary(path):
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb")


def _read_head(path):
    try:
        with _open_binary(path) as f:
            return f.read(_SNIFF_BYTES)
    except (OSError, EOFError) as error:
        raise DataError(path, f"cannot read the file: {error}", hint="the file is corrupt; re-download it") from error


def _parse_header(line):
    fields = line.split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        return None
    return int(fields[0]), int(fields[1])


def _looks_like_text_record(data, dim):
    line = data.split(b"\n", 1)[0]
    parts = line.rstrip().split(b" ")
    if len(parts) != dim + 1:
        return False
    try:
        [float(part) for part in parts[1:]]
    except ValueError:
        return False
    return True


def _decode(word):
    try:
        return word.decode("utf-8")
    except UnicodeDecodeError:
        # Google's word2vec binary files hold a few Latin-1 words.
        return word.decode("latin-1")


def _bad_header(path, first_line):
    return DataError(
        path,
        f"expected a header 'COUNT DIM' (two positive integers), found {first_line[:60]!r}",
        line=1,
        hint="if the file has no header it is GloVe text: use format='glove'",
    )


def _read_text(path, header, format):
    """Reads word2vec text / fastText `.vec` (header 'COUNT DIM') or GloVe text (no header)."""
    count, dim = None, None
    keys, rows, lines = [], [], []
    number = 0
    with _open_binary(path) as f:
        for number, raw in enumerate(f, start=1):
            text = _decode(raw).rstrip(" \t\r\n")
            if number == 1 and header:
                parsed = _parse_header(raw)
                if parsed is None or 0 in parsed:
                    raise _bad_header(path, text)
                count, dim = parsed
                continue
            if not text:
                continue
            parts = text.split(" ")
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise DataError(path, "expected 'word v1 v2 ...', found a lone word", line=number)
            word, values = _split_record(path, number, parts, dim, header, format)
            keys.append(word)
            rows.append(values)
            lines.append(number)
    if number == 0:
        raise DataError(path, "the vector file is empty", hint="re-download or regenerate it")
    if count is not None and len(rows) != count:
        raise DataError(
            path,
            f"the header says {count} vectors but the file holds {len(rows)}",
            line=1,
            hint=f"fix the first line to '{len(rows)} {dim}', or re-download the file if it was cut short",
        )
    if not rows:
        raise DataError(path, "the vector file holds no vectors", hint="re-download or regenerate it")
    return _keyed_vectors(path, keys, np.stack(rows), lines)


def _split_record(path, number, parts, dim, header, format):
    if len(parts) == dim + 1:
        word, fields = parts[0], parts[1:]
    elif len(parts) > dim + 1 and not _is_number(parts[1]):
        # A few GloVe words hold spaces (". . ."): the last `dim` fields are the vector.
        word, fields = " ".join(parts[:-dim]), parts[-dim:]
    else:
        source = "the header" if header else "line 1"
        raise DataError(
            path,
            f"expected a word and {dim} values (as {source} says), found {len(parts) - 1} values",
            line=number,
            hint="the file mixes vectors of different sizes or was cut short; re-download or regenerate it"
            + ("" if header else f", or if line 1 is a 'COUNT DIM' header use format='word2vec-text'"),
        )
    try:
        values = np.array(fields, dtype=np.float32)
    except ValueError:
        bad = next(field for field in fields if not _is_number(field))
        raise DataError(
            path,
            f"value {bad[:30]!r} of word {word[:30]!r} is not a number",
            line=number,
            hint=f"the file is corrupt, or not in {format} format; {_FORMAT_HINT}",
        ) from None
    if not np.all(np.isfinite(values)):
        raise DataError(path, f"the vector of {word[:30]!r} holds NaN or infinity", line=number,
                        hint="regenerate the vectors")
    return word, values


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_word2vec_binary(path):
    """Reads the word2vec C tool's binary format: 'COUNT DIM\\n', then per word 'word ' + DIM float32 (+ '\\n')."""
    with _open_binary(path) as f:
        first = f.readline(1000)
        if not first:
            raise DataError(path, "the vector file is empty", hint="re-download or regenerate it")
        parsed = _parse_header(first)
        if parsed is None or 0 in parsed:
            raise _bad_header(path, _decode(first).rstrip())
        count, dim = parsed
        reader = _ChunkReader(f)
        vectors = np.empty((count, dim), dtype=np.float32)
        keys = []
        record_bytes = 4 * dim
        for index in range(count):
            reader.skip_newlines()
            word = reader.read_until_space()
            where = f"vector {index + 1} of {count} (byte {reader.offset + len(first)})"
            if word is None:
                raise DataError(
                    path,
                    f"the file ends at {where}: the header says {count} vectors",
                    line=1,
                    hint=f"fix the header to '{index} {dim}' or re-download the file if it was cut short",
                )
            data = reader.read(record_bytes)
            if word == b"" or len(word) > 1000 or any(byte < 32 for byte in word) or data is None:
                raise DataError(
                    path,
                    f"{where} is not 'word' + {dim} float32 values",
                    line=1,
                    hint="the header's COUNT or DIM is wrong or the file is cut short or not binary; "
                    "if it is text use format='word2vec-text'",
                )
            keys.append(_decode(word))
            vectors[index] = np.frombuffer(data, dtype="<f4")
        reader.skip_newlines()
        if reader.read(1) is not None:
            raise DataError(
                path,
                f"the file holds more data after the {count} vectors its header announces",
                line=1,
                hint="the header's COUNT or DIM is wrong: fix the first line or regenerate the file",
            )
    if not np.all(np.isfinite(vectors)):
        raise DataError(path, "some vectors hold NaN or infinity", hint="regenerate the vectors")
    return _keyed_vectors(path, keys, vectors, None)


class _ChunkReader:
    """Buffered reads over a binary stream, so records can be parsed without one `read` call per byte."""

    def __init__(self, stream, chunk_size=1 << 20):
        self.stream = stream
        self.chunk_size = chunk_size
        self.buffer = b""
        self.position = 0
        self.offset = 0  # bytes consumed before `buffer`

    def _fill(self, needed):
        while len(self.buffer) - self.position < needed:
            chunk = self.stream.read(self.chunk_size)
            if not chunk:
                return False
            self.offset += self.position
            self.buffer = self.buffer[self.position :] + chunk
            self.position = 0
        return True

    def skip_newlines(self):
        while self._fill(1) and self.buffer[self.position : self.position + 1] in (b"\n", b"\r"):
            self.position += 1

    def read_until_space(self):
        while True:
            end = self.buffer.find(b" ", self.position)
            if end >= 0:
                word = self.buffer[self.position : end]
                self.position = end + 1
                return word
            if len(self.buffer) - self.position > 1000 or not self._fill(len(self.buffer) - self.position + 1):
                # No space within reach: either the end of the file or not a word.
                return None if len(self.buffer) == self.position else self.buffer[self.position :][:1001]

    def read(self, size):
        if not self._fill(size):
            return None
        data = self.buffer[self.position : self.position + size]
        self.position += size
        return data


def _keyed_vectors(path, keys, vectors, lines):
    key_to_index, keep = {}, []
    for index, key in enumerate(keys):
        if key not in key_to_index:
            key_to_index[key] = len(keep)
            keep.append(index)
    if len(keep) < len(keys):
        kept = set(keep)
        first = next(i for i in range(len(keys)) if i not in kept)
        where = f"line {lines[first]}" if lines else f"vector {first + 1}"
        logger.warning("%s: %d repeated words (first %r at %s); kept the first vector of each",
                       path, len(keys) - len(keep), keys[first], where)
        vectors = vectors[keep]
        keys = [keys[i] for i in keep]
    result = KeyedVectors(vectors.shape[1], count=0, dtype=np.float32)
    result.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    result.index_to_key = list(keys)
    result.key_to_index = key_to_index
    result.next_index = len(keys)
    return result


def _read_fasttext_bin(path):
    from gensim.models.fasttext import load_facebook_vectors

    head = _read_head(path)
    if head[:4] != _FASTTEXT_MAGIC:
        raise DataError(path, "not a fastText binary model (wrong magic number)", hint=_FORMAT_HINT)
    try:
        return load_facebook_vectors(str(path))
    except Exception as error:  # gensim raises struct, numpy, assertion and EOF errors on damaged files
        raise DataError(
            path,
            f"cannot read the fastText model: {type(error).__name__}: {error}",
            hint="the file is cut short or damaged; re-download it, or use its .vec file (no subword vectors)",
        ) from error


def _read_gensim(path):
    from gensim.utils import SaveLoad

    # gensim's files are pickles: load only files you trust.
    try:
        loaded = SaveLoad.load(str(path))
    except Exception as error:  # unpickling a damaged file raises almost anything
        raise DataError(
            path,
            f"cannot read the gensim file: {type(error).__name__}: {error}",
            hint="it is damaged, or its '.npy' side files are missing from the same folder",
        ) from error
    vectors = getattr(loaded, "wv", loaded)
    if not isinstance(vectors, KeyedVectors):
        raise DataError(path, f"the gensim file holds a {type(loaded).__name__}, not word vectors", hint=_FORMAT_HINT)
    if not len(vectors):
        raise DataError(path, "the gensim file holds no vectors", hint="re-train or re-save the vectors")
    return vectors


# === Alignment to a task vocabulary ===


@dataclasses.dataclass
class CoverageReport:
    """How much of a task vocabulary the pretrained vectors cover.

    Counts are over vocabulary words, not counting the padding and OOV tokens. `exact` words were found as they
    are, `normalized` ones after normalisation (e.g. lowercasing), `subword` ones got a fastText subword vector,
    and `random` ones the uniform initialisation U[-init_scale, init_scale]. Token counts are over the corpus
    given as `token_counts` (None without it); tokens outside the vocabulary count as not covered.
    """

    source: str | None
    format: str | None
    dim: int
    vocabulary_size: int
    exact: int
    normalized: int
    subword: int
    random: int
    init_scale: float
    scaled_by: float = 1.0
    tokens_total: int | None = None
    tokens_covered: int | None = None
    tokens_subword: int | None = None
    top_missing: list = dataclasses.field(default_factory=list)

    @property
    def pretrained(self):
        return self.exact + self.normalized

    @property
    def vocabulary_coverage(self):
        return self.pretrained / self.vocabulary_size if self.vocabulary_size else 0.0

    @property
    def token_coverage(self):
        if not self.tokens_total:
            return None
        return self.tokens_covered / self.tokens_total

    def to_dict(self):
        result = dataclasses.asdict(self)
        result["top_missing"] = [list(item) for item in self.top_missing]
        result["pretrained"] = self.pretrained
        result["vocabulary_coverage"] = self.vocabulary_coverage
        result["token_coverage"] = self.token_coverage
        return result

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_text(self):
        name = os.path.basename(self.source) if self.source else "vectors"
        size = self.vocabulary_size
        lines = [
            f"Pretrained embeddings: {name} ({self.format or 'in memory'}, {self.dim} dims)",
            f"  vocabulary coverage: {self.pretrained:,} / {size:,} words ({_percent(self.vocabulary_coverage)}): "
            f"{self.exact:,} exact, {self.normalized:,} after normalisation",
        ]
        if self.subword:
            lines.append(f"  subword vectors:     {self.subword:,} words (fastText n-grams)")
        if self.tokens_total:
            line = f"  token coverage:      {_percent(self.token_coverage)} of {self.tokens_total:,} tokens"
            if self.tokens_subword:
                line += f" (+{_percent(self.tokens_subword / self.tokens_total)} from subwords)"
            lines.append(line)
        lines.append(
            f"  random init:         {self.random:,} words, U[-{self.init_scale:.4g}, {self.init_scale:.4g}] "
            "(variance matched to the pretrained vectors)"
        )
        if self.scaled_by != 1.0:
            lines.append(f"  rescaled:            all vectors multiplied by {self.scaled_by:.4g}")
        if self.top_missing:
            words = ", ".join(word if count is None else f"{word} ({count:,})" for word, count in self.top_missing)
            lines.append(f"  top missing words:   {words}")
        return "\n".join(lines)

    def write(self, directory, name="embedding_coverage"):
        """Writes `NAME.json` and `NAME.txt` into `directory` (a run directory); returns the JSON path."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.txt").write_text(self.to_text() + "\n", encoding="utf-8")
        path = directory / f"{name}.json"
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path


def _percent(value):
    return f"{100 * value:.1f}%"


def init_scale(vectors, max_rows=200_000):
    """Kim's bound `a` for U[-a, a] with the variance of the pretrained vectors: a = sqrt(3 * var)."""
    matrix = vectors.vectors
    if len(matrix) > max_rows:
        matrix = matrix[:max_rows]  # the most frequent words: enough for a variance
    return float(np.sqrt(3.0 * np.var(matrix, dtype=np.float64)))


def align_vectors(
    vocabulary,
    vectors,
    normalize=str.lower,
    seed=None,
    token_counts=None,
    padding_token="",
    oov_token="[UNK]",
    expected_dim=None,
    top_missing=20,
    rescale_to=None,
):
    """Builds an embedding matrix for `vocabulary` from pretrained `vectors`.

    Each word is looked up as it is, then as `normalize(word)`, then among the vectors' own words after the same
    normalisation (so "paris" finds "Paris" in cased vectors; the most frequent casing wins). With fastText
    `.bin` vectors, a word still missing gets its subword vector. Other words, and the OOV token, get Kim's
    initialisation: U[-a, a] with a = sqrt(3 * var) so their variance matches the pretrained vectors'. The
    padding token's row is zeros.

    Args:
        vocabulary: list of tokens; Keras `TextVectorization` puts the padding token "" at index 0 and the OOV
            token "[UNK]" at index 1.
        vectors: gensim `KeyedVectors` (from `load_vectors`).
        normalize: the tokenizer's normalisation (a callable on one word), or None.
        seed: seed of the random initialisation.
        token_counts: optional dict word -> count over the training corpus, for token coverage and to rank the
            missing words.
        padding_token: the token whose row is zeros.
        oov_token: the token standing for out-of-vocabulary words (randomly initialised).
        expected_dim: the embedding size the model expects, or None to take the vectors' size.
        top_missing: how many missing words the report lists.
        rescale_to: optional bound `a` to rescale to: every row is multiplied by `rescale_to / a`, so pretrained
            vectors of any scale (GloVe's a is about 1.25) start at the scale of Kim's random init (0.25), which
            matters for fine-tuning with a fixed-step optimizer such as Adam. None keeps the vectors as they are.

    Returns:
        `(matrix, report)`: a float32 array of shape `(len(vocabulary), dim)` and a `CoverageReport`.

    Raises:
        DataError: the vectors' size differs from `expected_dim`.
    """
    source = getattr(vectors, "source_path", None)
    dim = vectors.vector_size
    if expected_dim is not None and expected_dim != dim:
        raise DataError(
            source or "vectors",
            f"the vectors have {dim} dimensions but the model expects {expected_dim}",
            hint=f"set the model's embedding size to {dim}, or use {expected_dim}-dimensional vectors",
        )
    scale = init_scale(vectors)
    factor = 1.0 if rescale_to is None else rescale_to / scale
    rng = np.random.default_rng(seed)
    # Draw every row up front so a word's initial vector does not depend on which other words are covered.
    matrix = rng.uniform(-scale, scale, size=(len(vocabulary), dim)).astype(np.float32)
    lookup = _Lookup(vectors, normalize)
    has_subwords = getattr(vectors, "bucket", 0) > 0
    counts = {"exact": 0, "normalized": 0, "subword": 0, "random": 0}
    kinds = []
    for index, word in enumerate(vocabulary):
        if word == padding_token:
            matrix[index] = 0.0
            kinds.append(None)
            continue
        if word == oov_token:
            kinds.append(None)
            continue
        key, kind = lookup(word)
        if key is None and has_subwords:
            matrix[index] = vectors.get_vector(word)
            kind = "subword"
        elif key is not None:
            matrix[index] = vectors.get_vector(key)
        counts[kind] += 1
        kinds.append(kind)
    if factor != 1.0:
        matrix *= np.float32(factor)
    report = CoverageReport(
        source=source,
        format=getattr(vectors, "source_format", None),
        dim=dim,
        vocabulary_size=sum(kind is not None for kind in kinds),
        init_scale=scale * factor,
        scaled_by=factor,
        **counts,
    )
    _add_token_coverage(report, vocabulary, kinds, token_counts, top_missing)
    return matrix, report


class _Lookup:
    """Finds the key of a vocabulary word in the vectors: exact, normalised, then among normalised keys."""

    def __init__(self, vectors, normalize):
        self.vectors = vectors
        self.normalize = normalize
        self._normalized_keys = None

    def __call__(self, word):
        key_to_index = self.vectors.key_to_index
        if word in key_to_index:
            return word, "exact"
        if self.normalize is None:
            return None, "random"
        normalized = self.normalize(word)
        if normalized in key_to_index:
            return normalized, "normalized"
        if self._normalized_keys is None:
            self._normalized_keys = {}
            for key in self.vectors.index_to_key:  # most frequent first: it wins
                self._normalized_keys.setdefault(self.normalize(key), key)
        key = self._normalized_keys.get(normalized)
        return (key, "normalized") if key is not None else (None, "random")


def _add_token_coverage(report, vocabulary, kinds, token_counts, top_missing):
    missing = [word for word, kind in zip(vocabulary, kinds) if kind == "random"]
    if token_counts is None:
        report.top_missing = [(word, None) for word in missing[:top_missing]]
        return
    report.tokens_total = int(sum(token_counts.values()))
    report.tokens_covered = int(
        sum(token_counts.get(word, 0) for word, kind in zip(vocabulary, kinds) if kind in ("exact", "normalized"))
    )
    report.tokens_subword = int(
        sum(token_counts.get(word, 0) for word, kind in zip(vocabulary, kinds) if kind == "subword")
    )
    missing.sort(key=lambda word: -token_counts.get(word, 0))
    report.top_missing = [(word, int(token_counts.get(word, 0))) for word in missing[:top_missing]]
