"""Time write_shards against a plain file copy of the same JPEGs.

Goal: shard writing (read, check, serialize, write, hash) at >= 0.8x the rate of
`shutil.copyfile` of the same files; timed for both JPEG checks ("decode", "structure"). JPEGs are 424x424 synthetic galaxies of the real images'
average size, cached under results/bench/. Prints figures and writes results/bench/shards.json.

    .venv/bin/python bench/bench_shards.py [--images 2000] [--repeats 3] [--workers 2]
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures_gz2 import galaxy_jpeg

from spiralarms.data.shards import CHECKS, check_jpeg, write_shards

OUT = ROOT / "results" / "bench"


def cached_jpegs(n: int) -> Path:
    folder = OUT / f"jpegs_{n}"
    if len(list(folder.glob("*.jpg"))) != n:
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        for asset_id in range(1, n + 1):
            (folder / f"{asset_id}.jpg").write_bytes(galaxy_jpeg(asset_id))
        print(f"made {n} JPEGs in {time.perf_counter() - start:.1f} s")
    return folder


def bench_labels(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    asset_id = np.arange(1, n + 1, dtype=np.int64)
    return pd.DataFrame({
        "dr7objid": 587_722_981_741_363_294 + asset_id,
        "asset_id": asset_id,
        "arm_class": rng.integers(0, 6, n),
        "arm_fraction": rng.random(n),
        "subset": np.where(asset_id % 10 < 7, "train", "val"),
        "image": [f"{a}.jpg" for a in asset_id],
    }).sort_values("subset", kind="stable", ignore_index=True)


def time_copy(images: Path, names, scratch: Path) -> float:
    target = scratch / "copy"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    start = time.perf_counter()
    for name in names:
        shutil.copyfile(images / name, target / name)
    return time.perf_counter() - start


def time_shards(labels, images: Path, scratch: Path, workers: int, check: str) -> float:
    target = scratch / "shards"
    shutil.rmtree(target, ignore_errors=True)
    start = time.perf_counter()
    write_shards(labels, images, target, shard_size=256, workers=workers, check=check)
    return time.perf_counter() - start


def time_check(images: Path, names, decode: bool) -> float:
    blobs = [(images / name).read_bytes() for name in names]
    start = time.perf_counter()
    for blob in blobs:
        check_jpeg(blob, decode)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scratch", type=Path, default=OUT,
                        help="where copies and shards are written (default results/bench; "
                        "/dev/shm takes the disk out and leaves the CPU cost)")
    args = parser.parse_args()
    images = cached_jpegs(args.images)
    labels = bench_labels(args.images)
    names = list(labels["image"])
    megabytes = sum((images / n).stat().st_size for n in names) / 1e6
    start = time.perf_counter()
    import tensorflow  # noqa: F401  (paid once per process, not per shard set)
    import_s = time.perf_counter() - start

    copies, shards = [], {check: [] for check in CHECKS}
    args.scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        time_shards(labels, images, Path(scratch), args.workers, "decode")  # warm the page cache
        for _ in range(args.repeats):  # interleaved, so load from other processes hits all alike
            copies.append(time_copy(images, names, Path(scratch)))
            for check in CHECKS:
                shards[check].append(time_shards(labels, images, Path(scratch), args.workers,
                                                 check))

    def rate(seconds):
        return {"images_per_s": args.images / seconds, "mb_per_s": megabytes / seconds}

    result = {
        "images": args.images, "megabytes": megabytes, "workers": args.workers,
        "scratch": str(args.scratch),
        "tensorflow_import_s": import_s, "goal_ratio": 0.8,
        "copy": {"runs_s": copies, "best": rate(min(copies))},
    }
    print(f"{args.images} JPEGs, {megabytes:.1f} MB ({megabytes / args.images * 1000:.1f} KB avg), "
          f"{args.workers} workers, writing under {args.scratch}")
    print(f"plain copy:               {rate(min(copies))['images_per_s']:7.0f} img/s "
          f"{rate(min(copies))['mb_per_s']:6.1f} MB/s  runs {[round(c, 3) for c in copies]} s")
    for check in CHECKS:
        runs = shards[check]
        check_s = time_check(images, names, check == "decode")
        result[f"shards_{check}"] = {
            "runs_s": runs, "best": rate(min(runs)),
            "ratio_best": min(copies) / min(runs),
            "ratio_median": float(np.median(copies) / np.median(runs)),
            "check_jpeg_one_thread": rate(check_s),
        }
        r = result[f"shards_{check}"]
        print(f"write_shards ({check:9s}): {r['best']['images_per_s']:7.0f} img/s "
              f"{r['best']['mb_per_s']:6.1f} MB/s  runs {[round(x, 3) for x in runs]} s; "
              f"ratio to copy best {r['ratio_best']:.2f}, median {r['ratio_median']:.2f} "
              f"(goal >= 0.8); check_jpeg alone {r['check_jpeg_one_thread']['images_per_s']:.0f} "
              "img/s on 1 thread")
    print(f"tensorflow import {import_s:.1f} s (once per process, not in the timings)")
    (OUT / "shards.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
