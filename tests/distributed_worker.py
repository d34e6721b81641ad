"""One process of a distributed toy run (tests/tasks/test_distribution.py and the distribution benchmark).

    python tests/distributed_worker.py RUN_DIR [--cpus N] [--pause S] [--set section.key=value ...]

`--cpus N` splits the CPU into N logical devices before TensorFlow starts (MirroredStrategy over them); the
cluster of `train.distribution=multi_worker` comes from TF_CONFIG. `--pause S` sleeps S seconds after every
training step (so a test can kill a worker mid-run). Prints the metrics as JSON on its last line.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--cpus", type=int, default=0)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()

    import tensorflow as tf

    if args.cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpus)

    import keras

    from keras_tasks.pipelines.errors import UserError
    from keras_tasks.tasks import base, config as config_lib

    import toy_spine

    class Pause(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(args.pause)

    toy_spine.ToyTask.extra_callbacks = [Pause()] if args.pause else []
    config = config_lib.apply_overrides(toy_spine.toy_config(), args.set)
    try:
        metrics = base.train("toy_spine", config, args.run_dir, log=toy_spine.quiet)
    except UserError as e:
        print(f"error: {e}", flush=True)
        return 2
    print(json.dumps(metrics), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
