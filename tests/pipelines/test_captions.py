import json
import os
import shutil

import pytest
from test_case import data_dir

from keras_tasks.pipelines import captions
from keras_tasks.pipelines.errors import ConfigError, DataError

COCO_MINI = "coco_captions_mini"


def coco_image(name=None):
    folder = os.path.join(data_dir(), COCO_MINI, "train2017")
    return os.path.join(folder, name or sorted(os.listdir(folder))[0])


def write_json(path, payload):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    return str(path)


def tiny_coco(folder, images=6, captions_per_image=2):
    """A COCO-style captions JSON over `images` real COCO JPEGs copied into `folder`."""
    names = sorted(os.listdir(os.path.dirname(coco_image())))[:images]
    for name in names:
        shutil.copy(coco_image(name), os.path.join(folder, name))
    payload = {
        "images": [{"id": i, "file_name": name} for i, name in enumerate(names)],
        "annotations": [{"image_id": i, "caption": f"Picture {i}, caption {k}."}
                        for i in range(len(names)) for k in range(captions_per_image)],
    }
    return write_json(os.path.join(folder, "captions_train.json"), payload), names


def test_coco_captions_mini_splits():
    splits = captions.load_captions(COCO_MINI, data_dir())
    assert len(splits["train"]) == 80
    assert sum(len(c) for c in splits["train"].captions) == 400
    assert len(splits["validation"]) + len(splits["test"]) == 79
    assert not set(splits["validation"].image_paths) & set(splits["test"].image_paths)
    assert all(len(c) == 5 for c in splits["train"].captions)
    assert splits["train"].captions[0][0][0].isupper()  # raw text; normalising is the task's business
    assert all(os.path.isfile(p) for p in splits["test"].image_paths)


def test_coco_json_carves_held_out_images_by_seed(tmp_path):
    path, names = tiny_coco(tmp_path, images=6)
    first = captions.load_captions(path, validation_fraction=0.2, test_fraction=0.2, seed=1)
    again = captions.load_captions(path, validation_fraction=0.2, test_fraction=0.2, seed=1)
    assert [len(first[s]) for s in ("train", "validation", "test")] == [4, 1, 1]
    assert first["test"].image_paths == again["test"].image_paths
    index = names.index(os.path.basename(first["test"].image_paths[0]))
    assert first["test"].captions[0] == (f"Picture {index}, caption 0.", f"Picture {index}, caption 1.")
    assert first["train"].pairs()[1] == (0, first["train"].captions[0][1])


def test_coco_json_uses_val_sibling_file(tmp_path):
    path, names = tiny_coco(tmp_path, images=3)
    write_json(tmp_path / "captions_val.json", {"images": [{"id": 7, "file_name": names[0]}],
                                                "annotations": [{"image_id": 7, "caption": "held out"}]})
    splits = captions.load_captions(path, test_fraction=0.34)
    assert splits["validation"].captions == (("held out",),)
    assert len(splits["train"]) == 2 and len(splits["test"]) == 1


def test_missing_image_files_are_named(tmp_path):
    path, names = tiny_coco(tmp_path, images=5)
    for name in names[:4]:
        os.remove(tmp_path / name)
    with pytest.raises(DataError) as error:
        captions.read_coco_captions(path)
    message = str(error.value)
    assert message.startswith(str(tmp_path))
    assert f"4 of 5 image files" in message and names[0] in message and "and 1 more" in message


def test_truncated_image_is_named(tmp_path):
    path, names = tiny_coco(tmp_path, images=2)
    with open(tmp_path / names[1], "r+b") as f:
        f.truncate(2000)
    with pytest.raises(DataError, match=f"{names[1]}: JPEG file is truncated"):
        captions.read_coco_captions(path)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"images": [}', r"captions\.json:1: not valid JSON"),
        ('[1, 2]', "expected a JSON object with `images` and `annotations`"),
        ('{"images": [{"id": 1}], "annotations": []}', r"images\[0\] needs an `id` and a `file_name`"),
        ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 2, "caption": "x"}]}',
         r"annotations\[0\] has image_id 2, which no entry of `images` has"),
    ],
)
def test_bad_coco_json(tmp_path, text, expected):
    path = tmp_path / "captions.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=expected):
        captions.read_coco_captions(str(path))


def test_flickr8k_token_file():
    tokens = captions.read_flickr8k_tokens(os.path.join(data_dir(), "flickr8k", captions.FLICKR8K_TOKENS))
    # 40,460 lines; the 5th caption filed under `2258277193_586949ec62.jpg.1` joins its image.
    assert len(tokens) == 8092
    assert sum(len(c) for c in tokens.values()) == 40460
    assert {len(c) for c in tokens.values()} == {5}
    assert tokens["2258277193_586949ec62.jpg"][0] == "people waiting for the subway"
    assert tokens["1000268201_693b08cb0e.jpg"][0] == "A child in a pink dress is climbing up a set of stairs in an entry way ."


def test_flickr8k_split_lists():
    folder = os.path.join(data_dir(), "flickr8k")
    sizes = {split: len(captions.read_split_list(os.path.join(folder, name)))
             for split, name in captions.FLICKR8K_SPLITS.items()}
    assert sizes == {"train": 6000, "validation": 1000, "test": 1000}


def test_flickr8k_without_images_says_what_it_needs():
    with pytest.raises(ConfigError) as error:
        captions.load_captions("flickr8k", data_dir())
    message = str(error.value)
    assert "--set data.image_dir=" in message and "Flicker8k_Dataset" in message and "1000268201_693b08cb0e.jpg" in message


def test_flickr8k_names_missing_images(tmp_path):
    with pytest.raises(DataError) as error:
        captions.load_captions("flickr8k", data_dir(), image_dir=str(tmp_path))
    message = str(error.value)
    assert message.startswith(f"{tmp_path}: 6000 of 6000 image files of Flickr8k's train images")
    assert "and 5997 more" in message and "Flicker8k_Dataset" in message


def test_flickr8k_layout_with_images(tmp_path):
    text = tmp_path / "text"
    images = tmp_path / "images"
    text.mkdir()
    images.mkdir()
    lines = []
    for split, name in captions.FLICKR8K_SPLITS.items():
        image = f"{split}.jpg"
        shutil.copy(coco_image(), images / image)
        (text / name).write_text(image + "\n", encoding="utf-8")
        lines += [f"{image}#{k}\t{split} caption {k}" for k in range(5)]
    (text / captions.FLICKR8K_TOKENS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    splits = captions.read_flickr8k(str(text), str(images))
    assert splits["validation"].image_paths == (str(images / "validation.jpg"),)
    assert splits["test"].captions == (tuple(f"test caption {k}" for k in range(5)),)


def test_bad_flickr8k_token_line(tmp_path):
    path = tmp_path / captions.FLICKR8K_TOKENS
    path.write_text("a.jpg#0\tfine\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Flickr8k.token.txt:2: expected IMAGE.jpg#N<TAB>caption"):
        captions.read_flickr8k_tokens(str(path))


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="coco_captions_mini, flickr8k, or a COCO-style captions JSON"):
        captions.load_captions("no_such_captions")
