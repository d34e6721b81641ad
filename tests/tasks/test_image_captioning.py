import collections
import csv
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_case import data_dir, run_task_test

from keras_tasks.pipelines.errors import ConfigError, DataError
from keras_tasks.tasks import base, formatting
from keras_tasks.tasks.bleu import corpus_bleu_orders as corpus_bleu
from keras_tasks.tasks.caption_models import END_ID, DoublyStochasticAttention, build_encoder
from keras_tasks.tasks.image_captioning import caption_words

TASK = "image_captioning"
TINY_MODEL = {
    "data.image_size": [32, 32],
    "model.encoder_filters": [4, 8],
    "model.grid_size": 4,
    "model.embedding_dim": 4,
    "model.decoder_dim": 4,
    "model.attention_dim": 4,
    "model.max_caption_length": 6,
    "train.batch_size": 2,
}


def coco_folder(split="train2017"):
    return os.path.join(data_dir(), "coco_captions_mini", split)


def tiny_captions_json(folder, images=5):
    """A COCO-style captions JSON over the first real COCO-mini training images, two captions each."""
    payload = {"images": [], "annotations": []}
    for i, name in enumerate(sorted(os.listdir(coco_folder()))[:images]):
        shutil.copy(os.path.join(coco_folder(), name), os.path.join(folder, name))
        payload["images"].append({"id": i, "file_name": name})
        payload["annotations"] += [{"image_id": i, "caption": f"A photo number {i}."},
                                   {"image_id": i, "caption": "Another picture."}]
    path = os.path.join(folder, "captions_train.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    return path


def jpeg_bytes(count=2):
    names = sorted(os.listdir(coco_folder("val2017")))[:count]
    return [open(os.path.join(coco_folder("val2017"), n), "rb").read() for n in names]


def test_caption_words():
    assert caption_words("A man's dog, running; ON the beach.") == ["a", "man's", "dog", "running", "on", "the", "beach"]


def test_doubly_stochastic_penalty_counts_real_words_only():
    loss = DoublyStochasticAttention(weight=2.0)
    attention = np.zeros((1, 3, 2), "float32")
    attention[0, 0] = [1.0, 0.0]  # word 1 looks at region 0
    attention[0, 1] = [0.5, 0.5]  # word 2 splits
    attention[0, 2] = [0.0, 1.0]  # padding: ignored
    targets = np.array([[7, END_ID, 0]])
    # Region totals over real steps: 1.5 and 0.5, so 2 * mean((1 - 1.5)^2, (1 - 0.5)^2) = 0.5.
    assert float(loss(targets, attention)) == pytest.approx(0.5)
    even = np.full((1, 2, 2), 0.5, "float32")
    assert float(loss(np.array([[5, 6]]), even)) == pytest.approx(0.0)
    config = loss.get_config()
    assert DoublyStochasticAttention.from_config(config).weight == 2.0


def test_encoder_regions_from_project_cnn_and_resnet():
    encoder = build_encoder("cnn", (32, 32, 3), grid_size=4, filters=(4, 8, 8))
    assert encoder.output_shape == (None, 16, 8)  # 8x8 feature map pooled to 4x4 regions
    assert build_encoder("resnet8", (32, 32, 3), grid_size=8).output_shape == (None, 64, 64)
    with pytest.raises(ConfigError, match="model.encoder must be cnn, resnetN"):
        build_encoder("vgg", (32, 32, 3))
    with pytest.raises(ConfigError, match="model.encoder_weights applies to mobilenet_v2"):
        build_encoder("cnn", (32, 32, 3), weights="imagenet")


def test_sacrebleu_uses_every_reference():
    references = [["a dog runs on grass", "the dog is running"], ["a cat sleeps"]]
    one, two, _, four = corpus_bleu(["the dog is running", "a cat sleeps"], references)
    assert one == pytest.approx(1.0) and four == pytest.approx(1.0)
    assert corpus_bleu(["a dog", "a cat"], references)[0] < 1.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A one-step tiny captioner on a 5-image COCO-style JSON of real COCO JPEGs, exported and served."""
    root = tmp_path_factory.mktemp("captioning")
    dataset = tiny_captions_json(str(root))
    images = jpeg_bytes(2)
    inputs = {"caption": {"image_bytes": images, "beam_size": [1, 3], "max_length": [6, 4]}}
    overrides = {**TINY_MODEL, "data.dataset": dataset, "data.validation_fraction": 0.2, "data.test_fraction": 0.2}
    metrics, path, outputs = run_task_test(TASK, overrides, inputs, root)
    return root, metrics, path, outputs["caption"]


def test_export_reload_same_captions_on_jpeg_bytes(exported):
    root, metrics, path, outputs = exported
    assert set(metrics["test"]) >= {"bleu_1", "bleu_4", "bleu_4_beam", "logits_perplexity", "attention_loss"}
    assert outputs["caption"].shape == (2,)
    words = [[formatting.as_text(w) for w in row] for row in outputs["words"]]
    for i in range(2):
        real = [w for w in words[i] if w]
        assert formatting.as_text(outputs["caption"][i]) == " ".join(real)
        assert 1 <= len(real) <= (6, 4)[i]  # the end token is barred at the first step
        # Each word's attention over the 4x4 regions sums to 1; steps after the caption are 0.
        sums = outputs["attention"][i].reshape(len(words[i]), 16).sum(-1)
        np.testing.assert_allclose(sums[: len(real)], 1.0, atol=1e-5)
        np.testing.assert_allclose(sums[len(real):], 0.0)
    with open(os.path.join(path, "assets.extra", "signature_defaults.json")) as f:
        assert json.load(f)["caption"] == {"beam_size": 3, "max_length": 6}


def assert_export_matches_evaluation_decoding(run_dir, path):
    """Decoding and resizing JPEGs in the graph gives the very captions the training-side pipeline gives."""
    task, _ = base.load_run(run_dir)
    task.restore(os.path.join(run_dir, "assets"))
    splits = task.load_data()
    expected = task.generate_captions(base.load_trained_model(run_dir), splits, "train")
    loaded = tf.saved_model.load(path)
    images = [open(p, "rb").read() for p in splits["train"].image_paths]
    got = loaded.signatures["caption"](
        image_bytes=tf.constant(images), beam_size=tf.constant([1] * len(images)),
        max_length=tf.constant([task.config.model.max_caption_length] * len(images)),
    )
    assert [c.decode() for c in got["caption"].numpy()] == expected
    return task


def test_exported_greedy_captions_match_evaluation_decoding(exported):
    root, _, path, _ = exported
    assert_export_matches_evaluation_decoding(os.path.join(str(root), "run"), path)


def test_predict_prints_caption_and_writes_attention_png(exported, tmp_path):
    from keras_tasks.tasks import predict

    _, _, path, _ = exported
    image = os.path.join(coco_folder("val2017"), sorted(os.listdir(coco_folder("val2017")))[0])
    outputs = predict.predict(os.path.dirname(path), [image], signature="caption", options={"beam_size": 2})
    png = str(tmp_path / "attention.png")
    (line,) = predict.format_results(TASK, [image], outputs, {"attention_png": png})
    assert line.startswith(formatting.as_text(outputs["caption"][0]))
    assert line.endswith(image) and f"[attention maps: {png}]" in line
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    missing = str(tmp_path / "no_such_photo.jpg")
    with pytest.raises(DataError, match=f"^{missing}: cannot read the file"):
        predict.predict(os.path.dirname(path), [image, missing], signature="caption")


def test_demo_page_captions_an_uploaded_image(exported, browser):
    """The served captioner in the demo page: upload a JPEG, read the caption and one attention grid per word."""
    from demo_page import By, demo_card, option_fields, wait_for_result

    _, _, path, _ = exported
    # Greedy, and the page's beam_size field set to 1 to match.
    images = [os.path.join(coco_folder("val2017"), n) for n in sorted(os.listdir(coco_folder("val2017")))[:1]]
    expected = tf.saved_model.load(path).signatures["caption"](
        image_bytes=tf.constant([open(i, "rb").read() for i in images]), beam_size=tf.constant([1] * len(images)),
        max_length=tf.constant([6] * len(images)))
    index = 0
    image, caption = images[index], expected["caption"].numpy()[index].decode()
    words = [w.decode() for w in expected["words"].numpy()[index] if w]
    with demo_card(browser, os.path.dirname(os.path.dirname(path))) as section:
        fields = option_fields(section)
        assert {name: field.get_attribute("value") for name, field in fields.items()} == {
            "beam_size": "3", "max_length": "6"}  # signature_defaults.json
        beam_size = fields["beam_size"]
        beam_size.clear()
        beam_size.send_keys("1")
        section.find_element(By.CSS_SELECTOR, "input.input-file").send_keys(image)
        section.find_element(By.CSS_SELECTOR, "button.predict").click()
        (shown,) = wait_for_result(browser, section, ".caption strong")
        assert shown.text == caption
        figures = section.find_elements(By.CSS_SELECTOR, ".result .image-attention figure")
        assert [f.get_attribute("data-word") for f in figures] == words and words
        weights = [float(td.get_attribute("data-weight")) for td in figures[0].find_elements(By.CSS_SELECTOR, "td")]
        assert len(weights) == 16 and sum(weights) == pytest.approx(1.0, abs=1e-4)


def test_cached_features_train_and_export(tmp_path):
    """Frozen encoder features computed once: the export puts the saved encoder back in front of the decoder."""
    dataset = tiny_captions_json(str(tmp_path))
    flags = {**TINY_MODEL, "data.dataset": dataset, "model.cache_features": True, "data.validation_fraction": 0.2,
             "data.test_fraction": 0.2, "train.epochs": 1, "train.steps_per_epoch": 2, "train.verbose": "0"}
    run_dir = os.path.join(str(tmp_path), "run")
    base.train(TASK, base.resolve_config(TASK, flags), run_dir, log=lambda *_: None)
    path = base.export(run_dir, "cached", base_dir=str(tmp_path / "saved_models"))
    model = base.load_trained_model(run_dir)
    assert "features" in model.input and "encoder" not in [layer.name for layer in model.layers]
    encoder = keras.saving.load_model(os.path.join(run_dir, "assets", "encoder.keras"))
    assert encoder.output_shape == (None, 16, 8)
    assert_export_matches_evaluation_decoding(run_dir, path)


@pytest.mark.large
def test_coco_mini_learns(tmp_path):
    """20 COCO-mini training images (100 captions), cached features: the loss falls well below its start and the
    BLEU-4 of those images' captions beats the most frequent training caption given to every image."""
    images = 20
    flags = {"data.max_examples": images, "model.cache_features": True, "model.dropout": 0.1,
             "model.decoder_dim": 256, "model.embedding_dim": 128, "model.attention_dim": 128,
             "train.learning_rate": 0.006, "train.epochs": 16, "train.monitor": "loss", "train.verbose": "0"}
    run_dir = str(tmp_path / "run")
    base.train(TASK, base.resolve_config(TASK, flags), run_dir, log=lambda *_: None)
    with open(os.path.join(run_dir, "history.csv")) as f:
        losses = [float(row["logits_loss"]) for row in csv.DictReader(f)]
    assert losses[-1] < 0.5 * losses[0], losses
    task, _ = base.load_run(run_dir)
    task.restore(os.path.join(run_dir, "assets"))
    splits = task.load_data()
    captions = task.generate_captions(base.load_trained_model(run_dir), splits, "train")[:images]
    references = [[" ".join(caption_words(c)) for c in refs] for refs in splits["train"].captions[:images]]
    frequent = collections.Counter(r for refs in references for r in refs).most_common(1)[0][0]
    baseline = corpus_bleu([frequent] * images, references)[3]
    bleu = corpus_bleu(captions, references)[3]
    assert bleu > baseline + 0.05, (bleu, baseline)
