import numpy as np
import pytest
from gensim.models import KeyedVectors

from keras_tasks.pipelines.embeddings import load_vectors
from keras_tasks.pipelines.errors import DataError
from keras_tasks.pipelines.word2vec import analogy
from keras_tasks.pipelines.word2vec import neighbors
from keras_tasks.pipelines.word2vec import train_word2vec


def toy_corpus(size=600):
    """Two topics that never share a sentence, so words cluster by topic."""
    rng = np.random.default_rng(0)
    topics = [["cat", "dog", "mouse", "pet", "fur"], ["car", "road", "wheel", "drive", "engine"]]
    return [" ".join(rng.choice(topics[i % 2], size=10)) + "." for i in range(size)]


@pytest.mark.parametrize("algorithm", ["cbow", "skipgram"])
def test_train_save_and_neighbors(tmp_path, algorithm):
    messages = []
    vectors = train_word2vec(toy_corpus(), algorithm=algorithm, dim=16, window=3, min_count=2, epochs=10,
                             workers=1, progress=messages.append, output=tmp_path / "w2v.bin")
    assert sorted(vectors.index_to_key) == sorted(["cat", "dog", "mouse", "pet", "fur", "car", "road", "wheel",
                                                   "drive", "engine"])
    assert sum(message.startswith("epoch ") for message in messages) == 10
    assert "epoch 10/10" in messages[-2]
    loaded = load_vectors(tmp_path / "w2v.bin")
    assert loaded.source_format == "word2vec-binary"
    np.testing.assert_allclose(loaded.vectors, vectors.vectors)
    nearest = [word for word, _ in neighbors(loaded, "cat", k=4)]
    assert set(nearest) == {"dog", "mouse", "pet", "fur"}
    assert [word for word, _ in neighbors(loaded, "CAR", k=2)][0] in {"road", "wheel", "drive", "engine"}


def test_train_from_file_in_text_format(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(toy_corpus(50) + ["It DOESN'T matter, Cat!"]) + "\n", encoding="utf-8")
    train_word2vec(corpus, dim=8, min_count=1, epochs=1, workers=2, progress=False, output=tmp_path / "w.txt")
    loaded = load_vectors(tmp_path / "w.txt")
    assert loaded.source_format == "word2vec-text" and loaded.vector_size == 8
    # The text tasks' tokenizer: lowercased, clitics and punctuation split off.
    assert set(loaded.index_to_key) - set(toy_corpus(50)[0].split() + toy_corpus(50)[1].split()) >= {
        "it", "does", "n't", "matter", ","}


def test_train_errors(tmp_path):
    with pytest.raises(ValueError, match="algorithm must be one of"):
        train_word2vec(toy_corpus(), algorithm="glove")
    with pytest.raises(DataError, match="the corpus holds no words"):
        train_word2vec(["", "...", "  "], progress=False)
    with pytest.raises(DataError, match="no word occurs 5 times or more"):
        train_word2vec(["one two three"], progress=False)
    with pytest.raises(DataError, match="no such corpus file"):
        train_word2vec(tmp_path / "missing.txt", progress=False)


def test_analogy():
    vectors = KeyedVectors(3)
    vectors.add_vectors(["man", "woman", "king", "queen", "apple"],
                        np.array([[1, 0, 0.1], [0, 1, 0.1], [1, 0, 1], [0, 1, 1], [0.5, 0.5, -1]], "f4"))
    assert analogy(vectors, "king", "man", "woman", k=1)[0][0] == "queen"
    assert analogy(vectors, "King", "Man", "Woman", k=1)[0][0] == "queen"
    with pytest.raises(KeyError, match="'prince' has no vector"):
        analogy(vectors, "prince", "man", "woman")
