"""Time the labels stage on a catalogue of the real size (243,500 rows x 233 columns, gzip).

Goal: read_catalog + read_mapping + select in <= 10 s. The synthetic catalogue is cached under
results/bench/ so reruns only time the stage. Prints figures and writes results/bench/labels.json.

    .venv/bin/python bench/bench_labels.py [--rows 243500] [--repeats 3]
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures_gz2 import full_size_catalog, full_size_mapping

from spiralarms.gz2.catalog import read_catalog, read_mapping
from spiralarms.gz2.selection import select

OUT = ROOT / "results" / "bench"


def cached_inputs(rows: int):
    catalog = OUT / f"zoo2MainSpecz_synthetic_{rows}.csv.gz"
    mapping = OUT / f"gz2_filename_mapping_synthetic_{rows}.csv"
    if not catalog.exists() or not mapping.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        full_size_catalog(catalog.with_suffix(".tmp"), n=rows).rename(catalog)
        full_size_mapping(mapping, n=rows)
        print(f"made synthetic inputs in {time.perf_counter() - start:.1f} s")
    return catalog, mapping


def time_once(catalog_path, mapping_path):
    start = time.perf_counter()
    catalog = read_catalog(catalog_path)
    read_s = time.perf_counter() - start
    mapping = read_mapping(mapping_path)
    mapping_s = time.perf_counter() - start - read_s
    labels, report = select(catalog, mapping, None, {})
    total_s = time.perf_counter() - start
    return {"read_catalog_s": read_s, "read_mapping_s": mapping_s,
            "select_s": total_s - read_s - mapping_s, "total_s": total_s,
            "rows_read": report["rows_read"], "selected": report["selected"],
            "labelled_rows": len(labels)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=243_500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    catalog, mapping = cached_inputs(args.rows)
    runs = [time_once(catalog, mapping) for _ in range(args.repeats)]
    best = min(runs, key=lambda r: r["total_s"])
    result = {"rows": args.rows, "catalog_bytes": catalog.stat().st_size, "goal_s": 10.0,
              "best": best, "runs": runs}
    for r in runs:
        print(f"read_catalog {r['read_catalog_s']:.2f} s, read_mapping {r['read_mapping_s']:.2f} s, "
              f"select {r['select_s']:.2f} s, total {r['total_s']:.2f} s "
              f"({r['selected']} selected)")
    print(f"best total {best['total_s']:.2f} s for {args.rows} rows (goal <= 10 s)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "labels.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
