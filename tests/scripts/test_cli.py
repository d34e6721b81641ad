import json
import os

import pytest

from keras_tasks.scripts import cli
from test_case import tiny_sentiment_lines, write_lines


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_evaluate_export_predict(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_lines(tmp_path / "reviews.tsv", ["text\tlabel"] + [
        f"{line.split(' ', 1)[1]}\t{'pos' if line[0] == '1' else 'neg'}" for line in tiny_sentiment_lines(60)
    ])
    tiny = ["--set", "model.embedding_dim=8", "--set", "model.num_filters=4"]
    code, out, err = run(
        capsys, "train", "text_classification", "--model", "textcnn", "--dataset", data,
        "--epochs", "1", "--batch-size", "8", "--max-examples", "40", "--seed", "3", "--run-dir", "run", *tiny,
    )
    assert code == 0, err
    assert "test: accuracy=" in out
    config = json.load(open("run/config.json"))["config"]
    assert config["train"]["seed"] == 3 and config["data"]["max_examples"] == 40

    code, out, err = run(capsys, "evaluate", "--run-dir", "run")
    assert code == 0 and "test: accuracy=" in out, err

    code, out, err = run(capsys, "export", "--run-dir", "run", "--name", "reviews")
    assert code == 0 and os.path.exists("saved_models/reviews/1/saved_model.pb"), err

    inputs = write_lines(tmp_path / "inputs.txt", ["a dull and boring film", "", "lovely , superb acting"])
    code, out, err = run(capsys, "predict", "--model", "saved_models/reviews", "a gripping , funny film",
                         "--input-file", inputs)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 3
    for line, text in zip(lines, ["a gripping , funny film", "a dull and boring film", "lovely , superb acting"]):
        label, probability, echoed = line.split("\t")[:3]
        assert label in ("neg", "pos") and 0.5 <= float(probability) <= 1.0 and echoed == text


def test_errors_are_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = write_lines(tmp_path / "bad.txt", ["1 fine", "0"])
    code, _, err = run(capsys, "train", "text_classification", "--dataset", bad, "--run-dir", "r")
    assert code == 2 and "bad.txt:2: expected 'label text'" in err
    code, _, err = run(capsys, "train", "text_classification", "--dataset", "trec", "--data-dir", str(tmp_path),
                       "--no-download")
    assert code == 2 and "TREC.train" in err and "drop --no-download" in err
    code, _, err = run(capsys, "train", "text_classification", "--set", "model.nope=1")
    assert code == 2 and "unknown config key 'model.nope'" in err
    with pytest.raises(SystemExit) as exit_info:  # argparse lists the tasks it knows
        cli.main(["train", "no_such_task"])
    assert exit_info.value.code == 2 and "invalid choice: 'no_such_task'" in capsys.readouterr().err
    code, _, err = run(capsys, "evaluate", "--run-dir", str(tmp_path / "missing"))
    assert code == 2 and "not a run directory" in err
    code, _, err = run(capsys, "predict", "--model", str(tmp_path / "nothing"), "text")
    assert code == 2 and "no such SavedModel folder" in err


def test_print_config_resolves_presets_and_flags(capsys):
    code, out, _ = run(capsys, "train", "text_classification", "--dataset", "imdb", "--epochs", "7", "--print-config")
    config = json.loads(out)
    assert code == 0 and config["train"]["epochs"] == 7 and config["train"]["batch_size"] == 64
    assert config["model"]["name"] == "fasttext"  # the preset's model for documents
    # TREC keeps its case (Kim's preprocessing); the user's own choice still wins over the preset.
    _, out, _ = run(capsys, "train", "text_classification", "--dataset", "trec", "--print-config")
    assert json.loads(out)["data"]["lowercase"] is False
    _, out, _ = run(capsys, "train", "text_classification", "--dataset", "mr", "--print-config")
    assert json.loads(out)["data"]["lowercase"] is True
    _, out, _ = run(capsys, "train", "text_classification", "--dataset", "trec", "--set", "data.lowercase=true",
                    "--print-config")
    assert json.loads(out)["data"]["lowercase"] is True


def test_set_takes_several_values_as_the_docs_write_them(capsys, monkeypatch):
    # train: `--set a=1 b=2` (the form the docs use) and repeated `--set` both apply every value.
    _, out, _ = run(capsys, "train", "text_classification", "--dataset", "mr", "--set", "model.dropout=0.3",
                    "train.epochs=4", "--set", "train.batch_size=8", "--print-config")
    config = json.loads(out)
    assert (config["model"]["dropout"], config["train"]["epochs"], config["train"]["batch_size"]) == (0.3, 4, 8)
    # predict: the prompt before --set stays an input, the settings become signature inputs; a word without '='
    # written after the settings is one more input, not a setting.
    from keras_tasks.tasks import predict

    calls = []
    monkeypatch.setattr(predict, "predict", lambda model, inputs, signature, options: calls.append((inputs, dict(options))) or [])
    monkeypatch.setattr(predict, "export_task_name", lambda model: "language_model")
    monkeypatch.setattr(predict, "format_results", lambda *args: [])
    assert run(capsys, "predict", "--model", "m", "ROMEO:", "--set", "max_length=300", "temperature=0.8")[0] == 0
    assert run(capsys, "predict", "--model", "m", "--set", "max_length=300", "JULIET:", "--signature", "generate")[0] == 0
    assert calls == [(["ROMEO:"], {"max_length": 300, "temperature": 0.8}), (["JULIET:"], {"max_length": 300})]


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("train", "evaluate", "export", "predict"):
        assert command in out


@pytest.mark.parametrize("argv, first_line", [
    (["serve", "--help"], "serve SavedModels over the TF Serving REST API"),
    (["export", "--help"], "write a TF Serving SavedModel: BASE/NAME/VERSION/"),
    (["embeddings", "train", "--help"], "train word2vec (gensim, all cores) and save it in word2vec format"),
])
def test_every_subcommand_help_says_what_it_does(argv, first_line, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.split("\n\n")[1].strip() == first_line  # the paragraph after the usage


@pytest.mark.parametrize("argv, expected", [
    (["--help"], "train a task, evaluate it on the test split"),
    (["list"], "tinyshakespeare"),
    (["train", "--help"], "Next-token prediction"),
    (["train", "text_classification", "--help"], "--embedding-mode"),
    (["serve", "--help"], "--max-image-pixels"),
    (["loadtest", "--help"], "--concurrency"),
    (["predict", "--server", "http://127.0.0.1:9", "--model", "m", "a text"], "cannot reach the server"),
])
def test_help_list_and_predict_through_a_server_answer_without_importing_tensorflow(argv, expected):
    """TensorFlow takes seconds to import (and prints CUDA noise on a CPU machine): these commands never need it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from keras_tasks.scripts import cli\n"
        "try:\n"
        f"    status = cli.main({argv!r})\n"
        "except SystemExit as e:\n"
        "    status = e.code\n"
        "print('status', status, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert expected in result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"status {2 if argv[0] == 'predict' else 0} False False"
