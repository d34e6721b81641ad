"""`train.distribution`: the one training path on a tf.distribute strategy (TensorFlow backend).

    none          one process, the default device placement (no strategy)
    mirrored      MirroredStrategy: one process, a replica per local GPU (or CPU when there is none)
    multi_worker  MultiWorkerMirroredStrategy: one process per machine, the cluster read from TF_CONFIG

`train.batch_size` is the batch of ONE replica; each step consumes `batch_size x replicas` examples (the
global batch), which `Distribution.global_config` gives the task's `make_dataset`. The learning rate is not scaled.

Every worker runs the same `base.train`; the chief (worker 0, or the `chief` task of TF_CONFIG) writes the run
directory. Another worker writes into a private temporary folder, removed when it finishes: a copy of the chief's
run directory when it sees one with training started (a shared file system), so that a restarted cluster resumes
every worker from the same backup, otherwise an empty one.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile

from keras_tasks.pipelines.errors import ConfigError, UserError

MODES = ("none", "mirrored", "multi_worker")


class WorkerLostError(UserError, RuntimeError):
    """A worker of a multi-worker run stopped answering (killed, crashed, unreachable)."""


@dataclasses.dataclass
class Distribution:
    """The strategy of a run (None for `none`) and this process's role in it."""

    mode: str = "none"
    strategy: object = None
    is_chief: bool = True
    worker_index: int = 0
    num_workers: int = 1

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1

    def scope(self):
        """Where the model and its optimizer are built and compiled: their variables are mirrored."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def global_config(self, config):
        """`config` with `train.batch_size` the global batch, for the task's datasets."""
        if self.replicas == 1:
            return config
        train = dataclasses.replace(config.train, batch_size=config.train.batch_size * self.replicas)
        return dataclasses.replace(config, train=train)

    def shard(self, dataset):
        """Each worker takes every N-th batch (DATA auto-shard: the tasks' datasets are in memory, not files)."""
        if self.strategy is None:
            return dataset
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)

    def prepare(self, model, dataset):
        """Works around two Keras 3 faults under MultiWorkerMirroredStrategy (keras-team/keras#20585).

        Keras builds a compiled model's state (metrics, loss) from a first batch averaged over the replicas with
        `strategy.reduce`, which fails there ("Attempt to convert a value (PerReplica...)"): it is built here from the
        dataset's element spec, and this model skips that step. And each step's scalar logs are averaged over the
        workers with `strategy.reduce("MEAN", value, axis=0)`, which fails on a scalar: see `_mean_over_workers`.
        Under MirroredStrategy too the spec build spares the training data a first draw, so a mirrored run sees the
        batches in the order one process does.
        """
        if self.strategy is None:
            return
        if self.num_workers > 1:
            _mean_over_workers()
        with self.strategy.scope():
            model._symbolic_build(data_batch=dataset.element_spec)
        model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    @contextlib.contextmanager
    def work_dir(self, run_dir, copy_if):
        """The folder this process writes: `run_dir` on the chief, a temporary folder on another worker.

        `copy_if(run_dir)` says whether the chief's run directory holds a run to resume; a non-chief worker then
        starts from a copy of it (TensorBoard logs left out).
        """
        if self.is_chief:
            os.makedirs(run_dir, exist_ok=True)
            yield run_dir
            return
        folder = tempfile.mkdtemp(prefix=f"keras-tasks-worker{self.worker_index}-")
        work = os.path.join(folder, "run")
        try:
            if os.path.isdir(run_dir) and copy_if(run_dir):
                shutil.copytree(run_dir, work, ignore=shutil.ignore_patterns("logs"))
            else:
                os.makedirs(work)
            yield work
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextlib.contextmanager
    def lost_worker_errors(self, run_dir):
        """A peer's failure surfaces as a TensorFlow communication error: one line saying how to resume."""
        if self.num_workers == 1:
            yield
            return
        import tensorflow as tf

        try:
            yield
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
                tf.errors.AbortedError, tf.errors.InternalError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise WorkerLostError(
                f"multi-worker training stopped: a worker of the {self.num_workers}-worker cluster was lost "
                f"(worker {self.worker_index} saw: {first}); restart every worker with the same command and "
                f"TF_CONFIG to resume from the last backup in {os.path.join(run_dir, 'backup')}"
            ) from None


def _mean_over_workers():
    """Keras' TensorFlow trainer averages a multi-worker step's logs with `axis=None` (over replicas), not `axis=0`."""
    from keras.src.backend.tensorflow import trainer as tf_trainer
    from keras.src import tree

    original = tf_trainer.reduce_per_replica
    if getattr(original, "over_workers", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.over_workers = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def _cluster_role():
    """(is_chief, worker_index, num_workers) from TF_CONFIG; raises ConfigError when it is missing or malformed."""
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        raise ConfigError(
            "train.distribution=multi_worker needs the TF_CONFIG environment variable (the cluster and this "
            'worker\'s task), e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}\'; see docs/distributed.md'
        )
    try:
        tf_config = json.loads(text)
        cluster = tf_config["cluster"]
        kind, index = tf_config["task"]["type"], int(tf_config["task"]["index"])
        workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
        if kind not in ("chief", "worker") or index >= len(cluster[kind]) or index < 0:
            raise ValueError(f"task {kind} {index} is not in the cluster")
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"TF_CONFIG is not a usable cluster spec ({e}); it needs \"cluster\": {{\"worker\": [\"host:port\", ...]}} "
            "and \"task\": {\"type\": \"worker\", \"index\": N}; see docs/distributed.md"
        ) from None
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    worker_index = index if kind == "chief" else index + len(cluster.get("chief", []))
    return chief, worker_index, workers


def make(mode):
    """The `Distribution` for `train.distribution`; create it before TensorFlow runs anything else."""
    if mode not in MODES:
        raise ConfigError(f"train.distribution must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "none":
        return Distribution()
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"train.distribution={mode} is a tf.distribute strategy: run with KERAS_BACKEND=tensorflow "
            f"(the backend is {keras.backend.backend()})"
        )
    import tensorflow as tf

    if mode == "mirrored":
        # Every local GPU, or every logical CPU device where there is none (tests split the CPU in two).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return Distribution(mode, tf.distribute.MirroredStrategy([d.name for d in devices]))
    chief, index, workers = _cluster_role()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Distribution(mode, strategy, is_chief=chief, worker_index=index, num_workers=workers)
