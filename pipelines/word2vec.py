"""Training word2vec vectors with gensim, and inspecting vectors (nearest neighbours, analogies)."""

import os
import pathlib
import sys
import tempfile
import time

from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

from keras_tasks.pipelines.errors import DataError

ALGORITHMS = ("cbow", "skipgram")
_BATCH = 2048


def task_tokenize(texts):
    """Tokens of each text by the text tasks' own in-graph tokenizer, so trained words match task vocabularies."""
    from keras_tasks.pipelines import text

    return [[token.decode("utf-8") for token in row] for row in text.tokenize(list(texts)).to_list()]


def train_word2vec(
    corpus,
    algorithm="cbow",
    dim=300,
    window=5,
    min_count=5,
    epochs=5,
    workers=None,
    progress=True,
    seed=1,
    output=None,
    binary=None,
    tokenizer=task_tokenize,
):
    """Trains word2vec on `corpus` with gensim and optionally saves the vectors in word2vec format.

    The corpus is tokenised once into a temporary one-sentence-a-line file that gensim then reads in its
    multi-core `corpus_file` mode (worker threads free of Python's GIL).

    Args:
        corpus: a text file (one text a line), an iterable of texts, or an iterable of token lists (used as they
            are).
        algorithm: "cbow" or "skipgram".
        dim: size of the vectors.
        window: maximum distance between a word and its context words.
        min_count: words seen fewer times are dropped.
        epochs: passes over the corpus.
        workers: training threads; None for all CPU cores.
        progress: True to print one line per epoch to stderr, a callable to receive those lines, or False.
        seed: seed of the initialisation (runs are reproducible only with `workers=1`).
        output: path to save the vectors to, or None.
        binary: save in word2vec binary (True) or text (False) format; None picks text for `.txt`/`.vec`
            outputs and binary otherwise.
        tokenizer: callable mapping a list of texts to their lists of tokens; by default the text tasks'
            tokenizer (Kim's clean-up, lowercased), applied in batches.

    Returns:
        The trained gensim `KeyedVectors`.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    log = _progress_printer(progress)
    with tempfile.TemporaryDirectory() as directory:
        corpus_file = os.path.join(directory, "corpus.txt")
        lines, tokens = _write_tokenized(corpus, corpus_file, tokenizer)
        if tokens == 0:
            raise DataError(_corpus_name(corpus), "the corpus holds no words", hint="check the corpus file or dataset")
        log(f"word2vec {algorithm}: {lines:,} texts, {tokens:,} tokens, dim {dim}, window {window}, "
            f"min_count {min_count}, {epochs} epochs")
        model = Word2Vec(
            vector_size=dim,
            window=window,
            min_count=min_count,
            sg=int(algorithm == "skipgram"),
            epochs=epochs,
            workers=workers or os.cpu_count() or 1,
            seed=seed,
        )
        model.build_vocab(corpus_file=corpus_file)
        if not len(model.wv):
            raise DataError(_corpus_name(corpus), f"no word occurs {min_count} times or more",
                            hint="lower min_count or use a larger corpus")
        log(f"vocabulary: {len(model.wv):,} words")
        model.train(
            corpus_file=corpus_file,
            total_words=model.corpus_total_words,
            epochs=epochs,
            callbacks=[_EpochLogger(epochs, log)],
        )
    vectors = model.wv
    if output is not None:
        save_vectors(vectors, output, binary=binary)
        log(f"saved {output}")
    return vectors


def save_vectors(vectors, output, binary=None):
    """Saves vectors in word2vec format: binary, or text for `.txt`/`.vec` outputs when `binary` is None."""
    output = pathlib.Path(output)
    if binary is None:
        binary = output.suffix.lower() not in (".txt", ".vec")
    output.parent.mkdir(parents=True, exist_ok=True)
    vectors.save_word2vec_format(str(output), binary=binary)


def _progress_printer(progress):
    if callable(progress):
        return progress
    if progress:
        return lambda message: print(message, file=sys.stderr, flush=True)
    return lambda message: None


def _corpus_name(corpus):
    return str(corpus) if isinstance(corpus, (str, os.PathLike)) else "corpus"


def _write_tokenized(corpus, path, tokenizer):
    counts = [0, 0]  # lines, tokens

    def write(rows):
        for words in rows:
            if words:
                out.write(" ".join(words) + "\n")
                counts[0] += 1
                counts[1] += len(words)

    with open(path, "w", encoding="utf-8") as out:
        texts = []
        for item in _iterate_texts(corpus):
            if not isinstance(item, str):
                write([[str(word) for word in item]])
                continue
            texts.append(item)
            if len(texts) == _BATCH:
                write(tokenizer(texts))
                texts = []
        if texts:
            write(tokenizer(texts))
    return tuple(counts)


def _iterate_texts(corpus):
    if isinstance(corpus, (str, os.PathLike)):
        path = pathlib.Path(corpus)
        if not path.is_file():
            raise DataError(path, "no such corpus file", hint="give a text file (one text a line) or a dataset name")
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from f
    else:
        yield from corpus


class _EpochLogger(CallbackAny2Vec):
    def __init__(self, epochs, log):
        self.epochs = epochs
        self.log = log
        self.epoch = 0
        self.start = None

    def on_epoch_begin(self, model):
        self.start = time.perf_counter()

    def on_epoch_end(self, model):
        self.epoch += 1
        seconds = time.perf_counter() - self.start
        rate = model.corpus_total_words / seconds if seconds > 0 else float("inf")
        self.log(f"epoch {self.epoch}/{self.epochs}: {seconds:.1f} s ({rate:,.0f} words/s)")


# === Inspecting vectors ===


def _key(vectors, word):
    if word in vectors.key_to_index:
        return word
    if word.lower() in vectors.key_to_index:
        return word.lower()
    if getattr(vectors, "bucket", 0) > 0:
        return word  # fastText: built from subwords
    raise KeyError(f"{word!r} has no vector (not among the {len(vectors):,} words of these vectors)")


def neighbors(vectors, word, k=10, restrict_vocab=None):
    """The `k` words closest to `word` by cosine similarity, as `[(word, similarity), ...]`.

    Args:
        vectors: gensim `KeyedVectors`.
        word: the query (looked up as it is, then lowercased; fastText `.bin` vectors also answer for unseen
            words).
        k: how many neighbours.
        restrict_vocab: search only the first (most frequent) this many words; None for all.

    Raises:
        KeyError: the word has no vector.
    """
    return vectors.most_similar(_key(vectors, word), topn=k, restrict_vocab=restrict_vocab)


def analogy(vectors, a, b, c, k=10, restrict_vocab=None):
    """Words closest to `a - b + c` (3CosAdd), leaving out the three query words: `analogy(v, "king", "man",
    "woman")` answers "queen" with good vectors.

    Raises:
        KeyError: one of the words has no vector.
    """
    positive = [_key(vectors, a), _key(vectors, c)]
    negative = [_key(vectors, b)]
    return vectors.most_similar(positive=positive, negative=negative, topn=k, restrict_vocab=restrict_vocab)


# === Corpora from the task datasets ===


def dataset_texts(name, data_dir=None, split="train"):
    """Texts of a dataset the text tasks can read, by name (e.g. "imdb").

    `split="train"` gives all the dataset's training texts: the task's train and validation splits together
    (never its test split).
    """
    from keras_tasks.pipelines.text_datasets import load_text_splits

    texts = load_text_splits(name, data_dir).texts
    if split == "train":
        return texts["train"] + texts["validation"]
    return texts[split]
