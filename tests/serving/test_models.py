"""The version manager: which versions of which models load, fail, fall back and unload."""

import os
import shutil

import numpy as np
import pytest

from keras_tasks.serving import models


def _label(servable, text="good"):
    signature = servable.signatures["serving_default"]
    return signature.call({"text": np.array([text.encode()], dtype=object)})["label"][0].decode()


def _state(manager, name, version):
    (status,) = manager.status(name, version)
    return status["state"], status["status"]["error_code"], status["status"]["error_message"]


def test_loads_the_newest_version_and_reads_assets_extra(tmp_path, install):
    install(tmp_path, "sst", 1, "text")
    install(tmp_path, "sst", 2, "text_v2")
    (tmp_path / "sst" / "notes").mkdir()  # not a version
    (tmp_path / ".trash" / "1").mkdir(parents=True)  # not a model name
    manager = models.ModelManager(tmp_path)
    manager.poll()

    assert manager.names() == ["sst"]
    servable = manager.get("sst")
    assert servable.version == 2
    assert _label(servable) == "pos_v2"
    assert servable.labels == ["neg_v2", "pos_v2"]
    assert servable.metrics == {"test": {"accuracy": 0.9}}
    signature = servable.signatures["serving_default"]
    assert list(signature.inputs) == ["text"]
    assert sorted(signature.outputs) == ["attention", "label", "probabilities", "tokens"]
    assert manager.status("sst") == [
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
    with pytest.raises(models.ModelNotFound, match="version 1 of model 'sst' is not loaded"):
        manager.get("sst", 1)
    with pytest.raises(models.ModelNotFound, match="model 'nope' not found"):
        manager.get("nope")


def test_new_version_is_picked_up_and_old_one_unloaded(tmp_path, install):
    install(tmp_path, "sst", 1, "text")
    manager = models.ModelManager(tmp_path)
    manager.poll()
    assert _label(manager.get("sst")) == "positive"

    install(tmp_path, "sst", 2, "text_v2")
    manager.poll()
    assert manager.get("sst").version == 2
    assert _label(manager.get("sst")) == "pos_v2"
    assert _state(manager, "sst", 1)[0] == "END"


def test_half_written_version_is_not_loaded(tmp_path, install, toy_exports):
    install(tmp_path, "sst", 1, "text")
    manager = models.ModelManager(tmp_path, settle_seconds=0.0)
    manager.poll()
    # A copy in progress: variables/ without its index, then saved_model.pb without variables/.
    partial = tmp_path / "sst" / "2"
    (partial / "variables").mkdir(parents=True)
    shutil.copy(toy_exports["text"] / "variables" / "variables.data-00000-of-00001", partial / "variables")
    manager.poll()
    manager.poll()
    assert manager.get("sst").version == 1
    assert [status["version"] for status in manager.status("sst")] == ["1"]

    shutil.rmtree(partial / "variables")
    shutil.copy(toy_exports["text_v2"] / "saved_model.pb", partial)
    manager.poll()
    assert manager.get("sst").version == 1

    shutil.rmtree(partial)
    install(tmp_path, "sst", 2, "text_v2")
    manager.poll()
    assert manager.get("sst").version == 2


def test_version_still_being_written_waits_until_its_files_stop_changing(tmp_path, install):
    install(tmp_path, "sst", 1, "text")
    manager = models.ModelManager(tmp_path, settle_seconds=3600.0)
    manager.poll()
    install(tmp_path, "sst", 2, "text_v2", age=0)  # fresh files: maybe still being written
    manager.poll()
    assert manager.get("sst").version == 1  # first sight: wait
    labels = tmp_path / "sst" / "2" / "assets.extra" / "labels.txt"
    labels.write_text("neg_v2\npos_v2\nextra\n")  # still changing
    manager.poll()
    assert manager.get("sst").version == 1
    manager.poll()  # unchanged since the last scan
    assert manager.get("sst").version == 2
    assert manager.get("sst").labels == ["neg_v2", "pos_v2", "extra"]


def test_corrupt_version_reports_its_error_and_the_previous_one_keeps_serving(tmp_path, install, caplog):
    install(tmp_path, "sst", 1, "text")
    manager = models.ModelManager(tmp_path)
    manager.poll()
    corrupt = install(tmp_path, "sst", 2, "text_v2")
    with open(os.path.join(corrupt, "saved_model.pb"), "r+b") as file:
        file.write(b"\xff\xfe garbage, not a protocol buffer \x00" * 4)
    then = os.stat(os.path.join(corrupt, "variables", "variables.index")).st_mtime
    os.utime(os.path.join(corrupt, "saved_model.pb"), (then, then))
    manager.poll()

    state, code, message = _state(manager, "sst", 2)
    assert (state, code) == ("END", "UNKNOWN")
    assert message.startswith("failed to load version 2:")
    # The status reaches clients: it names the version, not where the server keeps it.
    assert "sst/2/saved_model.pb" in message and str(tmp_path) not in message
    assert manager.get("sst").version == 1
    assert _label(manager.get("sst")) == "positive"

    caplog.clear()
    manager.poll()  # unchanged files are not retried
    assert "loading version 2" not in caplog.text

    shutil.rmtree(corrupt)
    install(tmp_path, "sst", 2, "text_v2")  # a fixed export under the same number is retried
    manager.poll()
    assert manager.get("sst").version == 2
    assert _state(manager, "sst", 2) == ("AVAILABLE", "OK", "")


def test_deleting_the_newest_version_falls_back_then_unloads(tmp_path, install):
    install(tmp_path, "sst", 1, "text")
    install(tmp_path, "sst", 2, "text_v2")
    manager = models.ModelManager(tmp_path)
    manager.poll()
    assert manager.get("sst").version == 2

    shutil.rmtree(tmp_path / "sst" / "2")
    manager.poll()
    assert manager.get("sst").version == 1
    assert _label(manager.get("sst")) == "positive"
    assert _state(manager, "sst", 2)[0] == "END"

    shutil.rmtree(tmp_path / "sst" / "1")
    manager.poll()
    with pytest.raises(models.ModelUnavailable, match="no loaded version"):
        manager.get("sst")
    shutil.rmtree(tmp_path / "sst")
    manager.poll()
    with pytest.raises(models.ModelNotFound):
        manager.get("sst")


def test_model_whose_only_version_fails_is_unavailable_with_the_reason(tmp_path):
    version = tmp_path / "broken" / "1"
    (version / "variables").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"not a SavedModel")
    (version / "variables" / "variables.index").write_bytes(b"")
    (version / "variables" / "variables.data-00000-of-00001").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    manager = models.ModelManager(tmp_path, settle_seconds=0.0)
    manager.poll()
    with pytest.raises(models.ModelUnavailable, match="version 1 is END .failed to load version 1"):
        manager.get("broken")
    with pytest.raises(models.ModelUnavailable, match="no complete version directory"):
        manager.get("empty")


def test_missing_base_path_serves_nothing_until_it_appears(tmp_path, install):
    manager = models.ModelManager(tmp_path / "later")
    manager.poll()
    assert manager.names() == []
    install(tmp_path / "later", "sst", 1, "text")
    manager.poll()
    assert manager.get("sst").version == 1


@pytest.mark.parametrize("name", ["sst2", "mr_textcnn", "trec-att.v2", "A", "7", "a..b", "x" * 128])
def test_check_model_name_accepts_plain_directory_names(name):
    assert models.check_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", ".hidden", "-rf", "_tmp", "a/b", "../etc", "a\\b", "my model", "naïve", "x" * 129, "a\n", None],
)
def test_check_model_name_refuses_what_the_server_would_not_serve(name):
    with pytest.raises(ValueError) as error:
        models.check_model_name(name)
    assert str(error.value) == (
        f"invalid model name {name!r}: a model name is one directory name of 1 to 128 characters: letters, digits, "
        "'.', '_' and '-', starting with a letter or digit (no slashes, spaces or '..')"
    )


def test_the_server_serves_exactly_the_names_check_model_name_accepts(tmp_path, install):
    names = ("good.name-1", "_hidden", "bad name", "9lives")

    def accepted(name):
        try:
            return models.check_model_name(name) == name
        except ValueError:
            return False

    for name in names:
        install(tmp_path, name, 1, "text")
    manager = models.ModelManager(tmp_path)
    manager.poll()
    assert manager.names() == sorted(name for name in names if accepted(name)) == ["9lives", "good.name-1"]


def test_without_paths_keeps_the_last_component_of_path_like_strings():
    config = {
        "data": {"dataset": "/data/mr/rt-polarity.tsv", "data_dir": "../shared/data/", "name": "mr"},
        "tfds": "tfds:imdb_reviews/plain_text",
        "vectors": ["C:\\vectors\\glove.txt", "file:///srv/w2v.bin", 3, None, True],
    }
    assert models.without_paths(config) == {
        "data": {"dataset": "rt-polarity.tsv", "data_dir": "data", "name": "mr"},
        "tfds": "tfds:imdb_reviews/plain_text",
        "vectors": ["glove.txt", "w2v.bin", 3, None, True],
    }
    assert models.without_paths(None) is None
