"""`keras-tasks embeddings train|neighbors|analogy`: train word2vec vectors and inspect vectors."""

import argparse
import os
import sys

from keras_tasks.pipelines import embeddings
from keras_tasks.pipelines import word2vec
from keras_tasks.pipelines.errors import DataError
from keras_tasks.scripts.cli import add_subcommand


def add_arguments(subparsers):
    """Adds the `embeddings` command (with its own subcommands) to an argparse `subparsers`."""
    parser = add_subcommand(subparsers, "embeddings", "train word2vec vectors, inspect pretrained vectors")
    parser.set_defaults(func=lambda args: _usage(parser))
    commands = parser.add_subparsers(dest="embeddings_command", metavar="{train,neighbors,analogy}")

    train = add_subcommand(commands, "train", "train word2vec (gensim, all cores) and save it in word2vec format")
    train.add_argument("--corpus", required=True,
                       help="a text file (one text a line) or a dataset name such as 'imdb'")
    train.add_argument("--split", default="train", help="dataset split used as corpus (default: train)")
    train.add_argument("--data-dir", default=None, help="dataset root (default: $KERAS_TASKS_DATA)")
    train.add_argument("--algorithm", choices=word2vec.ALGORITHMS, default="cbow")
    train.add_argument("--dim", type=int, default=300, help="vector size (default: 300)")
    train.add_argument("--window", type=int, default=5)
    train.add_argument("--min-count", type=int, default=5, help="drop rarer words (default: 5)")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="threads (default: all cores)")
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--output", required=True, help="where to save the vectors")
    layout = train.add_mutually_exclusive_group()
    layout.add_argument("--binary", dest="binary", action="store_true", default=None,
                        help="word2vec binary format (default unless the output ends in .txt or .vec)")
    layout.add_argument("--text", dest="binary", action="store_false", help="word2vec text format")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    train.set_defaults(func=run_train)

    neighbors = add_subcommand(commands, "neighbors", "nearest words by cosine similarity")
    neighbors.add_argument("word")
    _add_vector_arguments(neighbors)
    neighbors.set_defaults(func=run_neighbors)

    analogy = add_subcommand(commands, "analogy", "A - B + C, e.g. king man woman -> queen")
    analogy.add_argument("words", nargs=3, metavar="WORD", help="A B C")
    _add_vector_arguments(analogy)
    analogy.set_defaults(func=run_analogy)
    return parser


def _add_vector_arguments(parser):
    # --embeddings, as `keras-tasks train` calls the same file; --vectors kept as an alias.
    parser.add_argument("--embeddings", "--vectors", dest="vectors", required=True,
                        help="a vector file (word2vec, GloVe, fastText or gensim)")
    parser.add_argument("--format", default=None, choices=embeddings.FORMATS, help="default: detected")
    parser.add_argument("-k", type=int, default=10, help="how many words to show (default: 10)")
    parser.add_argument("--restrict-vocab", type=int, default=None,
                        help="search only this many most frequent words")


def _usage(parser):
    parser.print_help(sys.stderr)
    return 2


def _fail(error):
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_train(args):
    corpus = args.corpus
    try:
        if not os.path.isfile(corpus):
            corpus = word2vec.dataset_texts(corpus, args.data_dir, args.split)
        word2vec.train_word2vec(
            corpus,
            algorithm=args.algorithm,
            dim=args.dim,
            window=args.window,
            min_count=args.min_count,
            epochs=args.epochs,
            workers=args.workers,
            progress=not args.quiet,
            seed=args.seed,
            output=args.output,
            binary=args.binary,
        )
    except DataError as error:
        return _fail(error)
    return 0


def _show(results):
    for word, similarity in results:
        print(f"{similarity:.4f}  {word}")


def run_neighbors(args):
    try:
        vectors = embeddings.load_vectors(args.vectors, args.format)
        _show(word2vec.neighbors(vectors, args.word, args.k, restrict_vocab=args.restrict_vocab))
    except (DataError, KeyError) as error:
        return _fail(error)
    return 0


def run_analogy(args):
    try:
        vectors = embeddings.load_vectors(args.vectors, args.format)
        _show(word2vec.analogy(vectors, *args.words, k=args.k, restrict_vocab=args.restrict_vocab))
    except (DataError, KeyError) as error:
        return _fail(error)
    return 0


def main(argv=None):
    """Runs `embeddings ...` on its own (the `keras-tasks` console script mounts the same parser)."""
    parser = argparse.ArgumentParser(prog="keras-tasks")
    add_arguments(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
