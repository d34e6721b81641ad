"""What every benchmark script shares: a JSON file of named result rows, kept as each row is measured."""

import csv
import json
import os
import platform
import time


def machine():
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"


def history(run_dir):
    """The rows of a run's history.csv (one dict of strings per finished epoch, every attempt); [] before any."""
    path = os.path.join(run_dir, "history.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class RowsFile:
    """`{"rows": {name: row}}` in `path`; `save_row` adds the machine and time, writes atomically, then `render`s.

    Args:
        path: the JSON file, e.g. `benchmarks/results/captioning.json`.
        render: callable taking the whole results dict (writes the markdown table).
    """

    def __init__(self, path, render):
        self.path = path
        self.render = render

    def load(self):
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        return {"rows": {}}

    def save_row(self, name, row):
        results = self.load()
        results["rows"][name] = {**row, "machine": machine(), "measured": time.strftime("%Y-%m-%d %H:%M")}
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, sort_keys=True)
        os.replace(tmp, self.path)
        self.render(results)
        print(f"[{name}] {json.dumps(row)}", flush=True)
