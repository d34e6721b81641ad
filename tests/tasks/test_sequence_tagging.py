"""The sequence-tagging task: seqeval scoring, in-graph tokens and spans, export and serving, CLI, a real CoNLL run."""

import contextlib
import io
import os

import numpy as np
import pytest
import tensorflow as tf
from test_case import data_dir, run_task_test, write_lines

from keras_tasks.pipelines import conll, tagging
from keras_tasks.scripts import cli
from keras_tasks.tasks import base
from keras_tasks.tasks.sequence_tagging import entity_scores

TASK = "sequence_tagging"
TINY = {
    "model.hidden_dim": 4, "model.embedding_dim": 4, "model.char_embedding_dim": 4, "model.num_filters": 4,
    "model.casing_dim": 2, "train.batch_size": 2, "train.verbose": "0",
}
PEOPLE, PLACES = ["Peter", "Anna", "Ekeus"], ["Bonn", "Baghdad", "Paris"]
SENTENCES = ["U.N. official Ekeus heads for Baghdad.", "Peter Blackburn met Anna in Bonn", "nothing here", ""]


def tiny_dataset(folder, n=30, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        lines += [f"{rng.choice(PEOPLE)} NNP I-PER", "went VBD O", "to TO O", f"{rng.choice(PLACES)} NNP I-LOC", ". . O", ""]
    os.makedirs(folder, exist_ok=True)
    for name in ("train.txt", "valid.txt", "test.txt"):
        write_lines(os.path.join(folder, name), ["-DOCSTART- -X- O O", ""] + lines)
    return str(folder)


def test_seqeval_scores_entities_as_conlleval_on_a_hand_made_example():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-MISC", "I-MISC"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "B-MISC", "O"]]
    # Entities: gold PER, LOC, ORG, MISC(2 tokens); predicted PER (right), ORG (wrong type), ORG (right), MISC (short).
    scores = entity_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(2 / 4) and scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(0.5)
    assert scores["f1_PER"] == 1.0 and scores["f1_LOC"] == 0.0 and scores["precision_ORG"] == 0.5
    assert scores["recall_ORG"] == 1.0 and scores["f1_MISC"] == 0.0
    # conlleval reads an I- after O as the start of an entity (IOB1), and so does seqeval's default mode.
    assert entity_scores([["O", "I-PER", "I-PER"]], [["O", "B-PER", "I-PER"]])["f1"] == 1.0


def test_raw_sentences_are_tokenised_as_conll_with_character_offsets():
    texts = ["U.N. official Ekeus heads for Baghdad.", "  Germany's représentant doesn't pay 1,000 -- 12-year-old"]
    tokens, starts, ends = tagging.split_tokens(texts)
    assert [t.decode() for t in tokens[0].numpy()] == ["U.N.", "official", "Ekeus", "heads", "for", "Baghdad", "."]
    assert [t.decode() for t in tokens[1].numpy()] == [
        "Germany", "'s", "représentant", "does", "n't", "pay", "1,000", "--", "12-year-old"]
    for i, text in enumerate(texts):
        assert [text[a:b] for a, b in zip(starts[i].numpy(), ends[i].numpy())] == [t.decode() for t in tokens[i].numpy()]
    pre, pre_starts, _ = tagging.split_tokens(["a  b.c\td"], pretokenized=True)
    assert pre.to_list() == [[b"a", b"b.c", b"d"]] and pre_starts.to_list() == [[0, 3, 7]]
    # CoNLL-2003's test sentences, joined by spaces, mostly come back as the very same tokens.
    sentences = conll.read_conll(os.path.join(data_dir(), "conll2003", "eng.testb"))
    found = tagging.split_tokens([" ".join(s.tokens) for s in sentences])[0].to_list()
    same = sum(1 for s, t in zip(sentences, found) if [x.decode() for x in t] == s.tokens)
    assert same / len(sentences) > 0.9


def test_entity_spans_in_the_graph_match_the_reader_on_every_scheme():
    rng = np.random.default_rng(0)
    names = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    tag_ids = rng.integers(0, len(names), size=(50, 7)).astype("int32")  # valid or not: conlleval's reading
    lengths = rng.integers(0, 8, size=50)
    mask = np.arange(7)[None, :] < lengths[:, None]
    texts = tf.constant(["abcdefghijklmn"] * 50)
    starts, ends = np.tile(np.arange(7) * 2, (50, 1)), np.tile(np.arange(7) * 2 + 1, (50, 1))
    spans = {k: v.numpy() for k, v in tagging.entity_spans(tag_ids, names, starts, ends, texts, mask).items()}
    for i in range(50):
        expected = conll.entities([names[t] for t in tag_ids[i, : lengths[i]]])
        got = [(t.decode(), s // 2, e // 2 + 1) for t, s, e in zip(spans["entity_types"][i], spans["entity_starts"][i],
                                                                     spans["entity_ends"][i]) if s >= 0]
        assert got == expected
        assert [t.decode() for t in spans["entities"][i] if t] == ["abcdefghijklmn"[2 * s : 2 * e - 1] for _, s, e in expected]


@pytest.fixture(scope="module")
def exported_tagger(tmp_path_factory):
    """One tiny BiLSTM-CRF through `run_task_test` (fit, export, in-memory = SavedModel = served)."""
    tmp_path = tmp_path_factory.mktemp("exported_tagger")
    folder = tiny_dataset(tmp_path / "data")
    inputs = {"serving_default": {"text": SENTENCES}, "tag_tokens": {"tokens": ["Peter went to Bonn .", "x"]}}
    overrides = {"data.dataset": folder, **TINY, "train.steps_per_epoch": 3}
    return run_task_test(TASK, overrides, inputs, tmp_path)


def test_export_reload_and_serve_tags_and_entity_spans(exported_tagger):
    metrics, path, outputs = exported_tagger
    assert 0 <= metrics["test"]["f1"] <= 1 and "f1_PER" in metrics["test"] and "f1_LOC" in metrics["validation"]
    served = outputs["serving_default"]
    assert [t.decode() for t in served["tokens"][0]] == ["U.N.", "official", "Ekeus", "heads", "for", "Baghdad", "."]
    assert served["tokens"].shape == served["tags"].shape == (4, 7)
    assert all(t == b"" for t in served["tags"][3]) and all(t == b"" for t in served["tags"][2][2:])
    labels = open(os.path.join(path, "assets.extra", "labels.txt")).read().split()
    assert labels[0] == "O" and set(labels) <= {f"{p}-{t}" for p in "BIES" for t in ("PER", "LOC")} | {"O"}
    # Spans agree with the tags, and their offsets cut the entity text out of the input.
    for i, text in enumerate(SENTENCES):
        names = [t.decode() for t in served["tags"][i] if t]
        expected = conll.entities(names)
        spans = [(k.decode(), s, e) for k, s, e in zip(served["entity_types"][i], served["entity_starts"][i],
                                                       served["entity_ends"][i]) if s >= 0]
        assert [k for k, _, _ in spans] == [k for k, _, _ in expected]
        assert [text[s:e] for _, s, e in spans] == [t.decode() for t in served["entities"][i] if t]


@pytest.fixture(scope="module")
def learned_tagger(tmp_path_factory):
    """A tiny BiLSTM-CRF trained through the CLI until it tags the tiny data perfectly, then exported."""
    tmp_path = tmp_path_factory.mktemp("learned_tagger")
    folder = tiny_dataset(tmp_path / "data", n=60)
    run_dir, base_dir = str(tmp_path / "run"), str(tmp_path / "saved_models")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["train", TASK, "--model", "bilstm_crf", "--dataset", folder, "--epochs", "12", "--run-dir", run_dir,
                         "--learning-rate", "0.02", "--set", "model.hidden_dim=8", "--set", "train.verbose=0",
                         "--set", "model.dropout=0.0", "--set", "train.batch_size=8"]) == 0
        assert cli.main(["export", "--run-dir", run_dir, "--name", "ner", "--base-dir", base_dir]) == 0
    return run_dir, os.path.join(base_dir, "ner"), out.getvalue()


def test_the_model_learns_the_tiny_tags_and_predict_prints_entities(learned_tagger):
    run_dir, model_path, printed = learned_tagger
    assert "test: " in printed and "f1_PER=" in printed and "f1_LOC=" in printed
    metrics = base.evaluate(run_dir)
    assert metrics["test"]["f1"] == 1.0, metrics["test"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["predict", "--model", model_path, "Anna went to Paris .", "went to"]) == 0
    lines = out.getvalue().strip().split("\n")
    assert lines == ["Anna went to Paris .\tAnna/PER[0:4] Paris/LOC[13:18]", "went to\t(no entities)"]


def test_bad_scheme_and_model_are_one_line_errors(tmp_path):
    folder = tiny_dataset(tmp_path / "data", n=3)
    for flag, value, message in (("--set", "data.tag_scheme=bio", "data.tag_scheme must be one of iob1, iob2, iobes"),
                                 ("--model", "crf", "model.name must be one of bilstm, bilstm_crf")):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert cli.main(["train", TASK, "--dataset", folder, flag, value, "--run-dir", str(tmp_path / value)]) == 2
        assert message in err.getvalue()


def test_demo_page_highlights_entities(learned_tagger, browser):
    """The trained tagger finds a person and a place: the page marks exactly those spans in the text typed."""
    from demo_page import By, demo_card, wait_for_result

    sentence = "Anna went to Paris ."
    with demo_card(browser, os.path.dirname(learned_tagger[1]), "ner") as section:
        section.find_element(By.CSS_SELECTOR, "textarea.input-text").send_keys(sentence)
        section.find_element(By.CSS_SELECTOR, "button.predict").click()
        (text,) = wait_for_result(browser, section, "p.entities")
        marks = text.find_elements(By.CSS_SELECTOR, "mark.entity")
        got = [(mark.get_attribute("data-text"), mark.get_attribute("data-type"), mark.text.split()) for mark in marks]
        assert got == [("Anna", "PER", ["Anna", "PER"]), ("Paris", "LOC", ["Paris", "LOC"])]
        assert text.get_attribute("data-text") == sentence and text.text.replace("\n", " ").startswith("Anna")


@pytest.mark.large
def test_bilstm_crf_learns_conll2003_entities(tmp_path):
    """3,000 training sentences, two epochs (90 s of CPU; 208 s wall on the loaded 2-core machine): entity F1 on eng.testb far above the
    majority-tag baseline (every token O: F1 0) and above a softer bar, tagging every capitalised word PER."""
    config = base.resolve_config(
        TASK,
        {"data.dataset": "conll2003", "data.data_dir": data_dir(), "data.max_examples": 3000, "train.epochs": 2,
         "train.verbose": "0"},
    )
    metrics = base.train(TASK, config, str(tmp_path / "run"), log=lambda *_: None)
    splits = conll.load_tagged_splits("conll2003", data_dir(), scheme="iob2")
    gold = [s.tags for s in splits.sentences["test"]]
    capitalised = [["B-PER" if t[:1].isupper() else "O" for t in s.tokens] for s in splits.sentences["test"]]
    assert entity_scores(gold, [["O"] * len(g) for g in gold])["f1"] == 0.0
    guess = entity_scores(gold, capitalised)["f1"]
    assert metrics["test"]["f1"] > max(0.5, guess + 0.3), (metrics["test"], guess)
