"""Where the datasets live, for every reader: `--data-dir`, else `$KERAS_TASKS_DATA`, else `~/keras_tasks_data`."""

import os

DATA_ENV = "KERAS_TASKS_DATA"


def default_data_dir():
    """The data directory: `$KERAS_TASKS_DATA`, else `~/keras_tasks_data`."""
    return os.environ.get(DATA_ENV) or os.path.join(os.path.expanduser("~"), "keras_tasks_data")
