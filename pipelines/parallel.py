"""Parallel text (sentence pairs) for translation: Multi30k, two line-aligned files, or a TSV of pairs.

    load_parallel("multi30k", "de", "en")                    # task1/raw/{train,val,test_2016_flickr}.{de,en}.gz
    load_parallel("my_corpus/", "de", "en")                  # my_corpus/train.de + train.en (+ val.*, test.*)
    load_parallel("train.de,train.en", "de", "en")           # two line-aligned files
    load_parallel("deu.txt", "en", "de")                     # Anki / Tatoeba: source<TAB>target<TAB>attribution

Every file may be gzipped (`.gz`). Line i of a source file translates line i of its target file; a
line-count mismatch, a one-sided empty line, a TSV line without exactly two or three fields, or bytes that
are not valid in the encoding raise a `DataError` naming the file, the line and the fix. A corpus without a
validation or test split has them held out of its training pairs (seeded).
"""

import dataclasses
import glob
import gzip
import os

import numpy as np

from keras_tasks.pipelines.data_dir import default_data_dir
from keras_tasks.pipelines.errors import ConfigError, DataError

MULTI30K_LANGUAGES = ("en", "de", "fr", "cs")
# Multi30k task 1 as published (multi30k/dataset, data/task1/raw): split name -> file prefix.
MULTI30K_SPLITS = {"train": "train", "validation": "val", "test": "test_2016_flickr"}
DATASETS = {"multi30k": "Multi30K task 1 (Elliott et al. 2016): 29,000 / 1,014 / 1,000 (test_2016_flickr) image "
                        "descriptions in en, de, fr, cs (--set data.source=de data.target=en)"}
_SPLIT_PREFIXES = {"train": ("train",), "validation": ("val", "valid", "validation", "dev"), "test": ("test",)}


@dataclasses.dataclass
class ParallelSplits:
    """Sentence pairs per split: `pairs[split] = (sources, targets)`, two equally long lists of str."""

    pairs: dict
    description: str

    def sources(self, split):
        return self.pairs[split][0]

    def targets(self, split):
        return self.pairs[split][1]


def read_lines(path, encoding="utf-8"):
    """The lines of a text file (gzipped when its name ends in `.gz`), without line ends."""
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, EOFError) as e:
        raise DataError(path, f"cannot read file: {getattr(e, 'strerror', None) or e}",
                        hint="a .gz file must be gzip-compressed; download or compress it again") from None
    lines = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            lines.append(line.rstrip(b"\r").decode(encoding))
        except UnicodeDecodeError as e:
            raise DataError(
                path, f"bytes {line[e.start:e.end]!r} at column {e.start + 1} are not valid {encoding}", line=number,
                hint="give the file's encoding with --set data.encoding=latin-1 (or convert it to UTF-8)",
            ) from None
    if lines and lines[-1] == "":  # the newline ending the last line
        lines.pop()
    return lines


def read_aligned(source_path, target_path, encoding="utf-8"):
    """Pairs from two line-aligned files: `(sources, targets)`. Lines blank on both sides are skipped."""
    sources, targets = read_lines(source_path, encoding), read_lines(target_path, encoding)
    if len(sources) != len(targets):
        shorter, longer = (source_path, target_path) if len(sources) < len(targets) else (target_path, source_path)
        raise DataError(
            longer, f"has {max(len(sources), len(targets)):,} lines but {shorter} has {min(len(sources), len(targets)):,}",
            line=min(len(sources), len(targets)) + 1,
            hint="line i of the source file must translate line i of the target file; remove or add lines so both "
                 "files have one sentence per line, in the same order",
        )
    kept_sources, kept_targets = [], []
    for number, (source, target) in enumerate(zip(sources, targets), start=1):
        if not source.strip() and not target.strip():
            continue
        if not source.strip() or not target.strip():
            empty, other = (source_path, target_path) if not source.strip() else (target_path, source_path)
            raise DataError(empty, f"empty line, but line {number} of {other} is not", line=number,
                            hint="every sentence needs its translation on the same line of the other file")
        kept_sources.append(source.strip())
        kept_targets.append(target.strip())
    return kept_sources, kept_targets


def read_tsv_pairs(path, encoding="utf-8", reverse=False):
    """Pairs from a TSV of `source<TAB>target[<TAB>attribution]` lines (Anki, Tatoeba); blank lines skipped.

    With `reverse=True` the second column is the source (e.g. Anki's `eng<TAB>deu` file read as German to English).
    """
    sources, targets = [], []
    for number, line in enumerate(read_lines(path, encoding), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) not in (2, 3) or not fields[0].strip() or not fields[1].strip():
            found = f"{len(fields)} tab-separated field{'s' if len(fields) != 1 else ''}"
            if len(fields) in (2, 3):
                found = "an empty sentence"
            raise DataError(path, f"expected source<TAB>target[<TAB>attribution], found {found}", line=number,
                            hint="write one sentence pair per line, the two sentences separated by one tab")
        source, target = fields[0].strip(), fields[1].strip()
        if reverse:
            source, target = target, source
        sources.append(source)
        targets.append(target)
    if not sources:
        raise DataError(path, "no sentence pairs found", hint="expected source<TAB>target[<TAB>attribution] lines")
    return sources, targets


def _hold_out(pairs, validation_fraction, test_fraction, seed):
    """Seeded validation and test splits taken out of the training pairs, for the splits that are missing."""
    sources, targets = pairs["train"]
    order = np.random.default_rng(seed).permutation(len(sources))
    cuts = {}
    start = 0
    for split, fraction in (("validation", validation_fraction), ("test", test_fraction)):
        if split in pairs:
            continue
        size = max(1, int(round(len(sources) * fraction)))
        cuts[split] = order[start:start + size]
        start += size
    if start >= len(sources):
        raise DataError("train", f"only {len(sources)} training pairs: too few to hold out validation and test pairs",
                        hint="add more pairs, or give val.* and test.* files")
    for split, indices in cuts.items():
        pairs[split] = ([sources[i] for i in indices], [targets[i] for i in indices])
    kept = sorted(order[start:])
    pairs["train"] = ([sources[i] for i in kept], [targets[i] for i in kept])
    return sorted(cuts)


def _multi30k(data_dir, source, target, encoding):
    for language in (source, target):
        if language not in MULTI30K_LANGUAGES:
            raise ConfigError(f"Multi30k has no language {language!r}; data.source and data.target must be two of "
                              f"{', '.join(MULTI30K_LANGUAGES)}")
    folder = os.path.join(data_dir, "multi30k", "task1", "raw")
    if not os.path.isdir(folder):
        raise DataError(folder, "Multi30k not found", hint="put multi30k/dataset's data/task1/raw/*.gz files in that "
                        "folder, or point --data-dir (or $KERAS_TASKS_DATA) at the folder that holds multi30k/")
    pairs = {}
    for split, prefix in MULTI30K_SPLITS.items():
        pairs[split] = read_aligned(
            os.path.join(folder, f"{prefix}.{source}.gz"), os.path.join(folder, f"{prefix}.{target}.gz"), encoding
        )
    return pairs, f"Multi30k task 1 {source}-{target} from {folder} (test = test_2016_flickr)"


def _split_file(folder, split, language):
    """The file of `split` in `language` under `folder` (`train.de`, `val.de.gz`, `test_2016_flickr.de.gz`, ...)."""
    for prefix in _SPLIT_PREFIXES[split]:
        for name in (f"{prefix}.{language}", f"{prefix}.{language}.gz"):
            if os.path.exists(os.path.join(folder, name)):
                return os.path.join(folder, name)
    if split == "test":  # test_2016_flickr.de.gz and the like: the first in name order
        found = sorted(glob.glob(os.path.join(folder, f"test*.{language}")) +
                       glob.glob(os.path.join(folder, f"test*.{language}.gz")))
        if found:
            return found[0]
    return None


def _folder(folder, source, target, encoding):
    pairs = {}
    for split in ("train", "validation", "test"):
        files = [_split_file(folder, split, language) for language in (source, target)]
        if files[0] and files[1]:
            pairs[split] = read_aligned(files[0], files[1], encoding)
        elif files[0] or files[1]:
            have = files[0] or files[1]
            missing = target if files[0] else source
            raise DataError(have, f"has no {missing!r} counterpart in {folder}",
                            hint=f"add {os.path.basename(have).replace(f'.{source if files[0] else target}', f'.{missing}')}")
    if "train" not in pairs:
        raise DataError(folder, f"no training files train.{source} and train.{target} (optionally .gz)",
                        hint="name the files train.SRC / train.TGT (and val.*, test.*), with data.source=SRC "
                             "data.target=TGT")
    return pairs, f"{source}-{target} sentence pairs from {folder}"


def load_parallel(dataset, source, target, data_dir=None, encoding="utf-8", reverse=False,
                  validation_fraction=0.05, test_fraction=0.05, seed=0, max_examples=None):
    """Sentence pairs of a named corpus or the user's files, split into train / validation / test.

    Args:
        dataset: `"multi30k"`, a folder of `{train,val,test}.{source,target}[.gz]` files, a TSV file of pairs
            (`.tsv`, `.txt`, optionally `.gz`), or `"SOURCE_FILE,TARGET_FILE"` (two line-aligned files).
        source, target: language codes (file suffixes in a folder; labels for a TSV or a file pair).
        data_dir: folder holding the named datasets; default `$KERAS_TASKS_DATA`.
        encoding: of the user's files.
        reverse: a TSV of pairs: its second column is the source.
        validation_fraction, test_fraction: held out of the training pairs when a split is missing.
        seed: for the held-out splits.
        max_examples: keep only the first training pairs (quick runs).

    Returns:
        A `ParallelSplits`.
    """
    if source == target:
        raise ConfigError(f"data.source and data.target are both {source!r}; give two different languages")
    if dataset == "multi30k":
        pairs, description = _multi30k(data_dir or default_data_dir(), source, target, encoding)
    elif "," in dataset and not os.path.exists(dataset):
        source_path, target_path = (part.strip() for part in dataset.split(",", 1))
        pairs = {"train": read_aligned(source_path, target_path, encoding)}
        description = f"{source}-{target} pairs from {source_path} and {target_path}"
    elif os.path.isdir(dataset):
        pairs, description = _folder(dataset, source, target, encoding)
    elif os.path.exists(dataset):
        pairs = {"train": read_tsv_pairs(dataset, encoding, reverse)}
        description = f"{source}-{target} pairs from {dataset}"
    else:
        raise DataError(dataset, "no such dataset, folder or file", hint=f"use multi30k, a folder of train.{source} / "
                        f"train.{target} files, a TSV of pairs, or SOURCE_FILE,TARGET_FILE")
    held_out = _hold_out(pairs, validation_fraction, test_fraction, seed) if len(pairs) < 3 else []
    if max_examples:
        pairs["train"] = tuple(side[:max_examples] for side in pairs["train"])
    if held_out:
        description += f" ({' and '.join(held_out)} held out of train, seed {seed})"
    return ParallelSplits(pairs, description)
