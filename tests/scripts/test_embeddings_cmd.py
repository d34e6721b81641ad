import argparse

import numpy as np
from gensim.models import KeyedVectors

from keras_tasks.scripts import embeddings_cmd


def run(argv):
    parser = argparse.ArgumentParser()
    embeddings_cmd.add_arguments(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def write_vectors(path):
    vectors = KeyedVectors(3)
    vectors.add_vectors(["man", "woman", "king", "queen", "apple"],
                        np.array([[1, 0, 0.1], [0, 1, 0.1], [1, 0, 1], [0, 1, 1], [0.5, 0.5, -1]], "f4"))
    vectors.save_word2vec_format(str(path), binary=False)
    return str(path)


def test_train_then_inspect(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 20, encoding="utf-8")
    output = tmp_path / "vectors.bin"
    assert run(["embeddings", "train", "--corpus", str(corpus), "--algorithm", "skipgram", "--dim", "8",
                "--min-count", "1", "--epochs", "2", "--workers", "1", "--output", str(output)]) == 0
    assert "epoch 2/2" in capsys.readouterr().err
    assert output.read_bytes().startswith(b"7 8\n")
    assert run(["embeddings", "neighbors", "cat", "--vectors", str(output), "-k", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_analogy_and_errors(tmp_path, capsys):
    path = write_vectors(tmp_path / "v.txt")
    assert run(["embeddings", "analogy", "king", "man", "woman", "--embeddings", path, "-k", "1"]) == 0
    assert capsys.readouterr().out.split()[-1] == "queen"
    assert run(["embeddings", "neighbors", "prince", "--vectors", path]) == 2
    assert "error: 'prince' has no vector" in capsys.readouterr().err
    assert run(["embeddings", "neighbors", "king", "--vectors", str(tmp_path / "nope.txt")]) == 2
    assert "nope.txt: no such vector file" in capsys.readouterr().err
    assert run(["embeddings", "train", "--corpus", "nosuchdataset", "--data-dir", str(tmp_path),
                "--output", str(tmp_path / "o.bin")]) == 2
    assert run(["embeddings"]) == 2
