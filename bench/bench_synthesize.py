"""Benchmark: synthetic GZ2 galaxies per second on one core (render, JPEG, catalogue, files).

    .venv/bin/python bench/bench_synthesize.py [--images 300] [--workers 1]

Prints the rate and writes results/bench/synthesize.json. `images_per_s` is wall-clock and
suffers from other jobs on a shared machine; `cpu_images_per_s` (main-process CPU time, exact
for --workers 1) is the figure to compare between machines and commits.
"""

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

from spiralarms.synthetic.generate import synthesize

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="galaxies to generate (mixed kinds)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "synthesize.json")
    args = parser.parse_args(argv)

    per_kind = max(1, args.images // 8)  # six arm classes, ellipticals and edge-ons alike
    with tempfile.TemporaryDirectory() as tmp:
        summary = synthesize(tmp, [per_kind] * 6, per_kind, per_kind, seed=args.seed,
                             workers=args.workers, progress=False)
    summary.pop("out_dir")
    result = {
        "benchmark": "synthesize",
        **summary,
        "cpu_images_per_s": (round(summary["n_images"] / summary["cpu_seconds"], 1)
                             if args.workers == 1 else None),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    print(f"synthesize: {result['n_images']} images in {result['seconds']} s on "
          f"{args.workers} worker(s): {result['images_per_s']} images/s wall, "
          f"{result['cpu_images_per_s']} images/s per CPU second "
          f"(load average {result['load_average_1min']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
