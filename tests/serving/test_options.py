"""`keras-tasks serve`'s options: limits that would switch themselves off are refused, with a one-line reason."""

import argparse

import pytest

from keras_tasks.serving import options


def _parse(*argv):
    return options.config_from_args(options.add_arguments(argparse.ArgumentParser(prog="serve")).parse_args(argv))


def test_defaults_and_valid_limits():
    config = _parse()
    assert (config.max_body_bytes, config.max_image_pixels) == (10 << 20, 40_000_000)
    config = _parse("--max-body-bytes", "1", "--max-image-pixels", "1")
    assert (config.max_body_bytes, config.max_image_pixels) == (1, 1)
    assert _parse("--max-body-bytes", str(options.MAX_BODY_BYTES)).max_body_bytes == 1 << 30


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--max-body-bytes", "0"), "argument --max-body-bytes: must be a whole number from 1 to 1073741824, got '0'"),
        (("--max-body-bytes", "-5"), "--max-body-bytes: must be a whole number from 1 to 1073741824, got '-5'"),
        (("--max-body-bytes", str((1 << 30) + 1)), "from 1 to 1073741824, got '1073741825'"),
        (("--max-body-bytes", "10MiB"), "must be a whole number from 1 to 1073741824, got '10MiB'"),
        (("--max-image-pixels", "0"), "argument --max-image-pixels: must be a whole number >= 1, got '0'"),
        (("--poll-seconds", "nan"), "argument --poll-seconds: must be a number >= 0, got 'nan'"),
    ],
)
def test_invalid_limits_are_refused_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        _parse(*argv)
    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("serve: error:")]
    assert len(error_lines) == 1 and message in error_lines[0], error_lines


@pytest.mark.parametrize("field, value", [("max_body_bytes", 0), ("max_body_bytes", 2 << 30), ("max_image_pixels", 0)])
def test_server_config_refuses_limits_that_are_off_or_unbounded(field, value):
    # aiohttp reads client_max_size=0 as "no limit"; a config made in Python must not get there either.
    with pytest.raises(ValueError, match=f"{field} must be"):
        options.ServerConfig(**{field: value})
