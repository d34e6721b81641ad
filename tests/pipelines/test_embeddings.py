import gzip
import json

import numpy as np
import pytest
from gensim.models import FastText
from gensim.models import KeyedVectors
from gensim.models import Word2Vec
from gensim.models.fasttext import save_facebook_model

from keras_tasks.pipelines.embeddings import align_vectors
from keras_tasks.pipelines.embeddings import detect_format
from keras_tasks.pipelines.embeddings import init_scale
from keras_tasks.pipelines.embeddings import load_vectors
from keras_tasks.pipelines.errors import DataError

WORDS = ["the", "Paris", "movie", "good"]
VALUES = np.arange(len(WORDS) * 3, dtype=np.float32).reshape(len(WORDS), 3) / 4 - 1


def keyed_vectors(words=WORDS, values=VALUES):
    vectors = KeyedVectors(values.shape[1])
    vectors.add_vectors(list(words), values)
    return vectors


def write_text(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def glove_lines(words=WORDS, values=VALUES):
    return [" ".join([word] + [repr(float(v)) for v in row]) for word, row in zip(words, values)]


def assert_vectors(vectors, format, words=WORDS, values=VALUES):
    assert vectors.source_format == format
    assert vectors.index_to_key == list(words)
    assert vectors.vectors.dtype == np.float32
    np.testing.assert_allclose(vectors.vectors, values, rtol=1e-6)


def corpus(size=60):
    rng = np.random.default_rng(0)
    vocabulary = ["cat", "dog", "mouse", "house", "garden", "runs", "sleeps", "eats", "the", "a"]
    return [list(rng.choice(vocabulary, size=8)) for _ in range(size)]


# === Readers ===


def test_glove_text(tmp_path):
    path = write_text(tmp_path / "glove.txt", glove_lines())
    assert detect_format(path) == "glove"
    assert_vectors(load_vectors(path), "glove")


def test_word2vec_text_and_fasttext_vec(tmp_path):
    lines = [f"{len(WORDS)} 3"] + glove_lines()
    assert_vectors(load_vectors(write_text(tmp_path / "vectors.txt", lines)), "word2vec-text")
    assert_vectors(load_vectors(write_text(tmp_path / "wiki.vec", lines)), "fasttext-vec")


def test_word2vec_binary(tmp_path):
    for name in ("vectors.bin", "vectors"):  # detected by sniffing too, without the extension
        path = tmp_path / name
        keyed_vectors().save_word2vec_format(str(path), binary=True)
        assert detect_format(path) == "word2vec-binary"
        assert_vectors(load_vectors(path), "word2vec-binary")


def test_word2vec_binary_without_newlines(tmp_path):
    # Some writers omit the newline after each vector.
    records = [("a", [1, 2]), ("b", [3, 4])]
    data = b"2 2\n" + b"".join(word.encode() + b" " + np.array(values, "<f4").tobytes() for word, values in records)
    (tmp_path / "v.bin").write_bytes(data)
    assert_vectors(load_vectors(tmp_path / "v.bin"), "word2vec-binary", ["a", "b"], np.array([[1, 2], [3, 4]]))


def test_compressed_text(tmp_path):
    path = tmp_path / "glove.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(glove_lines()) + "\n")
    assert_vectors(load_vectors(path), "glove")


def test_damaged_archive(tmp_path):
    path = tmp_path / "glove.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(glove_lines() * 500) + "\n")
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match="glove.txt.gz: cannot read the file"):
        load_vectors(path)


def test_explicit_format_and_alias(tmp_path):
    path = write_text(tmp_path / "vectors.data", [f"{len(WORDS)} 3"] + glove_lines())
    assert_vectors(load_vectors(path, format="vec"), "fasttext-vec")
    with pytest.raises(DataError, match="unknown vector format 'nope'"):
        load_vectors(path, format="nope")


def test_gensim_keyed_vectors_and_full_model(tmp_path):
    keyed_vectors().save(str(tmp_path / "vectors.kv"))
    assert_vectors(load_vectors(tmp_path / "vectors.kv"), "gensim")
    model = Word2Vec(corpus(), vector_size=4, min_count=1, workers=1, seed=1)
    model.save(str(tmp_path / "w2v.model"))
    vectors = load_vectors(tmp_path / "w2v.model")
    np.testing.assert_allclose(vectors["cat"], model.wv["cat"])


def test_glove_word_with_spaces(tmp_path):
    path = write_text(tmp_path / "g.txt", ["a 1 2", ". . . 3 4"])
    assert load_vectors(path).index_to_key == ["a", ". . ."]


def test_repeated_words_keep_the_first(tmp_path):
    vectors = load_vectors(write_text(tmp_path / "g.txt", ["a 1 2", "b 3 4", "a 5 6"]))
    assert vectors.index_to_key == ["a", "b"]
    np.testing.assert_allclose(vectors["a"], [1, 2])


def test_fasttext_bin_keeps_subwords(tmp_path):
    model = FastText(corpus(), vector_size=8, min_count=1, min_n=2, max_n=4, bucket=500, epochs=2, workers=1,
                     seed=1)
    save_facebook_model(model, str(tmp_path / "model.bin"))
    vectors = load_vectors(tmp_path / "model.bin")
    assert vectors.source_format == "fasttext-bin"
    np.testing.assert_allclose(vectors["cat"], model.wv["cat"], rtol=1e-5)
    unseen = vectors.get_vector("cats")  # built from n-grams
    assert unseen.shape == (8,) and np.abs(unseen).sum() > 0
    matrix, report = align_vectors(["", "[UNK]", "cat", "cats", "Dog"], vectors, seed=0)
    assert (report.exact, report.normalized, report.subword, report.random) == (1, 1, 1, 0)
    np.testing.assert_allclose(matrix[3], unseen, rtol=1e-5)
    assert "subword vectors:     1 words" in report.to_text()


# === Bad files ===


@pytest.mark.parametrize("name", ["empty.txt", "empty.vec", "empty.bin", "empty"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError, match=f"{name}: the vector file is empty"):
        load_vectors(tmp_path / name)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such vector file"):
        load_vectors(tmp_path / "nope.txt")


def test_inconsistent_dims_name_the_line(tmp_path):
    path = write_text(tmp_path / "glove.txt", ["a 1 2 3", "b 1 2 3", "c 1 2"])
    with pytest.raises(DataError, match=r"glove.txt:3: expected a word and 3 values \(as line 1 says\), found 2"):
        load_vectors(path)


def test_header_count_mismatch(tmp_path):
    too_many = write_text(tmp_path / "more.txt", ["5 3"] + glove_lines())
    with pytest.raises(DataError, match=r"more.txt:1: the header says 5 vectors but the file holds 4 .*'4 3'"):
        load_vectors(too_many)
    too_few = write_text(tmp_path / "fewer.vec", ["3 3"] + glove_lines())
    with pytest.raises(DataError, match="the header says 3 vectors but the file holds 4"):
        load_vectors(too_few)


def test_header_dim_mismatch(tmp_path):
    path = write_text(tmp_path / "dim.txt", ["4 5"] + glove_lines())
    with pytest.raises(DataError, match=r"dim.txt:2: expected a word and 5 values \(as the header says\), found 3"):
        load_vectors(path, format="word2vec-text")


def test_missing_header(tmp_path):
    path = write_text(tmp_path / "glove.txt", glove_lines())
    with pytest.raises(DataError, match=r"glove.txt:1: expected a header 'COUNT DIM'.*format='glove'"):
        load_vectors(path, format="word2vec-text")


def test_value_not_a_number(tmp_path):
    path = write_text(tmp_path / "g.txt", ["a 1 2", "b 1 x2"])
    with pytest.raises(DataError, match=r"g.txt:2: value 'x2' of word 'b' is not a number"):
        load_vectors(path)


def test_not_finite(tmp_path):
    with pytest.raises(DataError, match=r"g.txt:1: the vector of 'a' holds NaN"):
        load_vectors(write_text(tmp_path / "g.txt", ["a nan 2"]))


def test_binary_truncated(tmp_path):
    path = tmp_path / "v.bin"
    keyed_vectors().save_word2vec_format(str(path), binary=True)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(DataError, match=r"v.bin:1: vector 4 of 4 .* is not 'word' \+ 3 float32 values"):
        load_vectors(path)
    path.write_bytes(data[: data.index(b"good")])
    with pytest.raises(DataError, match=r"the file ends at vector 4 of 4.*fix the header to '3 3'"):
        load_vectors(path)


def test_binary_wrong_header(tmp_path):
    path = tmp_path / "v.bin"
    keyed_vectors().save_word2vec_format(str(path), binary=True)
    data = path.read_bytes()
    path.write_bytes(b"3 3" + data[3:])
    with pytest.raises(DataError, match="more data after the 3 vectors its header announces"):
        load_vectors(path)
    path.write_bytes(b"4 2" + data[3:])
    with pytest.raises(DataError, match="header's COUNT or DIM is wrong"):
        load_vectors(path)


def test_bin_without_header(tmp_path):
    path = tmp_path / "v.bin"
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(DataError, match=r"v.bin:1: neither a fastText model nor a word2vec binary file"):
        load_vectors(path)


def test_corrupt_fasttext_bin(tmp_path):
    model = FastText(corpus(10), vector_size=4, min_count=1, bucket=100, epochs=1, workers=1)
    save_facebook_model(model, str(tmp_path / "model.bin"))
    data = (tmp_path / "model.bin").read_bytes()
    (tmp_path / "model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="model.bin: cannot read the fastText model"):
        load_vectors(tmp_path / "model.bin")


def test_corrupt_gensim_file(tmp_path):
    keyed_vectors().save(str(tmp_path / "v.kv"))
    data = (tmp_path / "v.kv").read_bytes()
    (tmp_path / "v.kv").write_bytes(data[:20])
    with pytest.raises(DataError, match="v.kv: cannot read the gensim file"):
        load_vectors(tmp_path / "v.kv")


# === Alignment ===


def test_alignment_rows():
    vocabulary = ["", "[UNK]", "the", "paris", "MOVIE", "unseen"]
    matrix, report = align_vectors(vocabulary, keyed_vectors(), seed=0)
    assert matrix.shape == (6, 3) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[0], 0)
    np.testing.assert_array_equal(matrix[2], VALUES[0])
    np.testing.assert_array_equal(matrix[3], VALUES[1])  # "Paris" in cased vectors
    np.testing.assert_array_equal(matrix[4], VALUES[2])  # "movie" after lowercasing
    scale = init_scale(keyed_vectors())
    assert np.all(np.abs(matrix[[1, 5]]) <= scale)
    assert (report.vocabulary_size, report.exact, report.normalized, report.random) == (4, 1, 2, 1)
    assert report.vocabulary_coverage == 0.75
    assert report.top_missing == [("unseen", None)]


def test_alignment_without_normalisation():
    _, report = align_vectors(["", "[UNK]", "paris", "the"], keyed_vectors(), normalize=None)
    assert (report.exact, report.random) == (1, 1)


def test_oov_init_matches_pretrained_variance():
    rng = np.random.default_rng(1)
    pretrained = keyed_vectors([f"w{i}" for i in range(500)], rng.normal(0.0, 0.4, size=(500, 50)).astype("f4"))
    vocabulary = ["", "[UNK]"] + [f"missing{i}" for i in range(2000)]
    matrix, report = align_vectors(vocabulary, pretrained, seed=3)
    random_rows = matrix[1:]
    assert report.init_scale == pytest.approx(np.sqrt(3 * pretrained.vectors.var()))
    assert np.abs(random_rows).max() <= report.init_scale
    assert random_rows.var() == pytest.approx(pretrained.vectors.var(), rel=0.03)
    assert abs(random_rows.mean()) < 0.01
    again, _ = align_vectors(vocabulary, pretrained, seed=3)
    np.testing.assert_array_equal(matrix, again)
    other, _ = align_vectors(vocabulary, pretrained, seed=4)
    assert not np.allclose(matrix, other)


def test_rescale_to_kim_scale():
    rng = np.random.default_rng(2)
    pretrained = keyed_vectors([f"w{i}" for i in range(300)], rng.normal(0.0, 0.7, size=(300, 8)).astype("f4"))
    vocabulary = ["", "[UNK]", "w0", "w1"] + [f"missing{i}" for i in range(500)]
    plain, _ = align_vectors(vocabulary, pretrained, seed=0)
    scaled, report = align_vectors(vocabulary, pretrained, seed=0, rescale_to=0.25)
    factor = 0.25 / init_scale(pretrained)
    assert report.init_scale == pytest.approx(0.25) and report.scaled_by == pytest.approx(factor)
    np.testing.assert_allclose(scaled, plain * factor, rtol=1e-6)
    assert np.abs(scaled[4:]).max() <= 0.25
    assert "all vectors multiplied by" in report.to_text()


def test_dimension_mismatch(tmp_path):
    vectors = load_vectors(write_text(tmp_path / "g.txt", glove_lines()))
    with pytest.raises(DataError, match=r"g.txt: the vectors have 3 dimensions but the model expects 300"):
        align_vectors(["", "[UNK]", "the"], vectors, expected_dim=300)


def test_token_coverage_report(tmp_path):
    vectors = load_vectors(write_text(tmp_path / "glove.txt", glove_lines()))
    vocabulary = ["", "[UNK]", "the", "movie", "rare", "often"]
    counts = {"the": 50, "movie": 20, "rare": 2, "often": 8, "outside": 20}
    _, report = align_vectors(vocabulary, vectors, token_counts=counts, seed=0)
    assert report.tokens_total == 100 and report.tokens_covered == 70
    assert report.token_coverage == pytest.approx(0.7)
    assert report.top_missing == [("often", 8), ("rare", 2)]
    text = report.to_text()
    assert "glove.txt (glove, 3 dims)" in text
    assert "vocabulary coverage: 2 / 4 words (50.0%)" in text
    assert "token coverage:      70.0% of 100 tokens" in text
    assert "top missing words:   often (8), rare (2)" in text
    path = report.write(tmp_path / "run")
    written = json.loads(path.read_text())
    assert written["vocabulary_coverage"] == 0.5 and written["top_missing"] == [["often", 8], ["rare", 2]]
    assert (tmp_path / "run" / "embedding_coverage.txt").read_text() == text + "\n"
