"""Language-model corpora: the raw text of each split, read from the published files.

`load_corpus(dataset)` returns a `Corpus` whose `texts` hold one string per
split (`train`, `validation`, `test`) and whose `unit` says what the model
predicts: `"word"` (whitespace-separated tokens) or `"char"`.

Named datasets (under the data directory, `$KERAS_TASKS_DATA`):

- `ptb`: Mikolov's Penn Treebank files `ptb/ptb.{train,valid,test}.txt.gz`
  (or uncompressed). Word level; tokens kept as published (`<unk>`, `N`).
  Every line ends in `<eos>`, the convention of Mikolov's RNNLM and of
  Zaremba et al. whose perplexities are the usual reference: 929,589 /
  73,760 / 82,430 tokens.
- `tinyshakespeare`: `tinyshakespeare/input.txt`, character level, split
  contiguously by characters. `train` is `data[:int(0.9 * n)]`, exactly
  nanoGPT's training split; nanoGPT validates on all the rest, which leaves
  no test text, so here `validation` is `data[int(0.9 n):int(0.95 n)]` and
  `test` is `data[int(0.95 n):]` (the 90/5/5 fractions of char-rnn's
  default). nanoGPT's own validation text, `data[int(0.9 n):]`, is in
  `Corpus.extra["nanogpt_val"]` so a model can be scored on exactly the text
  of nanoGPT's reported validation loss.
- `wikitext2`, `wikitext103`: the WikiText folders `wikitext-2/` and
  `wikitext-103/` holding `wiki.{train,valid,test}.tokens`. Word level,
  tokens as published (`<unk>`, `@-@`). `<eos>` ends each non-empty line. The
  common convention (PyTorch's word_language_model, torchtext, AWD-LSTM)
  ends *every* line in `<eos>`, blank lines included, which gives the
  published WikiText-2 training size of 2,088,628 tokens;
  `blank_line_eos=True` reproduces it, and perplexities compared with those
  papers need it.

Any other value of `dataset` is a path:

- a folder holding `wiki.*.tokens` or `ptb.*.txt` files: read as above;
- a folder holding `train.txt`, `valid.txt` (or `validation.txt`, `dev.txt`)
  and `test.txt`: those are the splits;
- any other folder: its `.txt` files, sorted by name and concatenated, are
  one text, split as a single file is;
- a plain-text file: split contiguously, 90% / 5% / 5% (`validation_fraction`,
  `test_fraction`). At character level the cuts fall at exactly those
  character positions; at word level each cut moves forward to the next
  whitespace so that no word is cut in two.

The unit of a user's own text is the caller's (`unit`, default `"word"`); at
word level each non-empty line ends in `<eos>`, as for WikiText. Files may be
gzipped. Line ends are normalised to `\\n`. Anything unreadable raises a
`DataError` naming the file (and the line) and the fix.
"""

import dataclasses
import os
import re

from keras_tasks.pipelines.data_dir import default_data_dir
from keras_tasks.pipelines.errors import ConfigError, DataError
from keras_tasks.pipelines.file_bytes import read_maybe_gzipped

SPLITS = ("train", "validation", "test")
UNITS = ("word", "char")
EOS = "<eos>"

DATASETS = {
    "ptb": "Penn Treebank, Mikolov's LM version: words, 10k vocabulary, 929k/74k/82k tokens with <eos>",
    "tinyshakespeare": "Tiny Shakespeare (char-rnn): characters, 1.1M; nanoGPT's 90% train, then 5% valid / 5% test",
    "wikitext2": "WikiText-2 (Merity et al. 2016): words, 2M training tokens; folder wikitext-2/ of wiki.*.tokens",
    "wikitext103": "WikiText-103 (Merity et al. 2016): words, 103M training tokens; folder wikitext-103/",
}

_FOLDERS = {"ptb": "ptb", "tinyshakespeare": "tinyshakespeare", "wikitext2": "wikitext-2", "wikitext103": "wikitext-103"}
_PTB_FILES = {"train": "ptb.train.txt", "validation": "ptb.valid.txt", "test": "ptb.test.txt"}
_WIKITEXT_FILES = {"train": "wiki.train.tokens", "validation": "wiki.valid.tokens", "test": "wiki.test.tokens"}
_SPLIT_STEMS = {"train": ("train",), "validation": ("valid", "validation", "dev"), "test": ("test",)}
_ADD_FILES_HINT = "add the missing files to the folder"
_ENCODING_HINT = "give the file's encoding with --set data.encoding=latin-1 (or convert the file to UTF-8)"


@dataclasses.dataclass(frozen=True)
class Corpus:
    """The raw text of each split of a language-model corpus.

    Attributes:
        texts: dict mapping `"train"`, `"validation"`, `"test"` to a string.
        unit: `"word"` (tokens are separated by whitespace) or `"char"`.
        description: one line saying where the text came from and how it
            was split.
        eos: the end-of-line token present in word-level texts (`"<eos>"`),
            `None` at character level.
        extra: further named texts to score, e.g. `"nanogpt_val"`.
    """

    texts: dict
    unit: str
    description: str
    eos: str = None
    extra: dict = dataclasses.field(default_factory=dict)


# === Reading text ===


def read_text(path, encoding="utf-8"):
    """The text of a file (gzipped or not), checked to be non-empty, decodable text."""
    if not os.path.isfile(path):
        raise DataError(path, "file not found")
    raw = read_maybe_gzipped(path)
    if not raw.strip():
        raise DataError(path, "file is empty", hint="give a file that holds the text")
    # UTF-16/32 text is full of NUL bytes; any other text has none.
    if not re.match(r"utf[-_]?(16|32)", encoding.lower()):
        nul = raw.find(b"\x00")
        if nul >= 0:
            raise DataError(
                path,
                f"binary data, not text (NUL byte at byte offset {nul})",
                line=raw.count(b"\n", 0, nul) + 1,
                hint="give a plain-text file; for UTF-16 text set --set data.encoding=utf-16",
            )
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise DataError(
            path,
            f"byte 0x{raw[e.start]:02x} at byte offset {e.start} is not valid {encoding}",
            line=raw.count(b"\n", 0, e.start) + 1,
            hint=_ENCODING_HINT,
        ) from None
    except LookupError:
        raise ConfigError(f"unknown text encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _lines(text):
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


def add_eos(text, blank_line_eos=False):
    """Each line's tokens followed by ` <eos>`; blank lines get a lone `<eos>` only when asked."""
    out = []
    for line in _lines(text):
        line = line.strip()
        if line:
            out.append(f"{line} {EOS}")
        else:
            out.append(EOS if blank_line_eos else "")
    return "\n".join(out) + "\n"


def _find(folder, name):
    """`name` or `name.gz` in `folder`, else None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def _read_split_files(folder, files, what, encoding, hint):
    paths = {split: _find(folder, name) for split, name in files.items()}
    missing = [files[split] for split in SPLITS if paths[split] is None]
    if missing:
        expected = ", ".join(files[split] for split in SPLITS)
        raise DataError(
            folder,
            f"{what} not found: missing {', '.join(missing)} (a {what} folder holds {expected}, optionally gzipped)",
            hint=hint,
        )
    return {split: read_text(paths[split], encoding) for split in SPLITS}


# === Splitting one text ===


def contiguous_splits(text, unit, validation_fraction=0.05, test_fraction=0.05, path="<text>"):
    """Split one text into train / validation / test, in order, by characters.

    At word level each cut moves forward to the next whitespace, so that no
    word is cut in two.
    """
    n = len(text)
    # Rounded so that 1 - 0.05 - 0.05 cuts where 0.9 does (nanoGPT's int(n * 0.9)).
    fractions = (round(1 - validation_fraction - test_fraction, 12), round(1 - test_fraction, 12))
    cuts = [int(n * fraction) for fraction in fractions]
    if unit == "word":
        cuts = [_next_space(text, cut) for cut in cuts]
    parts = dict(zip(SPLITS, (text[: cuts[0]], text[cuts[0] : cuts[1]], text[cuts[1] :])))
    empty = [split for split, part in parts.items() if not part.strip()]
    if empty:
        raise DataError(
            path,
            f"too short to split {1 - validation_fraction - test_fraction:.0%}/{validation_fraction:.0%}/"
            f"{test_fraction:.0%}: the {' and '.join(empty)} split would be empty ({n} characters)",
            hint="give a longer text, or a folder with train.txt, valid.txt and test.txt",
        )
    return parts


def _next_space(text, position):
    if position == 0 or position >= len(text) or text[position - 1].isspace():
        return position
    match = re.compile(r"\s").search(text, position)
    return match.start() if match else len(text)


# === Corpora ===


def _ptb(folder, encoding, hint):
    texts = _read_split_files(folder, _PTB_FILES, "Penn Treebank", encoding, hint)
    texts = {split: add_eos(text, blank_line_eos=True) for split, text in texts.items()}
    return Corpus(texts, "word", f"Penn Treebank (Mikolov) from {folder}: <eos> ends every line", EOS)


def _wikitext(folder, encoding, blank_line_eos, hint):
    texts = _read_split_files(folder, _WIKITEXT_FILES, "WikiText", encoding, hint)
    texts = {split: add_eos(text, blank_line_eos) for split, text in texts.items()}
    where = "every line, blank ones included" if blank_line_eos else "every non-empty line"
    return Corpus(texts, "word", f"WikiText from {folder}: <eos> ends {where}", EOS)


def _tinyshakespeare(folder, encoding):
    path = _find(folder, "input.txt")
    if path is None:
        raise DataError(folder, "Tiny Shakespeare not found: expected input.txt", hint=_location_hint("tinyshakespeare"))
    data = read_text(path, encoding)
    n = len(data)
    train_end, test_start = int(n * 0.9), int(n * 0.95)
    texts = {"train": data[:train_end], "validation": data[train_end:test_start], "test": data[test_start:]}
    description = (
        f"Tiny Shakespeare from {path}: characters {train_end:,} train (nanoGPT's), then "
        f"{test_start - train_end:,} validation / {n - test_start:,} test; nanoGPT's validation is extra['nanogpt_val']"
    )
    return Corpus(texts, "char", description, None, {"nanogpt_val": data[train_end:]})


def _location_hint(name):
    return (
        "put the files in that folder, or point --data-dir (or $KERAS_TASKS_DATA) "
        f"at the folder that holds {_FOLDERS[name]}/"
    )


def _user_folder(folder, unit, encoding, blank_line_eos, validation_fraction, test_fraction):
    if _find(folder, _WIKITEXT_FILES["train"]):
        return _wikitext(folder, encoding, blank_line_eos, _ADD_FILES_HINT)
    if _find(folder, _PTB_FILES["train"]):
        return _ptb(folder, encoding, _ADD_FILES_HINT)
    split_paths = {
        split: next((p for stem in stems if (p := _find(folder, stem + ".txt"))), None)
        for split, stems in _SPLIT_STEMS.items()
    }
    if split_paths["train"]:
        missing = [f"{'|'.join(_SPLIT_STEMS[s])}.txt" for s in SPLITS if split_paths[s] is None]
        if missing:
            raise DataError(
                folder,
                f"has train.txt but no {' or '.join(missing)}",
                hint="add the missing splits, or rename train.txt so the folder's .txt files are split 90/5/5",
            )
        texts = {split: read_text(path, encoding) for split, path in split_paths.items()}
        return _user_corpus(texts, unit, blank_line_eos, f"{folder}: train.txt / valid.txt / test.txt")
    names = sorted(
        name
        for name in os.listdir(folder)
        if name.endswith((".txt", ".txt.gz")) and not name.startswith(".") and os.path.isfile(os.path.join(folder, name))
    )
    if not names:
        raise DataError(
            folder,
            "no text files found; expected wiki.{train,valid,test}.tokens, ptb.{train,valid,test}.txt, "
            "train.txt + valid.txt + test.txt, or any .txt files (concatenated in name order, split 90/5/5)",
        )
    parts = [read_text(os.path.join(folder, name), encoding) for name in names]
    text = "".join(part if part.endswith("\n") else part + "\n" for part in parts)
    return _split_user_text(
        text, unit, blank_line_eos, validation_fraction, test_fraction, folder,
        f"{folder}: {len(names)} .txt files in name order",
    )


def _split_user_text(text, unit, blank_line_eos, validation_fraction, test_fraction, path, source):
    if unit == "word":
        text = add_eos(text, blank_line_eos)
    texts = contiguous_splits(text, unit, validation_fraction, test_fraction, path)
    train = 1 - validation_fraction - test_fraction
    description = f"{source}, split contiguously {train:.0%}/{validation_fraction:.0%}/{test_fraction:.0%} ({unit}s)"
    return Corpus(texts, unit, description, EOS if unit == "word" else None)


def _user_corpus(texts, unit, blank_line_eos, source):
    if unit == "word":
        texts = {split: add_eos(text, blank_line_eos) for split, text in texts.items()}
    return Corpus(texts, unit, f"{source} ({unit}s)", EOS if unit == "word" else None)


def load_corpus(
    dataset,
    data_dir=None,
    unit=None,
    encoding="utf-8",
    blank_line_eos=False,
    validation_fraction=0.05,
    test_fraction=0.05,
):
    """Read a language-model corpus and return the text of its splits.

    Args:
        dataset: a name from `DATASETS`, or the path of a text file or folder
            (see the module docstring for the layouts read).
        data_dir: folder holding the named datasets. Defaults to
            `$KERAS_TASKS_DATA`, else `~/keras_tasks_data`.
        unit: `"word"` or `"char"` for a user's own text (default `"word"`).
            Named datasets and the PTB/WikiText layouts have their own unit;
            asking for the other one is an error.
        encoding: text encoding of the files. Defaults to UTF-8.
        blank_line_eos: bool; at word level, whether blank lines also become
            an `<eos>` token (WikiText's published token counts need `True`).
            Penn Treebank has no blank lines.
        validation_fraction, test_fraction: the contiguous hold-outs of a
            single text (a user's file, or a folder's concatenated files).

    Returns:
        A `Corpus`.
    """
    if unit is not None and unit not in UNITS:
        raise ConfigError(f"unit must be one of {UNITS}, got {unit!r}")
    if dataset in DATASETS:
        own_unit = "char" if dataset == "tinyshakespeare" else "word"
        if unit not in (None, own_unit):
            raise ConfigError(f"{dataset} is a {own_unit}-level corpus; unit={unit!r} does not apply to it")
        folder = os.path.join(data_dir or default_data_dir(), _FOLDERS[dataset])
        if dataset == "ptb":
            corpus = _ptb(folder, encoding, _location_hint(dataset))
        elif dataset == "tinyshakespeare":
            corpus = _tinyshakespeare(folder, encoding)
        else:
            corpus = _wikitext(folder, encoding, blank_line_eos, _location_hint(dataset))
    else:
        path = os.path.expanduser(dataset)
        if os.path.isdir(path):
            corpus = _user_folder(
                path, unit or "word", encoding, blank_line_eos, validation_fraction, test_fraction
            )
        elif os.path.isfile(path):
            corpus = _split_user_text(
                read_text(path, encoding), unit or "word", blank_line_eos,
                validation_fraction, test_fraction, path, path,
            )
        else:
            raise DataError(
                path,
                "no such file or directory, and not a dataset name",
                hint=f"use one of {sorted(DATASETS)}, a text file, or a folder of text files",
            )
    if unit is not None and unit != corpus.unit:
        raise ConfigError(f"{dataset} is a {corpus.unit}-level corpus; unit={unit!r} does not apply to it")
    return corpus
