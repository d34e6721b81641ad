"""Where the datasets live, for every reader: `--data-dir`, else `$KERAS_TASKS_DATA`, else `~/keras_tasks_data`.

The folder is resolved once, to an absolute path (a relative `KERAS_TASKS_DATA=../shared/data` means relative to the
folder the command runs in), so every task, and a run resumed from another folder, reads the same files.
"""

import os

DATA_ENV = "KERAS_TASKS_DATA"


def default_data_dir():
    """The data directory, absolute: `$KERAS_TASKS_DATA`, else `~/keras_tasks_data`."""
    return resolve(os.environ.get(DATA_ENV) or os.path.join("~", "keras_tasks_data"))


def resolve(path):
    """`path` with `~` expanded, made absolute against the current folder."""
    return os.path.abspath(os.path.expanduser(path))
