"""CoNLL column files: the published counts, scheme conversions, and errors that name the file, line and fix."""

import os

import pytest
from test_case import data_dir, write_lines

from keras_tasks.pipelines import conll
from keras_tasks.pipelines.errors import DataError

IOB1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "O", "I-ORG"]
IOB2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "O", "B-ORG"]
IOBES = ["B-PER", "E-PER", "O", "S-LOC", "S-LOC", "O", "S-ORG"]
SPANS = [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5), ("ORG", 6, 7)]


def test_conll2003_has_the_published_sentence_and_token_counts():
    splits = conll.load_tagged_splits("conll2003", data_dir(), scheme="iob1")
    counts = {split: (len(s), sum(len(x.tokens) for x in s)) for split, s in splits.sentences.items()}
    assert counts == {"train": (14041, 203621), "validation": (3250, 51362), "test": (3453, 46435)}
    assert splits.source_scheme == "iob1"
    first = splits.sentences["train"][0]
    assert first.tokens[:3] == ["EU", "rejects", "German"] and first.tags[:3] == ["I-ORG", "O", "I-MISC"]
    assert first.line == 3  # after -DOCSTART- and its blank line
    tags = conll.tag_set(splits.sentences["train"])
    # IOB1: B- only where two entities of a type touch, which never happens for PER in eng.train.
    assert tags == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "I-PER"]


def test_schemes_convert_both_ways_with_the_same_entities():
    for tags, scheme in ((IOB1, "iob1"), (IOB2, "iob2"), (IOBES, "iobes")):
        assert conll.entities(tags, scheme) == SPANS
        assert conll.check_tags(tags, scheme) is None
        for target, expected in (("iob1", IOB1), ("iob2", IOB2), ("iobes", IOBES)):
            assert conll.convert(tags, scheme, target) == expected
    assert conll.detect_scheme([conll.Sentence([], IOB1)]) == "iob1"
    assert conll.detect_scheme([conll.Sentence([], IOB2)]) == "iob2"
    assert conll.detect_scheme([conll.Sentence([], IOBES)]) == "iobes"


def test_every_conll2003_sentence_round_trips_through_every_scheme():
    splits = conll.load_tagged_splits("conll2003", data_dir(), scheme="iob1")
    for sentence in splits.sentences["validation"] + splits.sentences["test"]:
        for scheme in ("iob2", "iobes"):
            converted = conll.convert(sentence.tags, "iob1", scheme)
            assert conll.check_tags(converted, scheme) is None
            assert conll.convert(converted, scheme, "iob1") == sentence.tags


def test_invalid_sequences_are_found():
    assert conll.check_tags(["O", "I-PER"], "iob2")[0] == 1
    assert conll.check_tags(["B-PER", "I-LOC"], "iob2")[0] == 1
    assert conll.check_tags(["B-PER"], "iobes")[0] == 0  # never closed
    assert conll.check_tags(["B-PER", "O"], "iobes")[0] == 1
    assert conll.check_tags(["S-PER"], "iob1")[0] == 0
    assert conll.check_tags(["PER"], "iob2")[0] == 0
    start, transitions, end = conll.allowed_transitions(["O", "B-PER", "I-PER"], "iob2")
    assert start == [True, True, False] and end == [True, True, True]
    assert transitions == [[True, True, False], [True, True, True], [True, True, True]]


def write_dataset(folder, train_lines, test_lines=None):
    os.makedirs(folder, exist_ok=True)
    good = ["-DOCSTART- -X- O O", "", "Peter NNP B-PER", "Blackburn NNP I-PER", "", "in IN O", "Bonn NNP B-LOC", ""]
    write_lines(os.path.join(folder, "train.txt"), train_lines)
    write_lines(os.path.join(folder, "dev.txt"), good)
    write_lines(os.path.join(folder, "test.txt"), test_lines or good)
    return str(folder)


def test_a_folder_of_the_users_own_is_read_and_converted(tmp_path):
    folder = write_dataset(tmp_path / "mine", ["Peter\tB-PER", "Blackburn\tI-PER", "", "Bonn B-LOC", "."
                                               " O"])
    splits = conll.load_tagged_splits(folder, scheme="iobes")
    assert splits.source_scheme == "iob2"
    assert [s.tags for s in splits.sentences["train"]] == [["B-PER", "E-PER"], ["S-LOC", "O"]]
    assert splits.files["validation"].endswith("dev.txt")


def test_bad_files_name_the_file_line_and_fix(tmp_path):
    folder = write_dataset(tmp_path / "bad_line", ["Peter B-PER", "Blackburn", ""])
    with pytest.raises(DataError, match=r"train\.txt:2: expected a token and a tag .*'Blackburn'.*one token per line"):
        conll.load_tagged_splits(folder)
    folder = write_dataset(tmp_path / "bad_tags", ["Peter B-PER", "Blackburn I-PER", "", "in O", "Bonn I-LOC", ""])
    with pytest.raises(DataError, match=r"train\.txt:5: invalid IOB2 tag sequence: I-LOC follows O.*data\.input_scheme"):
        conll.load_tagged_splits(folder, input_scheme="iob2")
    folder = write_dataset(tmp_path / "bad_test", ["Peter B-PER", ""], ["x O", "", "y B-PER", "z E-PER", ""])
    with pytest.raises(DataError, match=r"test\.txt:3: invalid IOB2 tag sequence: tag 'z E-PER'|test\.txt:4: invalid IOB2"):
        conll.load_tagged_splits(folder)
    os.remove(os.path.join(folder, "dev.txt"))
    with pytest.raises(DataError, match=r"no validation file \(add one named valid\.txt"):
        conll.load_tagged_splits(folder)
    with pytest.raises(DataError, match="not a named dataset"):
        conll.load_tagged_splits(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="dataset 'conll2003' not found"):
        conll.load_tagged_splits("conll2003", str(tmp_path))
