"""train.distribution: MirroredStrategy over two logical CPUs, two MultiWorkerMirroredStrategy workers on loopback.

Each run is a subprocess (tests/distributed_worker.py on the toy task): the logical devices and the cluster must be
set before TensorFlow starts.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from keras_tasks.pipelines.errors import ConfigError
from keras_tasks.tasks import base, config as config_lib

from toy_spine import history, toy_config  # registers toy_spine

WORKER = os.path.join(os.path.dirname(os.path.dirname(__file__)), "distributed_worker.py")
QUIET = {**{k: v for k, v in os.environ.items() if k != "TF_CONFIG"}, "TF_CPP_MIN_LOG_LEVEL": "2"}
# 32 training examples, 2 steps of 16 an epoch; distributed runs take 8 per replica, 16 a step.
SETTINGS = ["train.epochs=3"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(run_dir, settings, env=None, cpus=0, pause=0.0):
    command = [sys.executable, WORKER, str(run_dir), "--pause", str(pause)] + (["--cpus", str(cpus)] if cpus else [])
    for setting in settings:
        command += ["--set", setting]
    return subprocess.Popen(command, env=env or QUIET, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _workers(run_dir, settings, pause=0.0):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    settings = ["train.distribution=multi_worker", "train.batch_size=8"] + settings
    return [
        _start(run_dir, settings, {**QUIET, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                                               "index": i}})}, pause=pause)
        for i in range(2)
    ]


def _finish(process, timeout=240):
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output.strip().splitlines()[-1] if output.strip() else ""


def _metrics(process):
    code, last = _finish(process)
    assert code == 0, last
    return json.loads(last)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The same toy run in one process, batch 16."""
    run_dir = tmp_path_factory.mktemp("single")
    return _metrics(_start(run_dir, SETTINGS)), history(run_dir)


def _same_run(metrics, rows, single):
    single_metrics, single_rows = single
    for split in ("validation", "test"):
        for key in ("loss", "accuracy"):
            assert metrics[split][key] == pytest.approx(single_metrics[split][key], abs=1e-4), (split, key)
    assert [float(r["loss"]) for r in rows] == pytest.approx([float(r["loss"]) for r in single_rows], abs=1e-4)


def test_mirrored_over_two_logical_cpus_matches_one_process(tmp_path, single):
    run_dir = tmp_path / "mirrored"
    metrics = _metrics(_start(run_dir, SETTINGS + ["train.distribution=mirrored", "train.batch_size=8"], cpus=2))
    # Two replicas of 8: the global batch of the single run (16), so the same steps and the same numbers.
    _same_run(metrics, history(run_dir), single)
    assert {"model.keras", "best.weights.h5", "history.csv", "metrics.json", "logs"} <= set(os.listdir(run_dir))


def test_two_workers_on_loopback_match_one_process_and_only_the_chief_writes(tmp_path, single):
    run_dir = tmp_path / "cluster"
    chief, other = _workers(run_dir, SETTINGS)
    other_metrics = _metrics(other)
    metrics = _metrics(chief)
    _same_run(metrics, history(run_dir), single)
    assert other_metrics["test"] == metrics["test"]
    assert {"model.keras", "best.weights.h5", "history.csv", "metrics.json", "logs"} <= set(os.listdir(run_dir))
    assert not os.path.exists(run_dir / "backup")  # removed when training ended
    # The chief's history has one row per epoch: the other worker wrote its own elsewhere.
    assert len(history(run_dir)) == 3


def test_killed_worker_fails_the_run_with_one_line_and_a_restart_resumes(tmp_path):
    run_dir = tmp_path / "killed"
    # 200 training examples: 13 steps of 16 an epoch, a backup every 2 steps, 0.2 s a step.
    settings = ["data.size=600", "train.epochs=2", "train.backup_every_steps=2"]
    chief, other = _workers(run_dir, settings, pause=0.2)
    metadata = run_dir / "backup" / "training_metadata.json"
    deadline = time.time() + 180
    while not metadata.exists() and time.time() < deadline and chief.poll() is None:
        time.sleep(0.2)
    assert metadata.exists(), _finish(chief)
    other.send_signal(signal.SIGKILL)
    other.wait()
    code, last = _finish(chief)
    assert code == 2, last
    assert "a worker of the 2-worker cluster was lost" in last and "restart every worker" in last, last
    assert not os.path.exists(run_dir / "model.keras")
    backed_up = json.loads(metadata.read_text())

    chief, other = _workers(run_dir, settings)
    _metrics(other)
    metrics = _metrics(chief)
    rows = history(run_dir)
    assert len(rows) == 2 and metrics["training"]["epochs_run"] == 2
    # Resumed, not restarted: this attempt ran only the epochs after the backup's.
    assert metrics["training"]["epochs_this_attempt"] == 2 - backed_up["epoch"]
    assert metrics["test"]["accuracy"] > 0.8


def test_distribution_setting_is_checked():
    with pytest.raises(ConfigError, match="train.distribution.*one of none, mirrored, multi_worker"):
        config_lib.apply_overrides(toy_config(), ["train.distribution=horovod"])


def test_multi_worker_without_tf_config_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    config = config_lib.apply_overrides(toy_config(), ["train.distribution=multi_worker"])
    with pytest.raises(ConfigError, match="needs the TF_CONFIG environment variable"):
        base.train("toy_spine", config, str(tmp_path / "run"))
