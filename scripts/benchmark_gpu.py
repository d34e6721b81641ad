"""Training throughput of every model family under JAX, in float32 and mixed precision, and the cuDNN LSTM check.

    python -m keras_tasks.scripts.benchmark_gpu                  # on a GPU machine: JAX with CUDA, no TensorFlow
    python -m keras_tasks.scripts.benchmark_gpu --steps 2 --warmup 1   # proves it runs (e.g. on a CPU)

Needs JAX only: the models come from the TensorFlow-free builders (`tasks/*_models.py`), the data are
synthetic batches of each family's usual shapes (below), and each row trains `--steps` steps with
`model.fit` after `--warmup` steps (compilation). The cuDNN check times an unmasked LSTM with Keras'
default `use_cudnn="auto"` against the same layer with `use_cudnn=False` (the generic `lax.scan` loop);
on a GPU it asserts that `use_cudnn=True` is accepted, i.e. the cuDNN kernel is the one that runs.
Under JAX, Keras takes cuDNN for unmasked LSTMs only: models with a padding mask (BiLSTM + attention,
the tagger) run the generic loop under JAX, while the TensorFlow backend also takes cuDNN for
right-padded masks. Writes `docs/benchmarks_gpu.md` and `benchmarks/results/gpu.json`, naming the device.
"""

import argparse
import json
import os
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from keras_tasks.tasks.lm_models import lstm_lm  # noqa: E402
from keras_tasks.tasks.tagging_models import sequence_tagger  # noqa: E402
from keras_tasks.tasks.text_models import text_classifier  # noqa: E402
from keras_tasks.tasks.vision_models import build_image_model  # noqa: E402

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sparse_crossentropy(**kwargs):
    return keras.losses.SparseCategoricalCrossentropy(**kwargs)


def token_batch(rng, batch, length, vocabulary):
    """Right-padded ids: each row has a random length between half and all of `length`."""
    ids = rng.integers(2, vocabulary, (batch, length)).astype("int32")
    lengths = rng.integers(length // 2, length + 1, batch)
    return np.where(np.arange(length) < lengths[:, None], ids, 0).astype("int32")


def textcnn(rng):
    """Kim (2014) on MR: batch 50, sentences padded to 64 tokens, 300-d embeddings, 3x100 filters."""
    x = token_batch(rng, 50, 64, 20000)
    model = text_classifier("textcnn", 20000, 2)
    return model, x, rng.integers(0, 2, 50).astype("int32"), sparse_crossentropy()


def bilstm_attention(rng):
    """IMDB documents: batch 32, 400 tokens, 300-d embeddings, BiLSTM 2x150, attention 100 (masked)."""
    x = token_batch(rng, 32, 400, 50000)
    model = text_classifier("bilstm_attention", 50000, 2)
    return model, x, rng.integers(0, 2, 32).astype("int32"), sparse_crossentropy()


def lstm_language_model(rng):
    """Zaremba et al.'s small PTB LM: 20 streams of 35 tokens, 10k words, 2x200 stateful LSTMs (unmasked)."""
    model = lstm_lm(10000, 20, hidden_dim=200, num_layers=2)
    x = rng.integers(1, 10000, (20, 35)).astype("int32")
    return model, x, np.roll(x, -1, axis=1), sparse_crossentropy(from_logits=True, ignore_class=0)


def bilstm_crf(rng):
    """CoNLL-2003 NER: batch 32, 40 words of up to 25 characters, char-CNN, BiLSTM 2x100, CRF over 17 tags."""
    from keras_tasks.layers.crf import CRFLoss

    token_ids = token_batch(rng, 32, 40, 20000)
    x = {
        "token_ids": token_ids,
        "char_ids": np.where(token_ids[..., None] > 0, rng.integers(1, 80, (32, 40, 25)), 0).astype("int32"),
        "casing_ids": np.where(token_ids > 0, rng.integers(1, 8, (32, 40)), 0).astype("int32"),
    }
    tags = np.where(token_ids > 0, rng.integers(0, 17, (32, 40)), -1).astype("int32")
    model = sequence_tagger("bilstm_crf", 20000, 17, characters_size=80, casing_size=8)
    return model, x, tags, CRFLoss()


def images(rng, shape, batch=128, classes=10):
    x = rng.integers(0, 256, (batch, *shape)).astype("float32")
    return x, np.eye(classes, dtype="float32")[rng.integers(0, classes, batch)]


def lenet5(rng):
    """LeNet-5 on MNIST: batch 128 of 28x28x1."""
    x, y = images(rng, (28, 28, 1))
    return build_image_model("lenet5", (28, 28, 1), 10), x, y, keras.losses.CategoricalCrossentropy()


def resnet20(rng):
    """ResNet-20 on CIFAR-10: batch 128 of 32x32x3, pad-and-crop and flip augmentation."""
    x, y = images(rng, (32, 32, 3))
    model = build_image_model("resnet20", (32, 32, 3), 10, augmentation="shift:4,flip")
    return model, x, y, keras.losses.CategoricalCrossentropy()


# The seq2seq decoder (translation) joins here once its builder is a TensorFlow-free function.
FAMILIES = {
    "textcnn": textcnn,
    "bilstm_attention": bilstm_attention,
    "lstm_lm": lstm_language_model,
    "bilstm_crf": bilstm_crf,
    "lenet5": lenet5,
    "resnet20": resnet20,
}


def batch_size(x):
    first = next(iter(x.values())) if isinstance(x, dict) else x
    return len(first)


def repeat(x, times):
    if isinstance(x, dict):
        return {k: repeat(v, times) for k, v in x.items()}
    return np.concatenate([x] * times)


def train_throughput(build, policy, steps, warmup, seed=0):
    """Examples/s of `steps` training steps (after `warmup` steps that compile) under a dtype policy."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(seed)
        model, x, y, loss = build(np.random.default_rng(seed))
        # mixed_float16: compile wraps the optimizer in a LossScaleOptimizer (auto_scale_loss).
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
        batch = batch_size(x)
        model.fit(repeat(x, warmup), repeat(y, warmup), batch_size=batch, epochs=1, shuffle=False, verbose=0)
        xs, ys = repeat(x, steps), repeat(y, steps)
        start = time.perf_counter()
        history = model.fit(xs, ys, batch_size=batch, epochs=1, shuffle=False, verbose=0)
        seconds = time.perf_counter() - start
        loss_value = float(history.history["loss"][-1])
        if not np.isfinite(loss_value):
            raise FloatingPointError(f"{build.__name__} under {policy}: loss {loss_value}")
        return {"examples_per_second": round(steps * batch / seconds, 1), "seconds": round(seconds, 3),
                "batch_size": batch, "steps": steps, "loss": round(loss_value, 4)}
    finally:
        keras.config.set_dtype_policy(previous)


def lstm_model(use_cudnn, batch, length, dim):
    inputs = keras.Input((length, dim))
    x = keras.layers.LSTM(dim, return_sequences=True, use_cudnn=use_cudnn, name="lstm")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(x[:, -1]))


def cudnn_check(steps, warmup, batch=64, length=100, dim=256):
    """Unmasked LSTM training: Keras' default (`use_cudnn="auto"`) against the generic loop (`use_cudnn=False`)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, length, dim)).astype("float32")
    y = rng.normal(size=(batch, 1)).astype("float32")
    on_gpu = any(d.platform == "gpu" for d in devices())
    result = {"shape": f"batch {batch}, {length} steps, {dim} units", "gpu": on_gpu}
    if on_gpu:
        # use_cudnn=True raises unless the backend's cuDNN kernel runs for this layer.
        lstm_model(True, batch, length, dim).predict(x[:2], verbose=0)
        result["cudnn_kernel_taken"] = True
    else:
        try:
            lstm_model(True, batch, length, dim).predict(x[:2], verbose=0)
            result["cudnn_kernel_taken"] = True
        except ValueError:
            result["cudnn_kernel_taken"] = False  # no GPU: Keras refuses use_cudnn=True, as it should
    for name, use_cudnn in (("auto", "auto"), ("generic", False)):
        model = lstm_model(use_cudnn, batch, length, dim)
        model.compile(optimizer="adam", loss="mse")
        model.fit(repeat(x, warmup), repeat(y, warmup), batch_size=batch, verbose=0)
        start = time.perf_counter()
        model.fit(repeat(x, steps), repeat(y, steps), batch_size=batch, verbose=0)
        result[f"{name}_examples_per_second"] = round(steps * batch / (time.perf_counter() - start), 1)
    result["speedup"] = round(result["auto_examples_per_second"] / result["generic_examples_per_second"], 2)
    if on_gpu and result["speedup"] < 1.5:
        raise AssertionError(f"cuDNN LSTM is not faster than the generic loop on this GPU: {result}")
    return result


def devices():
    import jax

    return jax.devices()


def device_name():
    import jax

    device = jax.devices()[0]
    kind = getattr(device, "device_kind", device.platform)
    if device.platform == "cpu":
        return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), JAX {jax.__version__}"
    return f"{kind} x{len(jax.devices())}, JAX {jax.__version__}"


def write_results(results, json_path, md_path):
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    on_gpu = results["platform"] == "gpu"
    lines = [
        "# Training throughput under JAX (GPU benchmark script)",
        "",
        f"Device: **{results['device']}**, Keras {results['keras']}. Command: `{results['command']}`.",
        "",
    ]
    if not on_gpu:
        lines += [
            "**Measured on a CPU, not a GPU**: this table only shows that the script runs end to end (tiny step",
            "counts, a shared 2-core machine). The GPU figures are still to be measured: run the command above on a",
            "GPU machine with JAX's CUDA wheel (`pip install \"jax[cuda12]\"`; TensorFlow is not needed).",
            "",
        ]
    lines += [
        f"Examples per second over {results['steps']} training steps (Adam, after {results['warmup']} warm-up steps"
        " that compile), synthetic batches of each family's usual shapes; mixed_float16 trains with loss scaling.",
        "",
        "| family | shapes | " + " | ".join(results["policies"]) + " |",
        "|---|---|" + "---:|" * len(results["policies"]),
    ]
    for family, row in results["families"].items():
        cells = [f"{row[p]['examples_per_second']:.1f}" if isinstance(row.get(p), dict) else str(row.get(p, "-"))
                 for p in results["policies"]]
        lines.append(f"| {family} | {row['shapes']} | " + " | ".join(cells) + " |")
    check = results["cudnn"]
    lines += [
        "",
        f"cuDNN LSTM check ({check['shape']}, unmasked): `use_cudnn=\"auto\"` {check['auto_examples_per_second']}"
        f" examples/s, generic loop (`use_cudnn=False`) {check['generic_examples_per_second']} examples/s"
        f" (x{check['speedup']}); cuDNN kernel taken: {'yes' if check['cudnn_kernel_taken'] else 'no (no GPU)'}.",
        "Under JAX Keras takes cuDNN for unmasked LSTMs only (the LM's training graph); the masked BiLSTMs of the",
        "attention classifier and the tagger run the generic loop under JAX (the TensorFlow backend takes cuDNN for",
        "right-padded masks too). The seq2seq decoder is not in the table yet.",
        "",
    ]
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="timed training steps per row (default 50)")
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing, which compile (default 3)")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset of " + ", ".join(FAMILIES))
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated dtype policies")
    parser.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "gpu.json"))
    parser.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks_gpu.md"))
    args = parser.parse_args(argv)
    if keras.backend.backend() != "jax":
        parser.error(f"run with KERAS_BACKEND=jax (got {keras.backend.backend()})")
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    command = "python -m keras_tasks.scripts.benchmark_gpu" + (
        f" --steps {args.steps} --warmup {args.warmup}" if (args.steps, args.warmup) != (50, 3) else "")
    results = {
        "device": device_name(), "platform": devices()[0].platform, "keras": keras.__version__,
        "command": command, "steps": args.steps, "warmup": args.warmup, "policies": policies, "families": {},
    }
    for family in families:
        build = FAMILIES[family]
        row = {"shapes": build.__doc__.split(": ", 1)[1].rstrip(".")}
        for policy in policies:
            row[policy] = train_throughput(build, policy, args.steps, args.warmup)
            print(f"{family:18s} {policy:15s} {row[policy]['examples_per_second']:10.1f} examples/s", flush=True)
        results["families"][family] = row
    results["cudnn"] = cudnn_check(args.steps, args.warmup)
    print(f"cuDNN check: {results['cudnn']}", flush=True)
    write_results(results, args.json, args.markdown)
    print(f"wrote {args.markdown} and {args.json}")


if __name__ == "__main__":
    main()
