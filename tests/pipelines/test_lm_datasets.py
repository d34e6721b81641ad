import gzip
import os

import pytest

from keras_tasks.pipelines import lm_datasets as lm
from keras_tasks.pipelines.errors import ConfigError, DataError
from test_case import data_dir, write_lines


def _write_split_files(folder, names, lines):
    os.makedirs(folder, exist_ok=True)
    for name in names:
        write_lines(os.path.join(folder, name), lines)
    return str(folder)


# === Word-level layouts ===


def test_ptb_layout_every_line_ends_in_eos(tmp_path):
    folder = tmp_path / "ptb"
    os.makedirs(folder)
    for split in ("train", "valid", "test"):
        with gzip.open(folder / f"ptb.{split}.txt.gz", "wt") as f:
            f.write(" the <unk> fell N points \n a b \n")
    corpus = lm.load_corpus("ptb", data_dir=str(tmp_path))
    assert corpus.unit == "word" and corpus.eos == "<eos>"
    assert corpus.texts["train"] == "the <unk> fell N points <eos>\na b <eos>\n"
    assert set(corpus.texts) == {"train", "validation", "test"}
    # A folder in the same layout given as a path reads the same way.
    assert lm.load_corpus(str(folder)).texts == corpus.texts


def test_wikitext_layout_and_blank_lines(tmp_path):
    lines = ["", " = Valkyria Chronicles = ", "", " The game @-@ began . ", " <unk> was 1 ."]
    folder = _write_split_files(tmp_path / "wikitext-2", ["wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"], lines)
    corpus = lm.load_corpus("wikitext2", data_dir=str(tmp_path))
    assert corpus.unit == "word"
    tokens = corpus.texts["train"].split()
    assert tokens == ["=", "Valkyria", "Chronicles", "=", "<eos>", "The", "game", "@-@", "began", ".", "<eos>",
                      "<unk>", "was", "1", ".", "<eos>"]
    # The PyTorch/torchtext/AWD-LSTM convention: every line, blank ones included, ends in <eos>.
    every = lm.load_corpus(folder, blank_line_eos=True).texts["validation"].split()
    assert every.count("<eos>") == len(lines) and every[0] == "<eos>"


def test_folder_with_split_files(tmp_path):
    write_lines(tmp_path / "train.txt", ["one two", "three"])
    write_lines(tmp_path / "dev.txt", ["four"])
    write_lines(tmp_path / "test.txt", ["five six"])
    corpus = lm.load_corpus(str(tmp_path))
    assert corpus.texts == {"train": "one two <eos>\nthree <eos>\n", "validation": "four <eos>\n", "test": "five six <eos>\n"}
    chars = lm.load_corpus(str(tmp_path), unit="char")
    assert chars.unit == "char" and chars.eos is None and chars.texts["train"] == "one two\nthree\n"


def test_folder_missing_a_split_names_it(tmp_path):
    write_lines(tmp_path / "train.txt", ["one"])
    write_lines(tmp_path / "test.txt", ["two"])
    with pytest.raises(DataError, match=r"has train\.txt but no valid\|validation\|dev\.txt"):
        lm.load_corpus(str(tmp_path))


# === A user's own text ===


def test_user_file_char_split_is_contiguous_90_5_5(tmp_path):
    text = "".join(chr(ord("a") + i % 26) for i in range(999)) + "\n"
    path = tmp_path / "mine.txt"
    path.write_text(text)
    corpus = lm.load_corpus(str(path), unit="char")
    n = len(text)
    assert corpus.texts["train"] == text[: int(n * 0.9)]
    assert corpus.texts["validation"] == text[int(n * 0.9) : int(n * 0.95)]
    assert corpus.texts["test"] == text[int(n * 0.95) :]
    assert "90%/5%/5%" in corpus.description


def test_user_file_word_split_never_cuts_a_word(tmp_path):
    words = [f"w{i}" for i in range(300)]
    path = write_lines(tmp_path / "words.txt", [" ".join(words[i : i + 7]) for i in range(0, 300, 7)])
    corpus = lm.load_corpus(path)
    tokens = [t for split in lm.SPLITS for t in corpus.texts[split].split()]
    assert [t for t in tokens if t != "<eos>"] == words
    assert tokens.count("<eos>") == 43
    assert all(corpus.texts[split].strip() for split in lm.SPLITS)


def test_single_line_text_is_cut_at_spaces(tmp_path):
    path = tmp_path / "text8"
    path.write_text(" ".join(["anarchism", "originated", "as", "a", "term"] * 40))
    corpus = lm.load_corpus(str(path))
    tokens = [t for split in lm.SPLITS for t in corpus.texts[split].split()]
    assert tokens == ["anarchism", "originated", "as", "a", "term"] * 40 + ["<eos>"]


def test_folder_of_txt_files_concatenated_in_name_order(tmp_path):
    path = tmp_path / "books"
    os.makedirs(path)
    (path / "b.txt").write_text("second" + " x" * 100)  # no final newline: must not merge with the next file
    (path / "a.txt").write_text("first" + " y" * 100 + "\n")
    (path / "c.txt").write_text("third" + " z" * 100 + "\n")
    (path / "notes.md").write_text("ignored\n")
    corpus = lm.load_corpus(str(path))
    joined = "".join(corpus.texts[split] for split in lm.SPLITS).split()
    assert joined[0] == "first" and joined[102] == "second" and joined[204] == "third"
    assert "ignored" not in joined and joined.count("<eos>") == 3


def test_too_short_to_split(tmp_path):
    path = write_lines(tmp_path / "tiny.txt", ["just a few words"])
    with pytest.raises(DataError, match=r"tiny\.txt: too short to split 90%/5%/5%"):
        lm.load_corpus(path)


# === Errors ===


def test_missing_named_dataset_lists_expected_files(tmp_path):
    with pytest.raises(DataError, match=r"ptb: Penn Treebank not found: missing ptb\.train\.txt, ptb\.valid\.txt, "
                                        r"ptb\.test\.txt .*KERAS_TASKS_DATA"):
        lm.load_corpus("ptb", data_dir=str(tmp_path))
    _write_split_files(tmp_path / "wikitext-103", ["wiki.train.tokens", "wiki.valid.tokens"], ["a b"])
    with pytest.raises(DataError, match=r"missing wiki\.test\.tokens \(a WikiText folder holds wiki\.train\.tokens"):
        lm.load_corpus("wikitext103", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="Tiny Shakespeare not found: expected input.txt"):
        lm.load_corpus("tinyshakespeare", data_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"nope\.txt: no such file or directory, and not a dataset name.*ptb"):
        lm.load_corpus(str(tmp_path / "nope.txt"))
    os.makedirs(tmp_path / "empty_dir")
    with pytest.raises(DataError, match=r"empty_dir: no text files found; expected wiki\."):
        lm.load_corpus(str(tmp_path / "empty_dir"))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n")
    with pytest.raises(DataError, match=r"empty\.txt: file is empty"):
        lm.load_corpus(str(path))


def test_binary_file_names_line_and_offset(tmp_path):
    path = tmp_path / "model.txt"
    path.write_bytes(b"fine text\nmore \x00\x01\x02 bytes\n")
    with pytest.raises(DataError, match=r"model\.txt:2: binary data, not text \(NUL byte at byte offset 15\)"):
        lm.load_corpus(str(path))


def test_undecodable_bytes_name_line_offset_and_encoding_setting(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("line one\ncaf\xe9 au lait\n".encode("latin-1") * 10)
    with pytest.raises(DataError, match=r"latin\.txt:2: byte 0xe9 at byte offset 12 is not valid utf-8 "
                                        r"\(.*--set data\.encoding=latin-1"):
        lm.load_corpus(str(path))
    corpus = lm.load_corpus(str(path), unit="char", encoding="latin-1")
    assert "café" in corpus.texts["train"]


def test_bad_gzip_and_unit_errors(tmp_path):
    folder = tmp_path / "ptb"
    os.makedirs(folder)
    for split in ("train", "valid", "test"):
        (folder / f"ptb.{split}.txt.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(DataError, match=r"ptb\.train\.txt\.gz: corrupt or truncated gzip"):
        lm.load_corpus("ptb", data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="ptb is a word-level corpus"):
        lm.load_corpus("ptb", data_dir=str(tmp_path), unit="char")
    with pytest.raises(ConfigError, match="unit must be one of"):
        lm.load_corpus("ptb", unit="byte")


def test_datasets_describes_every_name():
    assert set(lm.DATASETS) == {"ptb", "tinyshakespeare", "wikitext2", "wikitext103"}
    assert all(isinstance(d, str) and "\n" not in d for d in lm.DATASETS.values())


# === Real data ===


@pytest.mark.large
def test_ptb_token_counts():
    corpus = lm.load_corpus("ptb", data_dir=data_dir())
    counts = {split: len(text.split()) for split, text in corpus.texts.items()}
    assert counts == {"train": 929_589, "validation": 73_760, "test": 82_430}
    train = corpus.texts["train"].split()
    assert train.count("<eos>") == 42_068 and "<unk>" in train
    assert len(set(train)) == 10_000  # Mikolov's vocabulary, <eos> included


@pytest.mark.large
def test_tinyshakespeare_matches_nanogpt_split():
    corpus = lm.load_corpus("tinyshakespeare", data_dir=data_dir())
    assert corpus.unit == "char"
    assert len(corpus.texts["train"]) == 1_003_854  # nanoGPT: int(1_115_394 * 0.9)
    assert len(corpus.extra["nanogpt_val"]) == 111_540
    assert corpus.texts["validation"] + corpus.texts["test"] == corpus.extra["nanogpt_val"]
    assert corpus.texts["train"].startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
