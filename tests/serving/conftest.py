import os
import shutil
import sys
import time

import pytest

# The helpers beside this file (serving_toy_models, serving_helpers).
sys.path.insert(0, os.path.dirname(__file__))

import serving_toy_models as toy  # noqa: E402


@pytest.fixture(scope="session")
def toy_exports(tmp_path_factory):
    """Toy SavedModels written once per session; `install` copies them into a model base path."""
    root = tmp_path_factory.mktemp("toy_exports")
    return {
        "text": toy.write_text_model(root / "text"),
        "text_v2": toy.write_text_model(root / "text_v2", labels=("neg_v2", "pos_v2")),
        "image": toy.write_image_model(root / "image"),
        "echo": toy.write_echo_model(root / "echo"),
    }


@pytest.fixture(scope="session")
def install(toy_exports):
    """install(base, name, version, kind, age=60): copies a toy export to base/name/version, its files `age` s old."""

    def install_version(base, name, version, kind, age=60.0):
        target = os.path.join(base, name, str(version))
        shutil.copytree(toy_exports[kind], target)
        if age:
            then = time.time() - age
            for root, _, files in os.walk(target):
                for file_name in files:
                    os.utime(os.path.join(root, file_name), (then, then))
        return target

    return install_version
