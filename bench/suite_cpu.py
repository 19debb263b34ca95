"""Where the test suite's CPU goes, per module and per test, from a run with SPIRALARMS_TEST_CPU.

    SPIRALARMS_TEST_CPU=results/bench/suite_cpu.txt make test
    .venv/bin/python bench/suite_cpu.py results/bench/suite_cpu.txt [--top 20]

`make test` is CPU-bound on 2 cores (its wall time is about half its CPU time), so CPU seconds,
not wall seconds, say what a change saves; they also move less with the shared host's load.
Each line of the file is "<cpu s> <wall s> <end, unix s> <worker> <node id>"
(tests/conftest.py); the CPU of a test counts its worker and every process it waited for
(Snakemake and its jobs), not SLURM's jobs. Per worker: the seconds its tests ran and how long
before the last test of the run it finished (a worker idle at the end is time a reordering of
tests/conftest.py's LONGEST_FIRST could win back).
"""

import argparse
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple


class Record(NamedTuple):
    """One line of the file: one test."""

    cpu: float
    wall: float
    end: float
    worker: str
    node: str


def read(path: Path) -> list:
    """A Record per line; a line that does not parse names the file and line."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            cpu, wall, end, worker, node = line.split(" ", 4)
            rows.append(Record(float(cpu), float(wall), float(end), worker, node))
        except ValueError:
            raise SystemExit(f"{path}:{number}: expected '<cpu s> <wall s> <end s> <worker> "
                             f"<node id>', got {line!r}") from None
    return rows


def per_module(rows) -> dict:
    """{module file: [cpu, wall, tests]}"""
    modules = defaultdict(lambda: [0.0, 0.0, 0])
    for row in rows:
        entry = modules[row.node.split("::")[0]]
        entry[0] += row.cpu
        entry[1] += row.wall
        entry[2] += 1
    return dict(modules)


def per_worker(rows) -> dict:
    """{worker: (seconds its tests ran, seconds it finished before the run's last test)}"""
    last = max(row.end for row in rows)
    workers = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        workers[row.worker][0] += row.wall
        workers[row.worker][1] = max(workers[row.worker][1], row.end)
    return {w: (busy, last - end) for w, (busy, end) in sorted(workers.items())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    if not args.file.is_file():
        raise SystemExit(f"{args.file}: no such file; record one with "
                         f"SPIRALARMS_TEST_CPU={args.file} make test")
    rows = read(args.file)
    if not rows:
        raise SystemExit(f"{args.file}: no tests recorded")
    total = sum(row.cpu for row in rows)
    print(f"{len(rows)} tests, {total:.0f} CPU seconds ({total / 60:.1f} min)\n")
    for worker, (busy, idle_at_end) in per_worker(rows).items():
        print(f"worker {worker}: tests ran {busy:.0f} s, finished {idle_at_end:.0f} s before "
              "the last test")
    print(f"\n{'module':40s} {'CPU s':>7s} {'share':>6s} {'wall s':>7s} {'tests':>6s}")
    modules = per_module(rows)
    for name, (cpu, wall, n) in sorted(modules.items(), key=lambda kv: -kv[1][0])[:args.top]:
        print(f"{name:40s} {cpu:7.0f} {cpu / total:6.1%} {wall:7.0f} {n:6d}")
    print(f"\n{'test':90s} {'CPU s':>7s} {'wall s':>7s}")
    for row in sorted(rows, reverse=True)[:args.top]:
        print(f"{row.node[:90]:90s} {row.cpu:7.1f} {row.wall:7.1f}")


if __name__ == "__main__":
    main()
