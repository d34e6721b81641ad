"""The translation task: tiny pairs through train -> export -> reload -> serve, decoding, CLI, a real Multi30k slice."""

import contextlib
import io
import os

import numpy as np
import pytest
import tensorflow as tf
from test_case import data_dir, run_task_test, write_lines

from keras_tasks.scripts import cli
from keras_tasks.tasks import base
from keras_tasks.tasks.losses import MaskedSparseCrossentropy

TASK = "translation"
GERMAN = "ein mann frau hund katze sieht läuft schnell rot blau".split()
ENGLISH = "a man woman dog cat sees runs fast red blue".split()
TINY = {"data.vocabulary_size": 40, "model.embedding_dim": 8, "model.hidden_dim": 4, "model.decoder_dim": 8,
        "model.attention_dim": 4, "train.batch_size": 8, "train.verbose": "0"}


def pairs_file(path, n=120, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        words = rng.integers(0, len(GERMAN), size=rng.integers(2, 6))
        lines.append(f"{' '.join(GERMAN[i] for i in words)}\t{' '.join(ENGLISH[i] for i in words)}\tCC-BY")
    return write_lines(path, lines)


def test_label_smoothed_loss_ignores_padding():
    logits = np.log(np.array([[[0.7, 0.1, 0.2], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]]], "float32"))
    targets = np.array([[1, 2, 0]])
    plain = float(MaskedSparseCrossentropy()(targets, logits))
    assert plain == pytest.approx(-(np.log(0.1) + np.log(0.6)) / 2, rel=1e-5)  # the padded token neither adds nor counts
    smooth = float(MaskedSparseCrossentropy(label_smoothing=0.3)(targets, logits))
    expected = [0.7 * -np.log(p) + 0.3 * -np.mean(np.log(row)) for p, row in ((0.1, [0.7, 0.1, 0.2]), (0.6, [0.2, 0.2, 0.6]))]
    assert smooth == pytest.approx(np.mean(expected), rel=1e-5)
    assert MaskedSparseCrossentropy.from_config(MaskedSparseCrossentropy(0.1).get_config()).label_smoothing == 0.1


def test_config_choices_are_checked():
    from keras_tasks.tasks.translation import TranslationTask

    with pytest.raises(ValueError, match="model.attention must be bahdanau or luong"):
        TranslationTask(base.resolve_config(TASK, {"model.attention": "monotonic"}))
    with pytest.raises(ValueError, match="decoder_dim = 2 \\* model.hidden_dim"):
        TranslationTask(base.resolve_config(TASK, {"model.attention": "luong", "model.score": "dot", "model.hidden_dim": 100}))
    with pytest.raises(ValueError, match="beam_size"):
        base.resolve_config(TASK, {"model.beam_size": 0})


TRANSLATE = {"text": ["ein mann läuft", "hund", "", "Katze sieht schnell rote Hunde"],
             "beam_size": [3, 1, 2, 5], "length_penalty": [0.6, 0.0, 1.0, 0.6], "max_length": [20, 20, 3, 20]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Luong attention with input feeding, an LSTM: fit, export, in-memory = SavedModel = served."""
    tmp_path = tmp_path_factory.mktemp("translation")
    overrides = {"data.dataset": pairs_file(tmp_path / "pairs.tsv"), "model.attention": "luong",
                 "model.input_feeding": True, "model.rnn": "lstm", **TINY}
    return run_task_test(TASK, overrides, {"translate": TRANSLATE, "serving_default": TRANSLATE}, tmp_path, atol=1e-4)


def test_export_reload_and_serve_translate(exported):
    metrics, path, outputs = exported
    assert {"bleu", "chrf", "bleu_beam", "chrf_beam"} <= set(metrics["test"])
    assert metrics["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    out = outputs["translate"]
    batch, steps, time = out["attention"].shape
    assert (batch, time) == (4, out["source_tokens"].shape[1]) and out["target_tokens"].shape == (4, steps)
    # Source pieces end with </s>; the target pieces of each row end with </s> unless max_length cut it.
    for row in range(4):
        source = [t.decode() for t in out["source_tokens"][row] if t]
        target = [t.decode() for t in out["target_tokens"][row] if t]
        assert source[-1] == "</s>" and len(target) <= TRANSLATE["max_length"][row]
        weights = out["attention"][row]
        np.testing.assert_allclose(weights[: len(target)].sum(axis=1), 1.0, rtol=1e-4)  # over the real source only
        assert np.all(weights[len(target):] == 0) and np.all(weights[:, len(source):] == 0)
    assert len([t for t in out["target_tokens"][2] if t]) <= 3  # max_length of the empty input
    assert os.path.exists(os.path.join(path, "assets", "joint.model"))  # SentencePiece travels as an asset


def test_beam_one_equals_greedy_and_rows_do_not_depend_on_their_batch(exported):
    _, path, outputs = exported
    loaded = tf.saved_model.load(path).signatures["translate"]

    def translate(texts, beam):
        n = len(texts)
        return loaded(text=tf.constant(texts), beam_size=tf.constant([beam] * n),
                      length_penalty=tf.constant([0.6] * n), max_length=tf.constant([20] * n))

    alone = {beam: [translate([text], beam)["translation"].numpy()[0] for text in TRANSLATE["text"]] for beam in (1, 3)}
    assert translate(TRANSLATE["text"], 1)["translation"].numpy().tolist() == alone[1]
    assert translate(TRANSLATE["text"], 3)["translation"].numpy().tolist() == alone[3]
    # The mixed batch of the fixture: each row as if alone with its own beam size.
    assert outputs["translate"]["translation"][0] == alone[3][0] and outputs["translate"]["translation"][1] == alone[1][1]


def test_demo_page_shows_the_translation_and_an_attention_heat_map(exported, browser):
    from demo_page import By, demo_card, option_fields, wait_for_result

    _, path, _ = exported
    with demo_card(browser, os.path.dirname(os.path.dirname(path))) as section:
        fields = {name: field.get_attribute("value") for name, field in option_fields(section).items()}
        assert fields == {"beam_size": "5", "length_penalty": "0.6", "max_length": "100"}  # signature_defaults.json
        section.find_element(By.CSS_SELECTOR, "textarea.input-text").send_keys("ein mann läuft")
        section.find_element(By.CSS_SELECTOR, "button.predict").click()
        (translation,) = wait_for_result(browser, section, "p.translation")
        rows = section.find_elements(By.CSS_SELECTOR, ".result table.heatmap tbody tr")
        columns = section.find_elements(By.CSS_SELECTOR, ".result table.heatmap thead th")
        expected = run_signature(path, "ein mann läuft")
        # The browser drops trailing spaces: a tiny model's translation may be empty ("Translation:").
        assert translation.text.rstrip() == ("Translation: " + expected["translation"]).rstrip()
        assert [c.text for c in columns[1:]] == expected["source_tokens"] and expected["source_tokens"]
        assert [r.find_element(By.TAG_NAME, "th").text for r in rows] == expected["target_tokens"]
        for row, weights in zip(rows, expected["attention"]):
            shown = [float(td.get_attribute("data-weight")) for td in row.find_elements(By.TAG_NAME, "td")]
            np.testing.assert_allclose(shown, weights, rtol=1e-4, atol=1e-6)


def run_signature(path, text):
    """The SavedModel's translation of one text with the export's defaults, tokens without padding."""
    outputs = tf.saved_model.load(path).signatures["serving_default"](
        text=tf.constant([text]), beam_size=tf.constant([5]), length_penalty=tf.constant([0.6]),
        max_length=tf.constant([100]))
    source = [t.decode() for t in outputs["source_tokens"].numpy()[0] if t]
    target = [t.decode() for t in outputs["target_tokens"].numpy()[0] if t]
    attention = outputs["attention"].numpy()[0][: len(target), : len(source)]
    return {"translation": outputs["translation"].numpy()[0].decode(), "source_tokens": source,
            "target_tokens": target, "attention": attention}


def test_cli_train_export_predict_prints_the_translation_and_writes_a_heat_map(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pairs = pairs_file(tmp_path / "pairs.tsv", n=60)
    sets = [item for key, value in TINY.items() for item in ("--set", f"{key}={value}")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["train", TASK, "--dataset", pairs, "--epochs", "1", "--run-dir", "run",
                         "--set", "train.steps_per_epoch=2", "--set", "data.source=de", *sets]) == 0
        assert cli.main(["export", "--run-dir", "run", "--name", "de_en"]) == 0
    printed = out.getvalue()
    assert "test: " in printed and "bleu_beam=" in printed and "bleu_signature: nrefs:1|case:mixed" in printed
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["predict", "--model", "saved_models/de_en", "ein mann läuft", "hund",
                         "--set", "beam_size=2 attention_png=heat.png"]) == 0
    lines = out.getvalue().strip().split("\n")
    assert len(lines) == 2 and all("[attention heat map: heat-" in line for line in lines)
    with open(tmp_path / "heat-1.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.large
def test_learns_a_multi30k_slice(tmp_path):
    """10,000 de->en pairs, a 2,000-piece joint vocabulary, Luong attention without input feeding, 3 epochs
    (670 s measured on this shared two-core CPU): test BLEU 8.1 greedy and 7.8 with beam 5, against 0.5 for
    copying the German source (chrF 25.9); validation BLEU went 0.3, 5.6, 8.1 over the epochs."""
    import sacrebleu

    from keras_tasks.pipelines import parallel
    from keras_tasks.tasks.translation import TranslationTask

    overrides = ["train.verbose=0", "data.vocabulary_size=2000", "model.attention=luong", "model.embedding_dim=128",
                 "model.hidden_dim=128", "model.decoder_dim=256", "train.epochs=3", "train.early_stopping_patience=null",
                 "data.max_examples=10000", "train.batch_size=32", "train.learning_rate=0.003", "model.dropout=0.1"]
    config = base.resolve_config(TASK, {"data.dataset": "multi30k", "data.data_dir": data_dir()}, overrides=overrides)
    run_dir = str(tmp_path / "run")
    metrics = base.train(TASK, config, run_dir, log=lambda *_: None)
    splits = parallel.load_parallel("multi30k", "de", "en", data_dir=data_dir())
    copy = sacrebleu.corpus_bleu(splits.sources("test"), [splits.targets("test")]).score
    assert copy < 1.0
    assert metrics["test"]["bleu"] > copy + 5.0, metrics["test"]
    assert metrics["test"]["bleu_beam"] > copy + 5.0, metrics["test"]
    task = TranslationTask(config)
    task.restore(os.path.join(run_dir, "assets"))
    assert task.vocabulary_sizes == (2000, 2000)
