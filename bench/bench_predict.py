"""Prediction job vs the bare model: how close the input pipeline gets to model speed.

Goal: the prediction job (files -> tf.data read, decode, frame, preprocess -> compiled model call
-> table) at >= 0.8x the images/s of the same model called on preprocessed batches of the same
size held in memory ("bare"), on 2 cores at the demo's 64 px. Also: the job on FITS cut-outs,
the input pipeline alone (no model), and a whole chunked CLI-style run (split, chunk files,
gather) with its start-up time, for the scaling estimates in the README.

    .venv/bin/python bench/bench_predict.py [--images 1000] [--fits-images 300]
        [--image-size 64] [--batch-size 64] [--repeats 3] [--threads N] [--model b0]

Synthetic 424x424 galaxies (JPEG as in the demo, and FITS made from the same renders: one band,
float32, sky noise in counts) are cached under results/bench/predict/. The model is the
project's own network (build_model) with random weights: speed does not depend on training.
Each measurement runs in its own process, because TensorFlow fixes its thread pools at start:
the bare model gets every core (`--threads`, default all), the job shares them as the
prediction job does (`predict.configure_threads`: on a CPU half to the input pipeline, half to
the network). Runs rotate so a burst of load on a shared machine hits all alike; medians are
reported, with process CPU ms per image (steadier than wall clock under load). Prints a table
and writes results/bench/predict.json.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench"
GOAL_RATIO = 0.8
JPEG_QUALITY = 90  # as the synthetic demo writes them


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--fits-images", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="TensorFlow threads (default: all cores)")
    parser.add_argument("--model", default="b0", choices=["b0", "v2m"])
    parser.add_argument("--chunk-size", type=int, default=250)
    parser.add_argument("--only", choices=PARTS, help=argparse.SUPPRESS)  # one child process
    return parser.parse_args(argv)


PARTS = ("bare", "bare_model_share", "job_jpeg", "job_fits", "pipeline_jpeg", "pipeline_fits",
         "chunked")


def galaxies(n_jpeg: int, n_fits: int) -> tuple[list, list]:
    """Cached synthetic galaxies: n_jpeg JPEGs and n_fits FITS files (424 px)."""
    import numpy as np
    from astropy.io import fits
    from PIL import Image

    from spiralarms.synthetic.render import render_galaxy

    folder = OUT / "predict" / "galaxies"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    jpegs, fits_files = [], []
    for i in range(max(n_jpeg, n_fits)):
        jpeg, fit = folder / f"g{i:05d}.jpg", folder / f"g{i:05d}.fits"
        if (i < n_jpeg and not jpeg.exists()) or (i < n_fits and not fit.exists()):
            pixels = render_galaxy(i % 6, rng)
            if i < n_jpeg:
                Image.fromarray(pixels).save(jpeg, quality=JPEG_QUALITY)
            if i < n_fits:
                counts = pixels.mean(-1).astype(np.float32) * 40 + rng.normal(200, 8, (424, 424))
                fits.PrimaryHDU(counts.astype(np.float32)[::-1]).writeto(fit, overwrite=True)
        if i < n_jpeg:
            jpegs.append(jpeg)
        if i < n_fits:
            fits_files.append(fit)
    return jpegs, fits_files


def bench_model(model_name: str, image_size: int) -> Path:
    import keras

    from spiralarms.data.variants import VARIANTS
    from spiralarms.models import model_card
    from spiralarms.models.networks import build_model

    path = OUT / "predict" / f"{model_name}_{image_size}" / "model.keras"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        keras.utils.set_random_seed(0)
        build_model(model_name, 6, image_size, "standard").save(path)
        model_card.write(path, model_name, VARIANTS["6class"], "standard",
                         {"image_size": image_size, "crop_size": 224})
    return path


class Clock:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def rate(n, clock) -> dict:
    return {"images_per_s": round(n / clock.wall, 1),
            "cpu_ms_per_image": round(1000 * clock.cpu / n, 3)}


def time_bare(predictor, batch, n_images: int, call) -> dict:
    """The model alone on one preprocessed batch held in memory, n_images in all."""
    call(batch)
    calls = max(1, n_images // len(batch))
    with Clock() as clock:
        for _ in range(calls):
            call(batch)
    return rate(calls * len(batch), clock)


def time_job(predictor, paths, threads) -> dict:
    with Clock() as clock:
        table = predictor.predict(paths, threads=threads)
    assert (table["skip_code"] == "").all(), table["skip_reason"].unique()
    return rate(len(paths), clock)


def time_pipeline(predictor, paths, threads) -> dict:
    import numpy as np

    with Clock() as clock:
        n = sum(len(b["index"]) for b in predictor.dataset(paths, np.full(len(paths), np.nan),
                                                           threads))
    return rate(n, clock)


def time_chunked(predictor, paths, chunk_size, threads) -> dict:
    """A whole chunked run as the CLI does it (catalogue, split, chunk files, gather)."""
    import pandas as pd

    from spiralarms.predict import chunks

    work = OUT / "predict" / "chunked"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pd.DataFrame({"id_str": [p.stem for p in paths], "file_loc": [str(p) for p in paths]}) \
        .to_csv(work / "catalog.csv", index=False)
    settings = chunks.job_settings({"catalog": str(work / "catalog.csv"),
                                    "chunk_size": chunk_size})
    with Clock() as clock:
        summary = chunks.run_chunked(predictor, work / "catalog.csv", settings,
                                     work / "out.parquet", threads)
    assert summary["predicted"] == len(paths), summary
    return {**rate(len(paths), clock), "chunks": summary["chunks"]}


def median(runs, key):
    import numpy as np

    return float(np.median([r[key] for r in runs]))


def measure(args) -> dict:
    """One measurement (`args.only`) in this process: start-up, warm-up, then the timed run."""
    started = time.perf_counter()
    import numpy as np

    from spiralarms.predict.predictor import Predictor, configure_threads

    jpegs, fits_files = galaxies(args.images, args.fits_images)
    bare = args.only.startswith("bare") and args.only != "bare_model_share"
    pipeline_threads = configure_threads(args.threads, split=not bare)
    predictor = Predictor(bench_model(args.model, args.image_size), batch_size=args.batch_size)
    paths = fits_files if args.only.endswith("fits") else jpegs
    predictor.predict(paths[:args.batch_size], threads=pipeline_threads)  # trace once
    startup_s = time.perf_counter() - started
    if args.only.startswith("bare"):
        batch = next(iter(predictor.dataset(jpegs[:args.batch_size],
                                            np.full(args.batch_size, np.nan))))["image"].numpy()
        result = time_bare(predictor, batch, args.images, predictor.infer)
        result["predict_on_batch"] = time_bare(predictor, batch, args.images // 2,
                                               predictor.model.predict_on_batch)
    elif args.only.startswith("job"):
        result = time_job(predictor, paths, pipeline_threads)
    elif args.only.startswith("pipeline"):
        result = time_pipeline(predictor, paths, pipeline_threads)
    else:
        result = time_chunked(predictor, jpegs, args.chunk_size, pipeline_threads)
    return {**result, "startup_s": round(startup_s, 2), "pipeline_threads": pipeline_threads,
            "load_average_1min": round(os.getloadavg()[0], 2)}


def child(args, part: str) -> dict:
    command = [sys.executable, __file__, "--only", part, "--images", str(args.images),
               "--fits-images", str(args.fits_images), "--image-size", str(args.image_size),
               "--batch-size", str(args.batch_size), "--model", args.model,
               "--chunk-size", str(args.chunk_size)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{part} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    if args.only:
        print(json.dumps(measure(args)))
        return None
    galaxies(args.images, args.fits_images)  # made once, before any timing
    bench_model(args.model, args.image_size)
    parts = [p for p in PARTS if args.fits_images or not p.endswith("fits")]
    runs = {part: [] for part in parts}
    for repeat in range(args.repeats):
        order = parts[repeat % len(parts):] + parts[:repeat % len(parts)]
        for part in order:
            print(f"repeat {repeat + 1}/{args.repeats}: {part} ...", flush=True)
            runs[part].append(child(args, part))

    import keras
    import tensorflow as tf

    summary = {part: {"images_per_s_median": median(r, "images_per_s"),
                      "cpu_ms_per_image_median": median(r, "cpu_ms_per_image"), "runs": r}
               for part, r in runs.items()}
    bare = summary["bare"]["images_per_s_median"]
    job = summary["job_jpeg"]["images_per_s_median"]
    result = {
        "model": args.model, "image_size": args.image_size, "batch_size": args.batch_size,
        "images": args.images, "fits_images": args.fits_images, "repeats": args.repeats,
        "threads": args.threads or len(os.sched_getaffinity(0)),
        "startup_s": median(runs["job_jpeg"], "startup_s"), "feeds": summary,
        "ratio_job_to_bare": round(job / bare, 3),
        "ratio_job_to_bare_cpu": round(summary["bare"]["cpu_ms_per_image_median"]
                                       / summary["job_jpeg"]["cpu_ms_per_image_median"], 3),
        "goal_ratio": GOAL_RATIO, "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": {"cpus_usable": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "tensorflow": tf.__version__, "keras": keras.__version__,
                    "gpu": [g.name for g in tf.config.list_physical_devices("GPU")]},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "predict.json").write_text(json.dumps(result, indent=1))
    print_table(result)
    return result


def print_table(result):
    feeds = result["feeds"]
    print(f"\n{result['model']} {result['image_size']} px, batch {result['batch_size']}, "
          f"{result['images']} JPEG + {result['fits_images']} FITS galaxies (424 px), "
          f"{result['repeats']} repeats, {result['threads']} threads, GPU: "
          f"{result['machine']['gpu'] or 'none'}, load average {result['load_average_1min']}")
    print(f"{'measurement':<26} {'images/s':>9} {'CPU ms/img':>11}  runs (images/s)")
    for name, feed in feeds.items():
        runs = ", ".join(f"{r['images_per_s']:.0f}" for r in feed["runs"])
        print(f"{name:<26} {feed['images_per_s_median']:>9.0f} "
              f"{feed['cpu_ms_per_image_median']:>11.2f}  {runs}")
    ratio = result["ratio_job_to_bare"]
    verdict = "meets" if ratio >= result["goal_ratio"] else "misses"
    print(f"\nprediction job / bare model (all cores): {ratio:.2f}x by wall clock, "
          f"{result['ratio_job_to_bare_cpu']:.2f}x by CPU per image ({verdict} the goal "
          f">= {result['goal_ratio']}x)")
    fits_rate = feeds.get("job_fits", {}).get("images_per_s_median", float("nan"))
    print(f"JPEG vs FITS job: {feeds['job_jpeg']['images_per_s_median']:.0f} vs "
          f"{fits_rate:.0f} images/s; start-up (import, load, first batch): "
          f"{result['startup_s']:.1f} s per job")
    print(f"wrote {OUT / 'predict.json'}")


if __name__ == "__main__":
    main()
