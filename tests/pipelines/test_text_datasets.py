import collections
import io
import os
import tarfile

import pytest

from keras_tasks.pipelines import text_datasets as td
from keras_tasks.pipelines.errors import DataError
from test_case import data_dir, write_lines


def test_label_text_lines(tmp_path):
    path = write_lines(tmp_path / "d.txt", ["1 a fine film", "0 a dull one", "", "1 lovely"])
    texts, labels = td.read_label_text_lines(path)
    assert texts == ["a fine film", "a dull one", "lovely"] and labels == ["1", "0", "1"]


def test_a_label_without_text_is_kept_as_an_empty_text_with_one_warning(tmp_path, caplog):
    path = write_lines(tmp_path / "d.txt", ["1 a fine film", "0", "0 a dull one", "1 "])
    with caplog.at_level("WARNING"):
        texts, labels = td.read_label_text_lines(path)
    assert texts == ["a fine film", "", "a dull one", ""] and labels == ["1", "0", "0", "1"]
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: 2 line(s) with a label and no text (first at line 2); kept as empty texts"
    ]


def test_a_line_that_is_not_label_text_names_file_and_line(tmp_path):
    path = write_lines(tmp_path / "d.txt", ["1 a fine film", "0 a dull one", "Sentence-without-a-label"])
    with pytest.raises(DataError, match=r"d\.txt:3: expected 'label text' but found 'Sentence-without-a-label'"):
        td.read_label_text_lines(path)


def test_bad_encoding_names_line_and_fix(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("1 ok\n0 caf\xe9 bad\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.txt:2: .*not valid utf-8.*data\.encoding=latin-1"):
        td.read_label_text_lines(str(path))
    texts, _ = td.read_label_text_lines(str(path), encoding="latin-1")
    assert texts[1] == "café bad"


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        td.read_label_text_lines(str(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="no examples"):
        td.read_label_text_lines(write_lines(tmp_path / "empty.txt", [""]))


def test_trec_format(tmp_path):
    path = write_lines(tmp_path / "TREC.x", ["DESC:manner How did it go ?", "NUM:dist How far is it ?"])
    assert td.read_trec(path) == (["How did it go ?", "How far is it ?"], ["DESC", "NUM"])
    assert td.read_trec(path, fine=True)[1] == ["DESC:manner", "NUM:dist"]
    bad = write_lines(tmp_path / "bad", ["DESC:manner How ?", "what is this"])
    with pytest.raises(DataError, match=r"bad:2: expected 'COARSE:fine question'"):
        td.read_trec(bad)


def test_delimited_tsv_and_csv(tmp_path):
    tsv = write_lines(tmp_path / "t.tsv", ["sentence\tlabel", "good film \t1", "bad film\t0"])
    assert td.read_delimited(tsv, "\t") == (["good film", "bad film"], ["1", "0"])
    csv_path = write_lines(tmp_path / "t.csv", ["id,review,label", '1,"great, really",pos', "2,meh,neg"])
    assert td.read_delimited(csv_path, ",") == (["great, really", "meh"], ["pos", "neg"])
    with pytest.raises(DataError, match=r"t\.csv:1: header .* no label column 'stars'.*label_column"):
        td.read_delimited(csv_path, ",", label_column="stars")
    ragged = write_lines(tmp_path / "r.tsv", ["sentence\tlabel", "a\t1", "b\t0\textra"])
    with pytest.raises(DataError, match=r"r\.tsv:3: expected 2 fields"):
        td.read_delimited(ragged, "\t")


def _write_imdb_tar(path, split, reviews):
    with tarfile.open(path, "w:gz") as archive:
        for name, text in reviews:
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"aclImdb/{split}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_imdb_tar_and_tree(tmp_path):
    reviews = [("pos/0_9.txt", "Great.<br />Loved it"), ("neg/1_2.txt", "Awful"), ("unsup/2_0.txt", "x")]
    tar = tmp_path / "aclImdb_train.tar.gz"
    _write_imdb_tar(tar, "train", reviews)
    texts, labels = td.read_imdb(str(tar), "train")
    assert sorted(zip(labels, texts)) == [("negative", "Awful"), ("positive", "Great. Loved it")]
    tree = tmp_path / "aclImdb"
    for name, text in reviews[:2]:
        os.makedirs(tree / "test" / os.path.dirname(name), exist_ok=True)
        (tree / "test" / name).write_text(text)
    assert sorted(td.read_imdb(str(tree), "test")[1]) == ["negative", "positive"]
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(tar.read_bytes()[:50])
    with pytest.raises(DataError, match="broken.tar.gz"):
        td.read_imdb(str(broken), "train")


def test_user_folder_with_splits(tmp_path):
    write_lines(tmp_path / "train.txt", [f"{i % 2} text number {i}" for i in range(20)])
    write_lines(tmp_path / "test.txt", ["1 one", "0 zero"])
    splits = td.load_text_splits(str(tmp_path), seed=3)
    assert len(splits.texts["train"]) == 18 and len(splits.texts["validation"]) == 2
    assert splits.texts["test"] == ["one", "zero"] and splits.label_names == ("0", "1")


def test_a_single_label_is_refused_with_the_file_and_the_fix(tmp_path):
    path = write_lines(tmp_path / "one_label.txt", [f"1 text number {i}" for i in range(20)])
    with pytest.raises(DataError, match=r"one_label\.txt: the training split has 1 label \(1\); a classifier needs at least two"):
        td.load_text_splits(path, seed=0)


def test_user_folder_without_test_file_carves_a_seeded_test_split(tmp_path):
    lines = [f"{i % 2} text number {i}" for i in range(40)]
    write_lines(tmp_path / "train.txt", lines)
    write_lines(tmp_path / "dev.txt", ["1 dev one", "0 dev zero"])
    splits = td.load_text_splits(str(tmp_path), seed=5, test_fraction=0.25)
    assert [len(splits.texts[s]) for s in td.SPLITS] == [30, 2, 10]
    assert splits.texts["validation"] == ["dev one", "dev zero"]
    assert sorted(splits.texts["train"] + splits.texts["test"]) == sorted(line[2:] for line in lines)
    assert td.load_text_splits(str(tmp_path), seed=5, test_fraction=0.25).texts == splits.texts
    assert td.load_text_splits(str(tmp_path), seed=6, test_fraction=0.25).texts["test"] != splits.texts["test"]
    assert any("test split" in note for note in splits.notes)
    (tmp_path / "dev.txt").unlink()
    carved = td.load_text_splits(str(tmp_path), seed=5)
    assert [len(carved.texts[s]) for s in td.SPLITS] == [32, 4, 4]
    assert len(set(sum(carved.texts.values(), []))) == 40


def test_default_data_dir_is_env_else_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_TASKS_DATA", raising=False)
    home_data = os.path.join(str(tmp_path), "keras_tasks_data")
    assert td.default_data_dir() == home_data
    with pytest.raises(DataError) as info:
        td.load_text_splits("trec")
    assert info.value.path == home_data and "KERAS_TASKS_DATA" in str(info.value)
    monkeypatch.setenv("KERAS_TASKS_DATA", str(tmp_path / "elsewhere"))
    assert td.default_data_dir() == str(tmp_path / "elsewhere")


def test_single_file_gets_seeded_holdout_and_folds_cover_everything(tmp_path):
    path = write_lines(tmp_path / "all.txt", [f"{i % 2} text {i}" for i in range(50)])
    a = td.load_text_splits(path, seed=1)
    b = td.load_text_splits(path, seed=1)
    assert a.texts == b.texts and len(a.texts["test"]) == 5
    tests = []
    for fold in range(5):
        s = td.load_text_splits(path, seed=1, folds=5, fold=fold)
        assert not set(s.texts["test"]) & set(s.texts["train"] + s.texts["validation"])
        tests += s.texts["test"]
    assert sorted(tests) == sorted(f"text {i}" for i in range(50))


def test_max_examples_caps_train_only(tmp_path):
    path = write_lines(tmp_path / "all.txt", [f"{i % 2} text {i}" for i in range(100)])
    s = td.load_text_splits(path, max_examples=7)
    assert len(s.texts["train"]) == 7 and len(s.texts["test"]) == 10
    assert set(s.labels["train"]) == {"0", "1"}  # a seeded shuffle, not the first 7 lines


def test_missing_named_dataset_says_which_files_to_put_where(tmp_path):
    with pytest.raises(DataError) as info:
        td.load_text_splits("trec", data_dir=str(tmp_path))
    message = str(info.value)
    assert os.path.join(str(tmp_path), "trec", "TREC.train") in message and "drop --no-download" in message


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(DataError, match="not a dataset name"):
        td.load_text_splits("no_such_dataset", data_dir=str(tmp_path))


@pytest.mark.large
def test_real_datasets_counts_and_labels():
    root = data_dir()
    cases = {
        "mr": (10662, {"negative": 5331, "positive": 5331}),
        "trec": (5952, None),
        "sst2": (6920 + 872 + 1821, None),
        "sst1": (8544 + 1101 + 2210, None),
    }
    for name, (total, counts) in cases.items():
        s = td.load_text_splits(name, data_dir=root)
        assert sum(len(v) for v in s.texts.values()) == total, name
        labels = s.labels["train"] + s.labels["validation"] + s.labels["test"]
        assert set(labels) == set(s.label_names), name
        if counts:
            assert collections.Counter(labels) == counts
    trec = td.load_text_splits("trec", data_dir=root)
    assert len(trec.texts["test"]) == 500
    assert collections.Counter(trec.labels["test"]) == {"DESC": 138, "ENTY": 94, "ABBR": 9, "HUM": 65, "LOC": 81, "NUM": 113}
    imdb = td.load_text_splits("imdb", data_dir=root)
    assert len(imdb.texts["train"]) + len(imdb.texts["validation"]) == 25000 and len(imdb.texts["test"]) == 25000
    assert collections.Counter(imdb.labels["test"]) == {"negative": 12500, "positive": 12500}


def test_download_verifies_the_checksum(tmp_path, monkeypatch):
    import hashlib

    source = write_lines(tmp_path / "published.txt", ["1 a fine film", "0 a dull film"] * 10)
    digest = hashlib.sha256(open(source, "rb").read()).hexdigest()
    spec = td.DatasetSpec(
        "toy", {"all": "toy/all.txt"}, "label_text", ("0", "1"),
        downloads={"toy/all.txt": (f"file://{source}", f"sha256:{digest}")},
    )
    monkeypatch.setitem(td.DATASETS, "toy", spec)
    data = tmp_path / "data"
    with pytest.raises(DataError, match="drop --no-download"):
        td.load_text_splits("toy", data_dir=str(data))  # the reader's default: read only what is there
    splits = td.load_text_splits("toy", data_dir=str(data), allow_download=True)
    assert sum(len(t) for t in splits.texts.values()) == 20
    assert (data / "toy" / "all.txt").read_bytes() == open(source, "rb").read()

    bad = td.DatasetSpec(
        "toy_bad", {"all": "bad/all.txt"}, "label_text", ("0", "1"),
        downloads={"bad/all.txt": (f"file://{source}", "sha256:" + "0" * 64)},
    )
    monkeypatch.setitem(td.DATASETS, "toy_bad", bad)
    with pytest.raises(DataError, match="checksum mismatch"):
        td.load_text_splits("toy_bad", data_dir=str(data), allow_download=True)
    assert not (data / "bad").exists()  # no empty folder left behind

    offline = td.DatasetSpec(
        "toy_offline", {"all": "offline/deep/all.txt"}, "label_text", ("0", "1"),
        downloads={"offline/deep/all.txt": (f"file://{tmp_path}/no-such-file", f"sha256:{digest}")},
    )
    monkeypatch.setitem(td.DATASETS, "toy_offline", offline)
    with pytest.raises(DataError, match=r"dataset 'toy_offline' not found; expected:\n  .*offline/deep/all\.txt\n"
                       r"and it could not be downloaded \(file://.*no-such-file: .*\)"):
        td.load_text_splits("toy_offline", data_dir=str(data), allow_download=True)
    assert sorted(os.listdir(data)) == ["toy"]


def test_unknown_tfds_name_is_one_line_with_the_closest_names(tmp_path):
    with pytest.raises(DataError) as caught:
        td.load_text_splits("tfds:imdb_reviewz", data_dir=str(tmp_path))
    message = str(caught.value)
    assert "\n" not in message and "no dataset of that name" in message and "imdb_reviews" in message
