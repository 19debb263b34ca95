"""Training fed by the tf.data pipeline from shards vs fed by in-memory tensors.

Goal: training through `make_dataset` at >= 0.95x the images/s of training on preprocessed tensors
held in memory, i.e. the input pipeline does not hold the model back. The same model (B0 by
default: from scratch, 'standard' mode with its augmentation layers, 6 classes, Adam, categorical
crossentropy) for every feed; epoch 1 (tracing, cache filling) is left out of the rates. The
pipeline is also iterated alone (no model) to show its headroom.

    .venv/bin/python bench/bench_pipeline.py [--images 600] [--image-size 64] [--batch-size 32]
        [--epochs 3] [--cache | --no-cache] [--repeats 1] [--model b0] [--precision float32]

Synthetic 424x424 galaxies and their shards are cached under results/bench/pipeline/. Prints a
table and writes results/bench/pipeline.json. Besides images/s it records process CPU ms per
image, which other jobs on a shared machine disturb less than wall-clock rates (still: repeat).

Runs on CPU or GPU alike. On a CPU-only machine the uncached JPEG decode competes with the
training step for the same cores, so its CPU ms per image (see `iterate`) come straight off the
rate. On a GPU the decode overlaps the step, but the step is fast: the uncached pipeline needs
about (training images/s x decode CPU ms per image / 1000) cores, or `--cache` (decode once).
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep the table readable

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from spiralarms.data.dataset import make_dataset
from spiralarms.data.shards import read_manifest, shard_files, write_shards
from spiralarms.data.variants import VARIANTS
from spiralarms.models.networks import build_model
from spiralarms.synthetic.generate import IMAGE_DIR, read_truth, synthesize
from spiralarms.training.train import PRECISIONS

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench"
VARIANT = VARIANTS["6class"]
N_CLASSES = VARIANT.n_classes
GOAL_RATIO = 0.95


def per_class_counts(n_images: int) -> list:
    """n_images split over the six arm classes, the remainder on the first classes."""
    return [n_images // N_CLASSES + (c < n_images % N_CLASSES) for c in range(N_CLASSES)]


def cached_galaxies(n_images: int, workers: int) -> Path:
    """Folder of n_images synthetic spirals (JPEGs + truth.csv), made once."""
    folder = OUT / "pipeline" / f"galaxies_{n_images}"
    if not (folder / "truth.csv").is_file():
        summary = synthesize(folder, per_class_counts(n_images), 0, 0, seed=0, workers=workers,
                             progress=False)
        print(f"made {n_images} galaxies in {summary['seconds']:.1f} s")
    return folder


def cached_shards(galaxies: Path, n_images: int, workers: int) -> list:
    """Train shards of the cached galaxies, written once; returns the shard files."""
    shard_dir = OUT / "pipeline" / f"shards_{n_images}"
    if not (shard_dir / "manifest.json").is_file():
        truth = read_truth(galaxies)
        labels = pd.DataFrame({
            "dr7objid": truth["dr7objid"], "asset_id": truth["asset_id"],
            "arm_class": truth["arm_class"],
            "arm_fraction": 1.0,  # the truth is exact; the figure plays no part in the timing
            "subset": "train", "image": [f"{a}.jpg" for a in truth["asset_id"]],
        })
        write_shards(labels, galaxies / IMAGE_DIR, shard_dir, shard_size=256, workers=workers)
    count = read_manifest(shard_dir)["subsets"]["train"]["count"]
    if count != n_images:
        raise RuntimeError(f"{shard_dir} holds {count} images, not {n_images}: delete the "
                           "folder to rebuild it")
    return shard_files(shard_dir, "train")


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock and process CPU seconds of each epoch."""

    def __init__(self):
        super().__init__()
        self.seconds, self.cpu_seconds = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._cpu_start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        self.cpu_seconds.append(time.process_time() - self._cpu_start)


def compiled_model(model_name: str, image_size: int) -> keras.Model:
    keras.backend.clear_session()  # each feed starts from the same fresh state
    keras.utils.set_random_seed(0)
    model = build_model(model_name, N_CLASSES, image_size)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    return model


def rates(seconds: list, n_images: int, cpu_seconds: list | None = None) -> dict:
    """Per-epoch images/s, and the overall rate of epochs 2..E (epoch 1 traces the graph).

    CPU ms per image (all threads of this process) barely moves when other jobs load the
    machine, unlike wall-clock rates: on a CPU-only machine it is the steadier comparison.
    """
    timed = seconds[1:]
    out = {"epoch_s": [round(s, 3) for s in seconds],
           "epoch_images_per_s": [round(n_images / s, 1) for s in seconds],
           "images_per_s": round(n_images * len(timed) / sum(timed), 1)}
    if cpu_seconds is not None:
        out["cpu_ms_per_image"] = round(1000 * sum(cpu_seconds[1:]) / (n_images * len(timed)), 2)
    return out


def time_training(dataset, args, n_images: int) -> dict:
    model = compiled_model(args.model, args.image_size)
    timer = EpochTimer()
    model.fit(dataset, epochs=args.epochs, callbacks=[timer], shuffle=False, verbose=0)
    return rates(timer.seconds, n_images, timer.cpu_seconds)


def time_iteration(dataset, passes: int, n_images: int) -> dict:
    """The pipeline alone: pull every batch to the host, no model."""
    seconds, cpu_seconds = [], []
    for _ in range(passes):
        start, cpu_start = time.perf_counter(), time.process_time()
        for images, _targets in dataset:
            images.numpy()
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    return rates(seconds, n_images, cpu_seconds)


def in_memory_dataset(files, args, n_images: int):
    """Images decoded and preprocessed once (same code path as training), then held as tensors."""
    start = time.perf_counter()
    batches = list(make_dataset(files, args.model, VARIANT, args.image_size,
                                batch_size=256, count=n_images).as_numpy_iterator())
    images = np.concatenate([b[0] for b in batches])
    targets = np.concatenate([b[1] for b in batches])
    prepare_s = time.perf_counter() - start
    dataset = tf.data.Dataset.from_tensor_slices((images, targets))
    return dataset.batch(args.batch_size).prefetch(tf.data.AUTOTUNE), prepare_s, images.nbytes


def machine() -> dict:
    gpus = tf.config.list_physical_devices("GPU")
    return {"cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "platform": platform.platform(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "gpu": [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                    for g in gpus]}


def run_feeds(files, memory, args, n_images: int) -> dict:
    """Every feed trained `repeats` times, in rotating order so a load burst hits all alike."""
    def pipeline(cache):
        return make_dataset(files, args.model, VARIANT, args.image_size,
                            batch_size=args.batch_size, cache=cache, count=n_images)

    feeds = {"pipeline_no_cache": lambda: pipeline(False), "in_memory": lambda: memory}
    if args.cache:
        feeds["pipeline_cache"] = lambda: pipeline(True)
    names = list(feeds)
    runs = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            print(f"  training on {name} (repeat {repeat + 1}/{args.repeats}) ...", flush=True)
            runs[name].append(time_training(feeds[name](), args, n_images))
    return runs


def summarise(runs: dict) -> dict:
    """Median rate over repeats, and each feed's ratio to in-memory, by wall clock and CPU."""
    def median(feed_runs, key):
        return float(np.median([r[key] for r in feed_runs]))

    memory = median(runs["in_memory"], "images_per_s")
    memory_cpu = median(runs["in_memory"], "cpu_ms_per_image")
    out = {}
    for name, feed_runs in runs.items():
        rate, cpu = median(feed_runs, "images_per_s"), median(feed_runs, "cpu_ms_per_image")
        out[name] = {"images_per_s_median": round(rate, 1),
                     "ratio_to_in_memory": round(rate / memory, 3),
                     "cpu_ms_per_image_median": round(cpu, 2),
                     "cpu_ratio_to_in_memory": round(memory_cpu / cpu, 3), "runs": feed_runs}
    return out


def print_table(result: dict):
    m = result["machine"]
    print(f"\n{result['images']} images {result['image_size']}px (crop 224), batch "
          f"{result['batch_size']}, {result['epochs']} epochs x {result['repeats']} repeats "
          f"({result['model']}, from scratch, {result['precision']}); {m['cpus_usable']} CPUs, "
          f"TF {m['tensorflow']}, "
          f"GPU: {m['gpu'] or 'none'}; load average {result['load_average_1min']}")
    print(f"{'':28s} {'img/s':>8s} {'ratio':>6s} {'CPU ms/img':>11s} {'ratio':>6s}   "
          "per-epoch img/s of each run (epoch 1 untimed)")
    for name, feed in result["training"].items():
        epochs = "; ".join(str(r["epoch_images_per_s"]) for r in feed["runs"])
        print(f"train <- {name:19s} {feed['images_per_s_median']:8.1f} "
              f"{feed['ratio_to_in_memory']:5.2f}x {feed['cpu_ms_per_image_median']:11.2f} "
              f"{feed['cpu_ratio_to_in_memory']:5.2f}x   {epochs}")
    for name, alone in result["pipeline_alone"].items():
        print(f"iterate {name:20s} {alone['images_per_s']:8.0f} {alone['headroom']:5.1f}x "
              f"{alone['cpu_ms_per_image']:11.2f}          {alone['epoch_images_per_s']}")
    print("(ratio: to in-memory training; for `iterate`, the pipeline alone, the headroom over it)")
    print(f"in-memory tensors: prepared once in {result['in_memory_prepare_s']:.1f} s, "
          f"{result['in_memory_mb']:.1f} MB")
    print(f"goal: pipeline >= {GOAL_RATIO}x in-memory; wrote {OUT / 'pipeline.json'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help=">= 2: epoch 1 is not timed")
    parser.add_argument("--cache", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the pipeline with cache=True (default on)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="train each feed this many times; the median rate is reported")
    parser.add_argument("--model", default="b0", choices=["b0", "v2m"])
    parser.add_argument("--workers", type=int, default=2,
                        help="threads for making the cached galaxies and shards")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS,
                        help="Keras global dtype policy, as train.precision sets it")
    args = parser.parse_args(argv)
    keras.mixed_precision.set_global_policy(args.precision)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (epoch 1 traces the graph and is not timed)")

    files = cached_shards(cached_galaxies(args.images, args.workers), args.images, args.workers)
    memory, prepare_s, memory_bytes = in_memory_dataset(files, args, args.images)
    runs = run_feeds(files, memory, args, args.images)
    training = summarise(runs)

    alone = {}
    for cache in ([False, True] if args.cache else [False]):
        dataset = make_dataset(files, args.model, VARIANT, args.image_size,
                               batch_size=args.batch_size, cache=cache, count=args.images)
        name = "pipeline_cache" if cache else "pipeline_no_cache"
        alone[name] = time_iteration(dataset, max(3, args.epochs), args.images)
        alone[name]["headroom"] = round(
            alone[name]["images_per_s"] / training["in_memory"]["images_per_s_median"], 2)

    result = {
        "benchmark": "pipeline", "images": args.images, "image_size": args.image_size,
        "crop_size": 224, "batch_size": args.batch_size, "epochs": args.epochs,
        "repeats": args.repeats, "model": args.model, "precision": args.precision,
        "goal_ratio": GOAL_RATIO,
        "training": training, "pipeline_alone": alone,
        "in_memory_prepare_s": round(prepare_s, 2), "in_memory_mb": memory_bytes / 1e6,
        "load_average_1min": round(os.getloadavg()[0], 2), "machine": machine(),
    }
    print_table(result)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pipeline.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
