"""CoNLL column files (named-entity and chunking corpora) and the IOB1 / IOB2 / IOBES tag schemes.

The format (CoNLL-2003, CoNLL-2002, OntoNotes conversions, most user exports): one token per line, columns
separated by spaces or tabs, the token in the first column and the tag in the last; a blank line ends a
sentence; `-DOCSTART-` lines separate documents and are skipped.

Tag schemes (`X` an entity type such as PER):

- `iob1`: `I-X` inside an entity; `B-X` only starts an entity that directly follows another of type X
  (CoNLL-2003's own scheme).
- `iob2` (BIO): every entity starts with `B-X`, continues with `I-X`.
- `iobes`: `S-X` a one-token entity, `B-X` / `I-X` / `E-X` its beginning, inside and end.

Entities are the same in every scheme, so conversion is lossless and round-trips.
"""

import dataclasses
import os

from keras_tasks.pipelines.data_dir import default_data_dir
from keras_tasks.pipelines.errors import DataError

SCHEMES = ("iob1", "iob2", "iobes")
OUTSIDE = "O"
DOCSTART = "-DOCSTART-"
_PREFIXES = {"iob1": "BI", "iob2": "BI", "iobes": "BIES"}

# Named datasets: the files of each split inside `data_dir/NAME/`.
DATASETS = {
    "conll2003": {
        "description": "CoNLL-2003 English NER (PER, LOC, ORG, MISC), IOB1, 14,041 / 3,250 / 3,453 sentences",
        "files": {"train": "eng.train", "validation": "eng.testa", "test": "eng.testb"},
    },
}
# A folder of the user's own: the first of these names found for each split.
_USER_FILES = {
    "train": ("train", "eng.train"),
    "validation": ("valid", "validation", "dev", "testa", "eng.testa"),
    "test": ("test", "testb", "eng.testb"),
}
_USER_SUFFIXES = ("", ".txt", ".conll", ".tsv", ".bio", ".iob")


@dataclasses.dataclass
class Sentence:
    """One sentence of a column file: its tokens, tags, and where it is (file and 1-based first line)."""

    tokens: list
    tags: list
    path: str = ""
    line: int = 0


def read_conll(path, encoding="utf-8"):
    """Sentences of a CoNLL column file (token first column, tag last; `-DOCSTART-` lines skipped).

    Raises:
        DataError: a line with fewer than two columns, naming the file and the line.
    """
    if not os.path.isfile(path):
        raise DataError(path, "no such CoNLL file", hint="give a CoNLL column file or a folder holding train/valid/test files")
    sentences = []
    tokens, tags, start = [], [], 0
    with open(path, encoding=encoding, errors="strict") as f:
        try:
            lines = f.read().splitlines()
        except UnicodeDecodeError as e:
            raise DataError(path, f"not {encoding} text ({e.reason} at byte {e.start})", hint="set data.encoding") from None
    for number, line in enumerate(lines, 1):
        columns = line.split()
        if not columns:
            if tokens:
                sentences.append(Sentence(tokens, tags, path, start))
            tokens, tags = [], []
            continue
        if columns[0] == DOCSTART:
            continue
        if len(columns) < 2:
            raise DataError(
                path,
                f"expected a token and a tag separated by a space or tab, got {line.strip()!r}",
                line=number,
                hint="one token per line with its tag in the last column; a blank line between sentences",
            )
        if not tokens:
            start = number
        tokens.append(columns[0])
        tags.append(columns[-1])
    if tokens:
        sentences.append(Sentence(tokens, tags, path, start))
    return sentences


def _split_tag(tag):
    """`("B", "PER")` for `B-PER`, `("O", None)` for `O`; None when the tag is neither."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    prefix, sep, kind = tag.partition("-")
    if not sep or len(prefix) != 1 or not kind:
        return None
    return prefix, kind


def entities(tags, scheme=None):
    """`[(type, start, end)]` (token indices, end exclusive) of a tag sequence in any of the schemes.

    `B-`/`S-` open an entity, `I-`/`E-` continue an open one of the same type (or open one, as conlleval does
    for IOB1 and for invalid sequences), `O` closes it, `E-`/`S-` close it after their token. The same rules
    read all three schemes, so `scheme` is only informative.
    """
    found = []
    kind, start = None, 0
    for i, tag in enumerate(tags):
        prefix, tag_kind = _split_tag(tag) or (OUTSIDE, None)
        if kind is not None and (prefix in "BSO" or tag_kind != kind):
            found.append((kind, start, i))
            kind = None
        if prefix != OUTSIDE and kind is None:
            kind, start = tag_kind, i
        if prefix in "ES":
            found.append((kind, start, i + 1))
            kind = None
    if kind is not None:
        found.append((kind, start, len(tags)))
    return found


def check_tags(tags, scheme, complete=True, after=None):
    """The index and reason of the first tag that `scheme` does not allow there, or None.

    `complete=False` checks a fragment (a sentence may go on after it); `after` is the tag before it (None:
    the sentence starts with `tags`).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; choose one of {SCHEMES}")
    previous_prefix, previous_kind = _split_tag(after) if after is not None else (OUTSIDE, None)
    for i, tag in enumerate(tags):
        parts = _split_tag(tag)
        if parts is None or parts[0] not in OUTSIDE + _PREFIXES[scheme]:
            allowed = ", ".join(f"{p}-TYPE" for p in _PREFIXES[scheme])
            return i, f"tag {tag!r} is not O or {allowed}"
        prefix, kind = parts
        open_same = previous_kind == kind and previous_prefix in "BI"
        # IOB1 needs B-X after an entity of type X; a B-X elsewhere is redundant, not ambiguous (CoNLL-2003's
        # eng.train has two, B-MISC after O), so it is read as the start of an entity, as conlleval does.
        if scheme == "iob2" and prefix == "I" and not open_same:
            return i, f"{tag} follows {_name(previous_prefix, previous_kind)}, not B-{kind} or I-{kind}"
        if scheme == "iobes":
            if prefix in "IE" and not open_same:
                return i, f"{tag} follows {_name(previous_prefix, previous_kind)}, not B-{kind} or I-{kind}"
            if prefix in "BSO" and previous_prefix in "BI":
                return i, f"{tag} follows {_name(previous_prefix, previous_kind)}, which must be closed by E-{previous_kind}"
        previous_prefix, previous_kind = prefix, kind
    if complete and scheme == "iobes" and previous_prefix in "BI":
        return len(tags) - 1, f"the sentence ends inside {_name(previous_prefix, previous_kind)} (end it with E-{previous_kind})"
    return None


def _name(prefix, kind):
    return "O or the sentence start" if kind is None else f"{prefix}-{kind}"


def from_entities(length, spans, scheme):
    """Tags of a sentence of `length` tokens holding the entity `spans` `[(type, start, end)]`, in `scheme`."""
    tags = [OUTSIDE] * length
    previous_end, previous_kind = -1, None
    for kind, start, end in spans:
        for i in range(start, end):
            tags[i] = f"I-{kind}"
        if scheme == "iob1":
            if start == previous_end and kind == previous_kind:
                tags[start] = f"B-{kind}"
        elif scheme == "iob2":
            tags[start] = f"B-{kind}"
        else:
            if end - start == 1:
                tags[start] = f"S-{kind}"
            else:
                tags[start], tags[end - 1] = f"B-{kind}", f"E-{kind}"
        previous_end, previous_kind = end, kind
    return tags


def convert(tags, source, target):
    """Tags of a valid `source`-scheme sequence rewritten in `target`, the same entities."""
    if source == target:
        return list(tags)
    return from_entities(len(tags), entities(tags, source), target)


def detect_scheme(sentences):
    """`iobes` when any tag is E-/S-, `iob1` when an entity starts with I-, else `iob2`."""
    iob1 = False
    for sentence in sentences:
        previous = None
        for tag in sentence.tags:
            parts = _split_tag(tag)
            if parts is None:
                continue
            prefix, kind = parts
            if prefix in "ES":
                return "iobes"
            if prefix == "I" and previous != kind:
                iob1 = True
            previous = kind
    return "iob1" if iob1 else "iob2"


def validate(sentences, scheme):
    """Raises DataError naming the file and the line of the first tag `scheme` does not allow."""
    for sentence in sentences:
        problem = check_tags(sentence.tags, scheme)
        if problem is not None:
            index, reason = problem
            raise DataError(
                sentence.path,
                f"invalid {scheme.upper()} tag sequence: {reason}",
                line=sentence.line + index,
                hint=f"fix the tag, or set data.input_scheme to the file's scheme ({', '.join(SCHEMES)})",
            )


@dataclasses.dataclass
class TaggedSplits:
    """Sentences of each split (`"train"`, `"validation"`, `"test"`) and the scheme their tags are in."""

    sentences: dict
    scheme: str
    source_scheme: str
    files: dict


def split_files(dataset, data_dir=None):
    """`{split: path}` of a named dataset or of a folder of the user's own."""
    if dataset in DATASETS:
        folder = os.path.join(data_dir or default_data_dir(), dataset)
        files = {split: os.path.join(folder, name) for split, name in DATASETS[dataset]["files"].items()}
        missing = [path for path in files.values() if not os.path.isfile(path)]
        if missing:
            raise DataError(
                folder,
                f"dataset {dataset!r} not found; expected " + ", ".join(missing),
                hint="put the files there, or point --data-dir (or $KERAS_TASKS_DATA) at the folder that holds them",
            )
        return files
    if not os.path.isdir(dataset):
        raise DataError(
            dataset,
            f"not a named dataset ({', '.join(DATASETS)}) nor a folder",
            hint="give a folder holding train, valid (or dev) and test files in CoNLL column format",
        )
    files = {}
    for split, stems in _USER_FILES.items():
        for stem in stems:
            found = [os.path.join(dataset, stem + s) for s in _USER_SUFFIXES if os.path.isfile(os.path.join(dataset, stem + s))]
            if found:
                files[split] = found[0]
                break
        else:
            raise DataError(
                dataset,
                f"no {split} file",
                hint=f"add one named {stems[0]}.txt (or {', '.join(stems[1:])}) in CoNLL column format",
            )
    return files


def load_tagged_splits(dataset, data_dir=None, scheme="iobes", input_scheme="auto", encoding="utf-8", max_examples=None):
    """Read, validate and convert the three splits of a CoNLL dataset.

    Args:
        dataset: a named dataset (`conll2003`) or a folder of CoNLL column files.
        data_dir: where named datasets live.
        scheme: the tag scheme to return (`iob1`, `iob2` or `iobes`): what the model is trained on.
        input_scheme: the files' scheme, or `auto` to detect it from the training file.
        encoding: of the files.
        max_examples: keep the first N training sentences.

    Raises:
        DataError: a missing file, a malformed line or a tag sequence the input scheme does not allow
            (naming file and line).
    """
    for name, value in (("data.tag_scheme", scheme), ("data.input_scheme", input_scheme)):
        if value not in SCHEMES + (("auto",) if name == "data.input_scheme" else ()):
            raise DataError(name, f"unknown tag scheme {value!r}", hint=f"use one of {', '.join(SCHEMES)}")
    files = split_files(dataset, data_dir)
    sentences = {split: read_conll(path, encoding) for split, path in files.items()}
    for split, items in sentences.items():
        if not items:
            raise DataError(files[split], "no sentences", hint="one token and tag per line, a blank line between sentences")
    if max_examples:
        sentences["train"] = sentences["train"][:max_examples]
    source = detect_scheme(sentences["train"]) if input_scheme == "auto" else input_scheme
    for items in sentences.values():
        validate(items, source)
    converted = {
        split: [dataclasses.replace(s, tags=convert(s.tags, source, scheme)) for s in items]
        for split, items in sentences.items()
    }
    return TaggedSplits(converted, scheme, source, files)


def tag_set(sentences):
    """`O` first, then the other tags sorted by entity type and prefix."""
    order = {p: i for i, p in enumerate("BIES")}
    tags = {tag for sentence in sentences for tag in sentence.tags} - {OUTSIDE}
    return [OUTSIDE] + sorted(tags, key=lambda t: (_split_tag(t)[1] or "", order.get(t[0], 9), t))


def allowed_transitions(tags, scheme):
    """Which tag may follow which in `scheme`: `(start, transitions, end)` boolean lists.

    `start[j]`: tag j may open a sentence; `transitions[i][j]`: tag j may follow tag i; `end[i]`: tag i may
    close a sentence. For a CRF's constraints (`layers.CRF(allowed=...)`).
    """
    parts = [_split_tag(tag) for tag in tags]

    def ok(previous, current):
        return check_tags([current], scheme, complete=False, after=previous) is None

    start = [ok(None, tag) for tag in tags]
    transitions = [[ok(a, b) for b in tags] for a in tags]
    end = [not (scheme == "iobes" and p[0] in "BI") for p in parts]
    return start, transitions, end
