import os

import numpy as np
import pytest
import tensorflow as tf

from keras_tasks.pipelines import text as text_lib
from keras_tasks.pipelines import tokenizers

TEXTS = ["It's a GRIPPING, funny film!<br />Didn't (like) it?", "The <unk> sat on the mat <eos>", "Café naïve 東京", ""]


def as_lists(ragged):
    return [[t.decode("utf-8") for t in row] for row in ragged.to_list()]


def graph_tokenize(tokenizer, texts):
    """Tokens computed inside a traced function (as in tf.data and a SavedModel signature)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(texts):
        return tokenizer.tokenize(texts)

    return tokenize(tf.constant(texts))


def graph_round_trip(tokenizer, texts):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(texts):
        return tokenizer.detokenize(tokenizer.tokenize(texts))

    return [t.decode("utf-8") for t in round_trip(tf.constant(texts)).numpy()]


@pytest.fixture(scope="module")
def sentencepiece_model(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = ["the", "cat", "dog", "sat", "ran", "on", "mat", "mouse", "house", "garden", "café", "quickly", "slowly"]
    sentences = [" ".join(rng.choice(words, size=rng.integers(3, 9))) for _ in range(200)]
    path = str(tmp_path_factory.mktemp("spm") / "tiny")
    model_file = tokenizers.train_sentencepiece(iter(sentences), 32, "unigram", path)
    return model_file, sentences


def test_registry_builds_by_name_and_config():
    assert tokenizers.tokenizer_names() == ["characters", "kim", "sentencepiece", "whitespace"]
    tokenizer = tokenizers.get_tokenizer("whitespace", lowercase=True)
    assert isinstance(tokenizer, tokenizers.WhitespaceTokenizer)
    assert tokenizer.get_config() == {"name": "whitespace", "lowercase": True}
    copy = tokenizers.get_tokenizer(tokenizer.get_config())
    assert isinstance(copy, tokenizers.WhitespaceTokenizer) and copy.lowercase
    assert tokenizers.get_tokenizer(tokenizer) is tokenizer
    with pytest.raises(ValueError, match="unknown tokenizer 'bert'.*characters, kim"):
        tokenizers.get_tokenizer("bert")


def test_kim_equals_the_text_classifiers_tokens():
    tokenizer = tokenizers.get_tokenizer("kim")
    expected = as_lists(text_lib.tokenize(TEXTS))
    assert as_lists(tokenizer.tokenize(TEXTS)) == expected
    assert as_lists(graph_tokenize(tokenizer, TEXTS)) == expected
    assert expected[0][:4] == ["it", "'s", "a", "gripping"] and expected[3] == []
    cased = tokenizers.KimTokenizer(lowercase=False)
    assert as_lists(cased.tokenize(TEXTS)) == as_lists(text_lib.tokenize(TEXTS, lowercase=False))


def test_whitespace_keeps_case_and_special_tokens():
    tokenizer = tokenizers.get_tokenizer("whitespace")
    tokens = as_lists(graph_tokenize(tokenizer, TEXTS))
    assert tokens[1] == ["The", "<unk>", "sat", "on", "the", "mat", "<eos>"]
    assert tokens[2] == ["Café", "naïve", "東京"] and tokens[3] == []
    assert as_lists(tokenizer.tokenize(["  two\tspaces\n"])) == [["two", "spaces"]]
    assert graph_round_trip(tokenizer, TEXTS) == TEXTS


def test_characters_keep_every_character_and_round_trip():
    tokenizer = tokenizers.get_tokenizer("characters")
    texts = ["Hi ∑\nyo", "東京", ""]
    tokens = as_lists(graph_tokenize(tokenizer, texts))
    assert tokens == [["H", "i", " ", "∑", "\n", "y", "o"], ["東", "京"], []]
    assert as_lists(tokenizer.tokenize(texts)) == tokens
    assert graph_round_trip(tokenizer, texts + TEXTS) == texts + TEXTS


def test_tokenizers_run_inside_tf_data():
    dataset = tf.data.Dataset.from_tensor_slices(["a b", "c"]).map(tokenizers.get_tokenizer("whitespace").tokenize)
    assert [t.numpy().tolist() for t in dataset] == [[b"a", b"b"], [b"c"]]  # a scalar text gives 1-D tokens


def test_sentencepiece_trains_tokenizes_and_round_trips(sentencepiece_model):
    model_file, sentences = sentencepiece_model
    assert model_file.endswith("tiny.model") and not os.path.exists(model_file + ".tmp")
    tokenizer = tokenizers.get_tokenizer("sentencepiece", model_file=model_file)
    assert tokenizer.vocabulary_size == 32
    texts = sentences[:5] + ["the cat sat", ""]
    tokens = as_lists(graph_tokenize(tokenizer, texts))
    assert tokens == as_lists(tokenizer.tokenize(texts))
    assert tokens[-1] == [] and all(len(row) >= 1 for row in tokens[:-1])
    assert tokens[-2][0].startswith("\u2581")  # pieces, with SentencePiece's word-start mark
    assert graph_round_trip(tokenizer, texts) == texts
    with open(model_file, "rb") as f:
        from_bytes = tokenizers.SentencePieceTokenizer(proto=f.read())
    assert as_lists(from_bytes.tokenize(texts)) == tokens
    assert tokenizer.get_config() == {"name": "sentencepiece", "lowercase": False, "model_file": model_file}


def test_sentencepiece_runs_in_a_saved_model_without_its_file(sentencepiece_model, tmp_path):
    model_file, _ = sentencepiece_model
    module = tf.Module()
    module.tokenizer = tokenizers.SentencePieceTokenizer(model_file=model_file)
    module.round_trip = tf.function(
        lambda texts: module.tokenizer.detokenize(module.tokenizer.tokenize(texts)),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path / "export"))
    os.rename(model_file, model_file + ".moved")  # the export must not read the original file
    try:
        loaded = tf.saved_model.load(str(tmp_path / "export"))
        out = loaded.round_trip(tf.constant(["the dog ran", ""]))
    finally:
        os.rename(model_file + ".moved", model_file)
    assert [t.decode() for t in out.numpy()] == ["the dog ran", ""]
    assert os.path.exists(tmp_path / "export" / "assets" / "tiny.model")


def test_sentencepiece_needs_exactly_one_model():
    with pytest.raises(ValueError, match="exactly one"):
        tokenizers.SentencePieceTokenizer()
