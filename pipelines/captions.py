"""Image captioning sources: COCO caption JSON files with an image folder, and Flickr8k's token file and split lists.

`load_captions(dataset, data_dir, image_dir)` resolves a dataset to `{split: CaptionSplit}`:

- `coco_captions_mini`: `DATA_DIR/coco_captions_mini/annotations/captions_{train,val}2017.json` with the
  images in `train2017/` and `val2017/`. The val2017 images are split in two (seeded): validation and test.
- `flickr8k`: `DATA_DIR/flickr8k/Flickr8k.token.txt` (`IMAGE.jpg#N<TAB>caption`) and the official
  `Flickr_8k.{train,dev,test}Images.txt` lists; the JPEG images themselves come from `image_dir`
  (`--set data.image_dir=FOLDER`), since the text release does not hold them.
- a COCO-style captions JSON file (`{"images": [{id, file_name}], "annotations": [{image_id, caption}]}`):
  its images are in `image_dir` (default: the JSON's own folder); validation and test images are carved
  from it (seeded), or taken from a sibling JSON whose name has `val` / `test` in place of `train`.

Every image file a split names must exist and be a whole JPEG or PNG: a missing one is reported by name
(with how many others are missing) before any training starts.
"""

import dataclasses
import json
import os
import random
import re
import typing

from keras_tasks.pipelines.data_dir import default_data_dir
from keras_tasks.pipelines.errors import ConfigError, DataError

FLICKR8K_TOKENS = "Flickr8k.token.txt"
FLICKR8K_SPLITS = {"train": "Flickr_8k.trainImages.txt", "validation": "Flickr_8k.devImages.txt",
                   "test": "Flickr_8k.testImages.txt"}
FLICKR8K_IMAGES_HINT = (
    "the Flickr8k JPEG images are not part of the text release: download Flickr8k_Dataset.zip (about 1 GB; "
    "its Flicker8k_Dataset/ folder holds the JPEGs, e.g. 1000268201_693b08cb0e.jpg) and pass "
    "--set data.image_dir=PATH/TO/Flicker8k_Dataset"
)
DATASETS = {
    "coco_captions_mini": "COCO-MINI: 80 train / 79 val COCO 2017 images, 5 captions each (val split into validation/test)",
    "flickr8k": "Flickr8k captions and official 6k/1k/1k splits; the images via --set data.image_dir=FOLDER",
}
# A caption line of Flickr8k.token.txt: `IMAGE#N<TAB>caption`. One known line files the 5th caption of
# 2258277193_586949ec62.jpg under `...jpg.1#4`: the trailing `.1` is dropped.
_TOKEN_LINE = re.compile(r"^(?P<image>[^#\t]+?)(?:\.\d+)?#(?P<index>\d+)\t(?P<caption>.*)$")


@dataclasses.dataclass(frozen=True)
class CaptionSplit:
    """One split: image files and, for each, all its reference captions (raw text)."""

    image_paths: typing.Tuple[str, ...]
    captions: typing.Tuple[typing.Tuple[str, ...], ...]

    def __len__(self):
        return len(self.image_paths)

    def pairs(self):
        """`(image index, caption)` for every caption of every image (the training examples)."""
        return [(i, caption) for i, captions in enumerate(self.captions) for caption in captions]

    def select(self, indices):
        return CaptionSplit(tuple(self.image_paths[i] for i in indices), tuple(self.captions[i] for i in indices))


def read_coco_captions(json_path, image_dir=None):
    """A `CaptionSplit` from a COCO captions JSON; images in `image_dir` (default: the JSON's folder)."""
    try:
        with open(json_path, encoding="utf-8") as f:
            payload = json.load(f)
    except FileNotFoundError:
        raise DataError(json_path, "no such captions file", hint="give a COCO captions JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        line = getattr(e, "lineno", None)
        raise DataError(json_path, f"not valid JSON ({getattr(e, 'msg', e)})", line=line,
                        hint="a COCO captions file is one JSON object with `images` and `annotations`") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("images"), list) or not isinstance(
            payload.get("annotations"), list):
        raise DataError(json_path, "expected a JSON object with `images` and `annotations` lists (COCO captions format)",
                        hint='e.g. {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": '
                             '[{"image_id": 1, "caption": "a dog"}]}')
    files = {}
    for n, image in enumerate(payload["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise DataError(json_path, f"images[{n}] needs an `id` and a `file_name` string, got {str(image)[:80]}")
        files[image["id"]] = image["file_name"]
    captions = {}
    for n, annotation in enumerate(payload["annotations"]):
        if not isinstance(annotation, dict) or not isinstance(annotation.get("caption"), str):
            raise DataError(json_path, f"annotations[{n}] needs a `caption` string, got {str(annotation)[:80]}")
        image_id = annotation.get("image_id")
        if image_id not in files:
            raise DataError(json_path, f"annotations[{n}] has image_id {image_id!r}, which no entry of `images` has",
                            hint="every annotation's image_id must be the id of an image")
        captions.setdefault(image_id, []).append(annotation["caption"].strip())
    image_dir = image_dir or os.path.dirname(os.path.abspath(json_path))
    ids = [i for i in files if captions.get(i)]
    if not ids:
        raise DataError(json_path, "no image has a caption", hint="add `annotations` with `image_id` and `caption`")
    paths = [os.path.join(image_dir, files[i]) for i in ids]
    check_images(paths, image_dir, f"the images of {json_path}")
    return CaptionSplit(tuple(paths), tuple(tuple(captions[i]) for i in ids))


def read_flickr8k_tokens(token_path):
    """`{image file name: [captions]}` from a Flickr8k `Flickr8k.token.txt`."""
    captions = {}
    try:
        with open(token_path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                match = _TOKEN_LINE.match(line)
                if not match:
                    raise DataError(token_path, f"expected IMAGE.jpg#N<TAB>caption, got {line[:60]!r}", line=number)
                captions.setdefault(match["image"], []).append(match["caption"].strip())
    except FileNotFoundError:
        raise DataError(token_path, "no such file", hint="the Flickr8k text release (Flickr8k_text.zip) has it") from None
    except UnicodeDecodeError as e:
        raise DataError(token_path, f"not UTF-8 text ({e.reason})") from None
    return captions


def read_split_list(path):
    """The image file names of a Flickr8k split list, one per line."""
    try:
        with open(path, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        raise DataError(path, "no such split list", hint="the Flickr8k text release (Flickr8k_text.zip) has it") from None


def read_flickr8k(folder, image_dir):
    """`{split: CaptionSplit}` of Flickr8k: captions and split lists in `folder`, JPEGs in `image_dir`."""
    if not image_dir:
        raise ConfigError(f"flickr8k needs its images: {FLICKR8K_IMAGES_HINT}")
    if not os.path.isdir(image_dir):
        raise DataError(image_dir, "no such folder (data.image_dir)", hint=FLICKR8K_IMAGES_HINT)
    token_path = os.path.join(folder, FLICKR8K_TOKENS)
    captions = read_flickr8k_tokens(token_path)
    splits = {}
    for split, filename in FLICKR8K_SPLITS.items():
        list_path = os.path.join(folder, filename)
        names = read_split_list(list_path)
        for number, name in enumerate(names, start=1):
            if name not in captions:
                raise DataError(list_path, f"image {name} has no caption in {token_path}", line=number)
        paths = [os.path.join(image_dir, name) for name in names]
        check_images(paths, image_dir, f"Flickr8k's {split} images ({filename})", hint=FLICKR8K_IMAGES_HINT)
        splits[split] = CaptionSplit(tuple(paths), tuple(tuple(captions[name]) for name in names))
    return splits


def check_images(paths, image_dir, what, hint=None):
    """Raises DataError naming the first missing image files (and how many are missing) or a broken one."""
    from keras_tasks.pipelines.image_decoding import check_image_file  # TensorFlow: not at import (the CLI lists DATASETS)

    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        names = ", ".join(os.path.basename(p) for p in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DataError(image_dir, f"{len(missing)} of {len(paths)} image files of {what} are missing: {names}{more}",
                        hint=hint or "put the files in this folder or point data.image_dir at the folder that has them")
    for path in paths:
        check_image_file(path)


def carve(split, fractions, seed):
    """Seeded split of a `CaptionSplit` by image: `{name: CaptionSplit}` for each fraction, and the rest as `rest`."""
    order = list(range(len(split)))
    random.Random(seed).shuffle(order)
    result, start = {}, 0
    for name, fraction in fractions.items():
        count = max(1, int(round(fraction * len(order))))
        result[name] = split.select(sorted(order[start:start + count]))
        start += count
    if start >= len(order):
        raise ConfigError(f"{len(order)} images are too few to hold out {sorted(fractions)}; lower the fractions")
    result["rest"] = split.select(sorted(order[start:]))
    return result


def _sibling(json_path, kind):
    folder, name = os.path.split(json_path)
    if "train" not in name:
        return None
    candidate = os.path.join(folder, name.replace("train", kind))
    return candidate if os.path.exists(candidate) else None


def load_captions(dataset, data_dir=None, image_dir=None, validation_fraction=0.1, test_fraction=0.1, seed=0):
    """`{"train", "validation", "test"}` `CaptionSplit`s of a named dataset or a COCO-style captions JSON."""
    if dataset == "coco_captions_mini":
        folder = os.path.join(data_dir or default_data_dir(), "coco_captions_mini")
        annotations = os.path.join(folder, "annotations")
        train = read_coco_captions(os.path.join(annotations, "captions_train2017.json"),
                                   image_dir or os.path.join(folder, "train2017"))
        held_out = read_coco_captions(os.path.join(annotations, "captions_val2017.json"),
                                      image_dir or os.path.join(folder, "val2017"))
        halves = carve(held_out, {"test": 0.5}, seed)
        return {"train": train, "validation": halves["rest"], "test": halves["test"]}
    if dataset == "flickr8k":
        return read_flickr8k(os.path.join(data_dir or default_data_dir(), "flickr8k"), image_dir)
    if dataset.endswith(".json") or os.path.isfile(dataset):
        train = read_coco_captions(dataset, image_dir)
        splits = {}
        for split, kind in (("validation", "val"), ("test", "test")):
            sibling = _sibling(dataset, kind)
            if sibling:
                splits[split] = read_coco_captions(sibling, image_dir)
        fractions = {s: f for s, f in (("validation", validation_fraction), ("test", test_fraction)) if s not in splits}
        if fractions:
            carved = carve(train, fractions, seed)
            train = carved.pop("rest")
            splits.update(carved)
        return {"train": train, **splits}
    raise ConfigError(
        f"unknown captioning dataset {dataset!r}: use coco_captions_mini, flickr8k, or a COCO-style captions JSON file "
        f"(with --set data.image_dir=FOLDER of its images)"
    )
