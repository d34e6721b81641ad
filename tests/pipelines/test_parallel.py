"""Parallel-text readers: Multi30k's layout, two line-aligned files, TSV pairs (Anki/Tatoeba), gzip, and their errors."""

import gzip
import os

import pytest
from test_case import data_dir, write_lines

from keras_tasks.pipelines import parallel
from keras_tasks.pipelines.errors import ConfigError, DataError


def write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


def test_multi30k_published_layout_and_counts():
    splits = parallel.load_parallel("multi30k", "de", "en", data_dir=data_dir())
    assert {split: len(splits.sources(split)) for split in splits.pairs} == {"train": 29000, "validation": 1014, "test": 1000}
    assert all(len(splits.sources(s)) == len(splits.targets(s)) for s in splits.pairs)
    assert splits.sources("train")[0].startswith("Zwei junge weiße Männer")
    assert splits.targets("train")[0].startswith("Two young, White males")
    french = parallel.load_parallel("multi30k", "en", "fr", data_dir=data_dir(), max_examples=10)
    assert len(french.sources("train")) == 10 and len(french.targets("test")) == 1000
    with pytest.raises(ConfigError, match="no language 'xx'"):
        parallel.load_parallel("multi30k", "xx", "en", data_dir=data_dir())
    with pytest.raises(ConfigError, match="two different languages"):
        parallel.load_parallel("multi30k", "en", "en", data_dir=data_dir())


def test_folder_of_aligned_files_gzipped_or_not(tmp_path):
    write_lines(tmp_path / "train.de", ["ein Hund", "eine Katze", "", "zwei Männer"])
    write_lines(tmp_path / "train.en", ["a dog", "a cat", "", "two men"])
    write_gz(tmp_path / "val.de.gz", ["ein Mann"])
    write_gz(tmp_path / "val.en.gz", ["a man"])
    write_lines(tmp_path / "test_2016.de", ["eine Frau"])
    write_lines(tmp_path / "test_2016.en", ["a woman"])
    splits = parallel.load_parallel(str(tmp_path), "de", "en")
    assert splits.pairs["train"] == (["ein Hund", "eine Katze", "zwei Männer"], ["a dog", "a cat", "two men"])  # blank pair skipped
    assert splits.pairs["validation"] == (["ein Mann"], ["a man"])
    assert splits.pairs["test"] == (["eine Frau"], ["a woman"])


def test_line_count_mismatch_names_the_file_the_line_and_the_fix(tmp_path):
    source = write_lines(tmp_path / "train.de", ["ein Hund", "eine Katze", "ein Mann"])
    target = write_lines(tmp_path / "train.en", ["a dog", "a cat"])
    with pytest.raises(DataError) as error:
        parallel.load_parallel(f"{source},{target}", "de", "en")
    assert error.value.path == source and error.value.line == 3
    assert str(error.value).startswith(f"{source}:3: has 3 lines but {target} has 2")
    assert "line i of the source file must translate line i of the target file" in str(error.value)


def test_one_sided_empty_line_is_refused(tmp_path):
    source = write_lines(tmp_path / "a.de", ["ein Hund", ""])
    target = write_lines(tmp_path / "a.en", ["a dog", "a cat"])
    with pytest.raises(DataError, match=r"a\.de:2: empty line, but line 2 of .*a\.en is not"):
        parallel.read_aligned(source, target)


def test_tsv_pairs_with_attribution_reverse_and_held_out_splits(tmp_path):
    lines = [f"Sentence {i}.\tSatz {i}.\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}" for i in range(40)]
    path = write_gz(tmp_path / "deu.txt.gz", lines + ["", "Hi.\tHallo!"])
    splits = parallel.load_parallel(path, "en", "de", validation_fraction=0.1, test_fraction=0.1, seed=3)
    sizes = {split: len(splits.sources(split)) for split in splits.pairs}
    assert sizes == {"train": 33, "validation": 4, "test": 4}
    everything = sorted(sum((splits.sources(s) for s in splits.pairs), []))
    assert everything == sorted([f"Sentence {i}." for i in range(40)] + ["Hi."])  # no pair lost or repeated
    assert "held out of train, seed 3" in splits.description
    again = parallel.load_parallel(path, "en", "de", validation_fraction=0.1, test_fraction=0.1, seed=3)
    assert again.pairs == splits.pairs
    reverse = parallel.read_tsv_pairs(path, reverse=True)
    assert reverse[0][0] == "Satz 0." and reverse[1][0] == "Sentence 0."


@pytest.mark.parametrize("line, found", [
    ("only one sentence", "found 1 tab-separated field"),
    ("a\tb\tc\td", "found 4 tab-separated fields"),
    ("Hello.\t\tCC-BY", "found an empty sentence"),
])
def test_malformed_tsv_line_names_file_line_and_fix(tmp_path, line, found):
    path = write_lines(tmp_path / "pairs.tsv", ["Hi.\tHallo.", line])
    with pytest.raises(DataError) as error:
        parallel.read_tsv_pairs(path)
    assert str(error.value) == (f"{path}:2: expected source<TAB>target[<TAB>attribution], {found} "
                                "(write one sentence pair per line, the two sentences separated by one tab)")


def test_bad_bytes_missing_files_and_missing_counterparts(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes("Hi.\tHallo.\n".encode() + b"Caf\xe9.\tCaf\xe9.\n")
    with pytest.raises(DataError, match=r"pairs\.tsv:2: bytes b'\\xe9' at column 4 are not valid utf-8"):
        parallel.read_tsv_pairs(str(path))
    assert parallel.read_tsv_pairs(str(path), encoding="latin-1")[0][1] == "Café."
    with pytest.raises(DataError, match="no such dataset, folder or file"):
        parallel.load_parallel(str(tmp_path / "nothing.tsv"), "en", "de")
    folder = tmp_path / "corpus"
    os.makedirs(folder)
    write_lines(folder / "train.de", ["ein Hund"])
    with pytest.raises(DataError, match="has no 'en' counterpart"):
        parallel.load_parallel(str(folder), "de", "en")
    broken = tmp_path / "broken.de.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot read file"):
        parallel.read_lines(str(broken))
