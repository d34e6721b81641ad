"""The language-model task: perplexity arithmetic, stateful streams, generation, export, CLI, and a real PTB slice."""

import contextlib
import csv
import io
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_case import data_dir, run_task_test, write_lines

from keras_tasks.scripts import cli
from keras_tasks.tasks import base
from keras_tasks.tasks.language_model import LanguageModelTask
from keras_tasks.tasks.metrics import Perplexity

TASK = "language_model"
TINY = {"model.hidden_dim": 8, "train.batch_size": 4, "data.sequence_length": 6, "train.verbose": "0"}
WORDS = "the cat sat on a mat and dog ran to big red house".split()


def quiet(*_):
    pass


@pytest.fixture
def tiny_text(tmp_path):
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(3, 9))) for _ in range(300)]
    return write_lines(tmp_path / "corpus.txt", lines)


def tiny_config(dataset, **overrides):
    return base.resolve_config(TASK, {"data.dataset": dataset, **TINY, **overrides})


def test_perplexity_is_exp_of_total_nll_over_total_tokens():
    probabilities = np.array(
        [[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]],  # batch 1: targets 1, 2
         [[0.2, 0.2, 0.6], [0.3, 0.3, 0.4]]],  # batch 2: targets 1 and padding
        "float32",
    )
    metric = Perplexity(from_logits=False)
    metric.update_state(np.array([[1, 2]]), probabilities[:1])
    metric.update_state(np.array([[1, 0]]), probabilities[1:])
    # Three scored tokens: p = 0.25, 0.8, 0.2. Not the mean of the two batches' perplexities.
    expected = math.exp(-(math.log(0.25) + math.log(0.8) + math.log(0.2)) / 3)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    per_batch = (math.exp(-(math.log(0.25) + math.log(0.8)) / 2) + 1 / 0.2) / 2
    assert abs(per_batch - expected) > 0.1
    bits = Perplexity("bits", from_logits=False)
    bits.update_state(np.array([[1, 2]]), probabilities[:1])
    assert float(bits.result()) == pytest.approx(-(math.log2(0.25) + math.log2(0.8)) / 2, rel=1e-5)
    restored = Perplexity.from_config(metric.get_config())
    assert restored.unit == "perplexity" and restored.pad_id == 0


def test_presets_follow_zaremba_and_the_unit_follows_the_dataset():
    small = base.resolve_config(TASK, {"data.dataset": "ptb"})
    assert (small.model.hidden_dim, small.model.num_layers, small.model.dropout) == (200, 2, 0.0)
    assert (small.train.batch_size, small.data.sequence_length) == (20, 35)
    # Zaremba's rate 1 and norm 5 on a loss summed over the 35 steps = rate 35 and norm 5/35 on our per-token mean.
    assert (small.train.optimizer, small.train.learning_rate, small.train.lr_schedule) == ("sgd", 35.0, "step")
    assert small.train.clipnorm == pytest.approx(5 / 35)
    short = base.resolve_config(TASK, {"data.dataset": "ptb"}, overrides=["data.sequence_length=20"])
    assert short.train.learning_rate == 20.0 and short.train.clipnorm == pytest.approx(0.25)
    medium = base.resolve_config(TASK, {"data.dataset": "ptb"}, overrides=["model.size=medium", "model.dropout=0.4"])
    assert medium.model.hidden_dim == 650 and medium.model.dropout == 0.4  # the user's value wins over the preset
    large = base.resolve_config(TASK, {"data.dataset": "ptb"}, overrides=["model.size=large"])
    assert (large.model.hidden_dim, large.model.dropout) == (1500, 0.65)
    char = base.resolve_config(TASK, {"data.dataset": "tinyshakespeare"})
    assert LanguageModelTask(char).unit == "char" and char.model.hidden_dim == 256
    assert LanguageModelTask(base.resolve_config(TASK, {"data.dataset": "my.txt", "data.unit": "char"})).unit == "char"
    with pytest.raises(ValueError, match="model.size must be"):
        base.resolve_config(TASK, {}, overrides=["model.size=huge"])


def prepared_task(config, assets_dir):
    task = LanguageModelTask(config)
    splits = task.load_data()
    task.adapt(splits, assets_dir)
    task.restore(assets_dir)
    return task, splits


def test_stateful_windows_equal_one_pass_over_the_stream(tiny_text, tmp_path):
    task, splits = prepared_task(tiny_config(tiny_text), str(tmp_path))
    model = task.build_model()
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    assert lstms and all(layer.stateful for layer in lstms)
    for lstm in lstms:  # cuDNN-eligible
        assert lstm.activation is keras.activations.tanh and lstm.recurrent_activation is keras.activations.sigmoid
        assert lstm.recurrent_dropout == 0 and not lstm.unroll
    # Every weight drawn afresh (init_scale 0.1): no two same-shaped matrices start equal.
    matrices = [w.numpy() for lstm in lstms for w in (lstm.cell.kernel, lstm.cell.recurrent_kernel)]
    assert all(np.abs(m).max() <= 0.1 for m in matrices)
    assert all(not np.array_equal(a, b) for i, a in enumerate(matrices) for b in matrices[i + 1:] if a.shape == b.shape)
    windows = list(task.make_dataset(splits, "train", training=True).take(3))
    ids = np.concatenate([inputs.numpy() for inputs, _ in windows], axis=1)  # each row one contiguous stream
    np.testing.assert_array_equal(windows[0][1].numpy()[:, :-1], windows[0][0].numpy()[:, 1:])
    np.testing.assert_array_equal(windows[0][1].numpy()[:, -1], windows[1][0].numpy()[:, 0])

    streamed = [model(inputs, training=False).numpy() for inputs, _ in windows]
    inference = task.build_inference_model(model)
    whole = inference(ids, training=False)[0].numpy()
    np.testing.assert_allclose(np.concatenate(streamed, axis=1), whole, atol=1e-5)  # state carried across windows

    base.reset_states(model)  # and a reset starts the stream afresh
    np.testing.assert_allclose(model(windows[1][0], training=False).numpy(), inference(windows[1][0])[0].numpy(), atol=1e-5)


def test_seeded_generation_is_deterministic_and_temperature_zero_is_greedy(tiny_text, tmp_path):
    task, _ = prepared_task(tiny_config(tiny_text), str(tmp_path))
    inference = task.build_inference_model(task.build_model())
    generate = task.export_endpoints(inference)["generate"][0]

    def run(temperature, seed, top_k=0, prompts=("the cat", "")):
        n = len(prompts)
        return generate(
            prompt=tf.constant(list(prompts)), max_length=tf.constant([7] * n), temperature=tf.constant([temperature] * n),
            top_k=tf.constant([top_k] * n), seed=tf.constant([seed] * n),
        )["generated"].numpy().tolist()

    assert run(1.0, 3) == run(1.0, 3)
    assert len({tuple(run(1.0, seed)) for seed in range(6)}) > 1
    assert run(0.0, 1) == run(0.0, 2) == run(1.0, 5, top_k=1)

    # Greedy by hand: argmax of the inference model's last logits, one token at a time.
    vectorizer = task.vectorizer
    ids = [int(vectorizer.lookup(tf.constant(["<eos>"]))[0])] + vectorizer(["the cat"]).numpy()[0].tolist()
    expected = []
    for _ in range(7):
        logits = inference(np.array([ids]), training=False)[0].numpy()[0, -1]
        ids.append(2 + int(np.argmax(logits[2:])))  # padding and OOV are never generated
        expected.append(vectorizer.vocabulary[ids[-1]])
    assert run(0.0, 1)[0].decode() == " ".join(expected)


GENERATE_INPUTS = {
    "generate": {"prompt": ["the cat", "dog", "zebra unknown words", ""], "max_length": [5, 3, 4, 2],
                 "temperature": [1.0, 0.0, 0.7, 1.0], "top_k": [0, 0, 3, 0], "seed": [1, 2, 3, 4]},
    "score": {"text": ["the cat sat on a mat", "dog", "zebra"]},
}


@pytest.fixture(scope="module")
def exported_lm(tmp_path_factory):
    """One tiny LM through `run_task_test` (fit, export, in-memory = SavedModel = served), shared by the tests below."""
    tmp_path = tmp_path_factory.mktemp("exported_lm")
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(3, 9))) for _ in range(300)]
    corpus = write_lines(tmp_path / "corpus.txt", lines)
    return run_task_test(TASK, {"data.dataset": corpus, **TINY}, GENERATE_INPUTS, tmp_path)


def test_export_reload_and_serve_generate_and_score(exported_lm):
    metrics, _, outputs = exported_lm
    assert metrics["test"]["perplexity"] > 1 and metrics["validation"]["perplexity"] > 1
    generated = [g.decode() for g in outputs["generate"]["generated"]]
    assert [len(g.split()) for g in generated] == [5, 3, 4, 2]  # an empty prompt generates from the start
    texts = [t.decode() for t in outputs["generate"]["text"]]
    assert texts[0].startswith("the cat ") and texts[3] == generated[3]
    score = outputs["score"]
    assert score["num_tokens"].tolist() == [7, 2, 2]  # words + <eos>
    np.testing.assert_allclose(score["perplexity"], np.exp(-score["log_likelihood"] / score["num_tokens"]), rtol=1e-5)


def test_demo_page_generates_from_a_prompt_and_scores(exported_lm, browser):
    """The served LM in the demo page: a prompt box with the export's defaults, generated text, a score table."""
    from demo_page import By, demo_card, option_fields, wait_for_result
    from selenium.webdriver.support.ui import Select

    _, path, _ = exported_lm
    with demo_card(browser, os.path.dirname(os.path.dirname(path))) as section:
        options = option_fields(section)
        assert {name: field.get_attribute("value") for name, field in options.items()} == {
            "max_length": "30", "temperature": "1", "top_k": "0", "seed": "0"}  # signature_defaults.json
        section.find_element(By.CSS_SELECTOR, "textarea.input-text").send_keys("the cat")
        options["max_length"].clear()
        options["max_length"].send_keys("4")
        section.find_element(By.CSS_SELECTOR, "button.predict").click()
        (text,) = wait_for_result(browser, section, "pre.text")
        continuation = text.find_element(By.CSS_SELECTOR, ".continuation").text
        assert text.text.startswith("the cat ") and len(continuation.split()) == 4

        options["temperature"].clear()
        options["temperature"].send_keys("warm")
        section.find_element(By.CSS_SELECTOR, "button.predict").click()
        (error,) = wait_for_result(browser, section, ".error")
        assert error.text == 'temperature: "warm" is not a number'

        Select(section.find_element(By.CSS_SELECTOR, "select.signature")).select_by_value("score")
        section.find_element(By.CSS_SELECTOR, "textarea.input-text").send_keys("the cat sat")
        section.find_element(By.CSS_SELECTOR, "button.predict").click()
        rows = wait_for_result(browser, section, "table.values tr")
        values = {row.get_attribute("data-name"): float(row.get_attribute("data-value")) for row in rows}
        assert sorted(values) == ["log_likelihood", "num_tokens", "perplexity"] and values["num_tokens"] == 4
        assert values["perplexity"] == pytest.approx(math.exp(-values["log_likelihood"] / 4), rel=1e-5)


def test_cli_train_export_predict_generate_and_score(tiny_text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["train", TASK, "--dataset", tiny_text, "--epochs", "1", "--run-dir", "run",
                         "--set", "model.hidden_dim=8", "--set", "train.verbose=0"]) == 0
        assert cli.main(["export", "--run-dir", "run", "--name", "lm"]) == 0
    assert "test: " in out.getvalue() and "perplexity=" in out.getvalue()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["predict", "--model", "saved_models/lm", "the cat", "--set", "max_length=4 temperature=0"]) == 0
    (line,) = out.getvalue().strip().split("\n")
    assert line.startswith("the cat ") and len(line.split()) == 6
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["predict", "--model", "saved_models/lm", "--signature", "score", "the cat sat", "zzz"]) == 0
    rows = [line.split("\t") for line in out.getvalue().strip().split("\n")]
    assert [row[2] for row in rows] == ["the cat sat", "zzz"] and all(float(row[1]) > 1 for row in rows)


def test_killed_run_resumes_with_stateful_streams(tiny_text, tmp_path):
    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    run_dir = str(tmp_path / "run")
    config = tiny_config(tiny_text, **{"train.epochs": 2})
    with pytest.raises(KeyboardInterrupt):
        base.train(TASK, config, run_dir, log=quiet, callbacks=[Kill()])
    metrics = base.train(TASK, config, run_dir, log=quiet)
    with open(os.path.join(run_dir, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    training = metrics["training"]
    assert (training["epochs_run"], training["epochs_this_attempt"]) == (2, 1) and np.isfinite(metrics["test"]["perplexity"])
    assert training["train_seconds"] >= sum(float(row["epoch_seconds"]) for row in rows) > 0  # both attempts


@pytest.mark.large
def test_lstm_learns_a_ptb_slice(tmp_path):
    """120k PTB training tokens, a 2,000-entry vocabulary, three epochs (about 70 s on two cores): validation
    perplexity about half the unigram model's (110 vs 220 with seeds 0 and 1), so the LSTM uses its context."""
    overrides = ["train.verbose=0", "model.hidden_dim=128", "train.optimizer=adam", "train.learning_rate=0.005",
                 "train.lr_schedule=constant", "train.batch_size=10", "data.max_tokens=2000"]
    config = base.resolve_config(
        TASK, {"data.dataset": "ptb", "data.data_dir": data_dir(), "data.max_examples": 120_000, "train.epochs": 3},
        overrides=overrides,
    )
    task = LanguageModelTask(config)
    splits = task.load_data()
    metrics = base.train(TASK, config, str(tmp_path / "run"), log=quiet)
    task.restore(str(tmp_path / "run" / "assets"))
    assert task.vectorizer.vocabulary_size == 2000  # pad, [UNK] and the 1,998 commonest words
    train_ids = task.split_ids(splits, "train")[:120_000]
    counts = np.bincount(train_ids, minlength=task.vectorizer.vocabulary_size).astype("float64") + 1
    valid = task.split_ids(splits, "validation")
    unigram = math.exp(-np.mean(np.log(counts[valid] / counts.sum())))
    assert 150 < unigram < 300
    assert metrics["validation"]["perplexity"] < 0.65 * unigram, (metrics["validation"], unigram)
    assert metrics["test"]["perplexity"] < 0.65 * unigram, (metrics["test"], unigram)
