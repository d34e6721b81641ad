"""A named dataset missing from the data folder is fetched from its source, checksum verified; offline, a warning."""

import hashlib
import logging
import os

import pytest

from keras_tasks.pipelines import downloads, lm_datasets
from keras_tasks.pipelines.errors import DataError

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40


def published(tmp_path, text=TEXT):
    source = tmp_path / "published" / "input.txt"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(text)
    return source, "md5:" + hashlib.md5(text.encode()).hexdigest()


def test_a_missing_named_dataset_is_fetched_verified_and_then_read(tmp_path, monkeypatch):
    source, digest = published(tmp_path)
    monkeypatch.setitem(downloads.SOURCES, "tinyshakespeare", {"tinyshakespeare/input.txt": (source.as_uri(), digest)})
    data = tmp_path / "data"
    downloads.prepare("tinyshakespeare", str(data))
    assert (data / "tinyshakespeare" / "input.txt").read_text() == TEXT
    corpus = lm_datasets.load_corpus("tinyshakespeare", data_dir=str(data))
    assert sum(len(t) for t in corpus.texts.values()) == len(TEXT)
    source.unlink()  # there now: not fetched again
    downloads.prepare("tinyshakespeare", str(data))


def test_a_file_already_there_gzipped_is_not_fetched(tmp_path, monkeypatch):
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "ptb.train.txt.gz").write_bytes(b"")
    monkeypatch.setitem(downloads.SOURCES, "ptb", {"ptb/ptb.train.txt": ("file:///nowhere/ptb.train.txt", "md5:0")})
    downloads.fetch(downloads.SOURCES["ptb"], str(tmp_path))  # would raise DownloadFailed if it tried


def test_a_checksum_mismatch_keeps_nothing(tmp_path):
    source, _ = published(tmp_path)
    with pytest.raises(DataError, match="checksum mismatch: md5 .*, expected 0000"):
        downloads.fetch({"deep/er/input.txt": (source.as_uri(), "md5:" + "0" * 32)}, str(tmp_path / "data"))
    assert not (tmp_path / "data").exists()


def test_offline_the_reader_names_the_files_after_one_warning(tmp_path, monkeypatch, caplog):
    missing = (tmp_path / "no-such-file").as_uri()
    monkeypatch.setitem(downloads.SOURCES, "tinyshakespeare", {"tinyshakespeare/input.txt": (missing, "md5:0")})
    data = tmp_path / "data"
    with caplog.at_level(logging.WARNING):
        downloads.prepare("tinyshakespeare", str(data))
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith(f"tinyshakespeare is not in {data} and could not be downloaded ({missing}: ")
    assert not os.path.exists(data)  # no empty folder left behind
    with pytest.raises(DataError, match="Tiny Shakespeare not found: expected input.txt"):
        lm_datasets.load_corpus("tinyshakespeare", data_dir=str(data))


def test_the_published_checksums_match_the_shared_copies():
    """The shared data folder holds byte-identical copies of the PTB and Tiny Shakespeare files (PTB gzipped)."""
    import gzip

    from test_case import data_dir

    root = data_dir()
    for dataset in ("ptb", "tinyshakespeare"):
        for relative, (_, checksum) in downloads.SOURCES[dataset].items():
            path = os.path.join(root, relative)
            raw = open(path, "rb").read() if os.path.exists(path) else gzip.open(path + ".gz").read()
            assert "md5:" + hashlib.md5(raw).hexdigest() == checksum, relative


@pytest.mark.parametrize("download", [True, False])
def test_the_spine_fetches_before_loading_unless_told_not_to(download, monkeypatch):
    from toy_spine import ToyTask, toy_config

    from keras_tasks.tasks import base

    asked = []
    monkeypatch.setattr(downloads, "prepare", lambda dataset, data_dir: asked.append((dataset, data_dir)))
    task = ToyTask(toy_config(**{"data.download": download, "data.data_dir": "/data"}))
    assert len(base._load_data(task)["train"][0]) == 32
    assert asked == ([("toy", "/data")] if download else [])
