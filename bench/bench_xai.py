"""Seconds per image for GradCAM++ and the two SmoothGrad paths (EfficientNetB0, weights=None).

    .venv/bin/python bench/bench_xai.py [--size 128] [--n-images 16] [--library-images 2]

Times whole calls, so model cloning and (compiled path) tracing are included, as a pipeline run
pays them once per experiment. The compiled SmoothGrad is also timed warm (traced function
reused), the rate for many images. The tf-keras-vis SmoothGrad path is slow and runs on a few images only; on those the
two paths are also compared. Prints and writes results/bench/xai.json.
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from spiralarms.models.networks import build_model
from spiralarms.xai import maps

REPO = Path(__file__).resolve().parents[1]


def flat_b0(size, n_classes=6):
    """The model the xai stage explains: the project's B0 in xai mode (flat graph, top_conv)."""
    keras.utils.set_random_seed(0)
    return build_model("b0", n_classes, size, "xai")


def seconds_per_image(call, n_images):
    """(seconds per image, maps) of one call that explains n_images."""
    start = time.perf_counter()
    maps = call()
    return (time.perf_counter() - start) / n_images, maps


def warm_compiled_smoothgrad_s_per_image(model, images, classes, samples, batch_size):
    """Seconds per image of the compiled SmoothGrad step once traced (no cloning, no tracing)."""
    step = maps.compile_mean_abs_gradient(maps.linear_output_copy(model))
    rng = np.random.RandomState(0)
    batches = [
        (
            maps.smoothgrad_noisy_copies(images[i : i + batch_size], samples, 0.2, rng),
            classes[i : i + batch_size],
        )
        for i in range(0, len(images), batch_size)
    ]
    step(tf.constant(batches[0][0]), tf.constant(batches[0][1], tf.int32))  # trace
    start = time.perf_counter()
    for noisy, batch_classes in batches:
        step(tf.constant(noisy), tf.constant(batch_classes, tf.int32)).numpy()
    return (time.perf_counter() - start) / len(images)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--n-images", type=int, default=16)
    parser.add_argument("--library-images", type=int, default=2)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "xai.json")
    args = parser.parse_args()

    model = flat_b0(args.size)
    images = np.random.default_rng(0).random((args.n_images, args.size, args.size, 1))
    images = images.astype(np.float32)
    classes = np.arange(args.n_images) % 6
    smooth = {"samples": args.samples, "noise": 0.2, "batch_size": args.batch_size}

    n = len(images)
    cam_s, _ = seconds_per_image(
        lambda: maps.gradcam_plus_plus(model, images, classes, batch_size=args.batch_size), n
    )
    compiled_s, _ = seconds_per_image(
        lambda: maps.smoothgrad(model, images, classes, method="compiled", **smooth), n
    )
    warm_s = warm_compiled_smoothgrad_s_per_image(
        model, images, classes, args.samples, args.batch_size
    )
    few, few_classes = images[: args.library_images], classes[: args.library_images]
    library_s, library_maps = seconds_per_image(
        lambda: maps.smoothgrad(model, few, few_classes, method="tf-keras-vis", **smooth), len(few)
    )
    compiled_few = maps.smoothgrad(model, few, few_classes, method="compiled", **smooth)

    result = {
        "model": f"EfficientNetB0 weights=None, {args.size}x{args.size}x1, flat head, 6 classes",
        "n_images": args.n_images,
        "batch_size": args.batch_size,
        "smoothgrad_samples": args.samples,
        "gradcam_plus_plus_s_per_image": round(cam_s, 4),
        "smoothgrad_compiled_s_per_image": round(compiled_s, 4),
        "smoothgrad_compiled_warm_s_per_image": round(warm_s, 4),
        "smoothgrad_tf_keras_vis_s_per_image": round(library_s, 4),
        "smoothgrad_tf_keras_vis_images": len(few),
        "smoothgrad_speedup": round(library_s / compiled_s, 1),
        "smoothgrad_speedup_warm": round(library_s / warm_s, 1),
        "smoothgrad_paths_max_abs_diff": float(np.abs(compiled_few - library_maps).max()),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
