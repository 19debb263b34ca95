"""Cut-out fetch rate against a local imitation of SkyServer with added latency.

The real services are far away (100-300 ms a request is typical) and publish no rate limit, so
what a fetch of 10^4 or 10^6 galaxies costs is set by latency x connections, until the client's
own requests-per-second limit binds. This starts tests/cutout_server.py on 127.0.0.1 (in its
own process, serving 64 pre-drawn images) with `--latency` seconds added to every answer
(default 0.2), fetches GZ2-framed 424 px JPEGs with
`spiralarms.acquire.cutouts.fetch_cutouts` at 1 and more connections (rate limit lifted), then
at the default polite settings, and prints images/s (also without the fixed start-up, measured
by a rerun that finds every file), the speed-up over one connection and the ideal
(min(connections / latency, rate limit)). Writes results/bench/cutouts.json.

    .venv/bin/python bench/bench_cutouts.py [--latency 0.2] [--connections 1 2 4 8 16]
"""

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

import pandas as pd
from cutout_server import CutoutServer

from spiralarms import atomic
from spiralarms.acquire.cutouts import CUTOUT_DEFAULTS, CutoutOptions, fetch_cutouts


def positions(path: Path, n: int, offset: float) -> Path:
    """n galaxies along a strip of sky, each with a petroR90_r of 5-15 arcsec."""
    frame = pd.DataFrame({"id_str": [f"g{i}" for i in range(n)],
                          "ra": [offset + 0.001 * i for i in range(n)], "dec": 10.0,
                          "petroR90_r": [5.0 + (i % 11) for i in range(n)]})
    frame.to_csv(path, index=False)
    return path


def measure(server, folder: Path, n: int, connections: int, rate: float, offset: float) -> dict:
    table = positions(folder / f"positions-{connections}-{rate}.csv", n, offset)
    options = CutoutOptions(base_url=server.base_url, concurrency=connections, rate=rate,
                            timeout=30)
    cpu, start = time.process_time(), time.perf_counter()
    summary = fetch_cutouts(table, folder / f"out-{connections}-{rate}", options, progress=False)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    assert summary["fetched"] == n, summary
    # the same again with every file there: the fixed cost (read the table, check the files,
    # write the manifest), which a rerun pays and the steady rate leaves out
    start = time.perf_counter()
    again = fetch_cutouts(table, folder / f"out-{connections}-{rate}", options, progress=False)
    rerun = time.perf_counter() - start
    assert again["fetched_now"] == 0, again
    return {"connections": connections, "rate_limit": rate, "images": n, "seconds": seconds,
            "images_per_s": n / seconds, "rerun_seconds": rerun,
            "steady_images_per_s": n / max(seconds - rerun, 1e-3),
            "client_cpu_ms_per_image": 1000 * cpu / n}


def serve(latency: float, connection) -> None:
    """The imitation server in its own process, so the client's CPU time is the client's."""
    with CutoutServer(latency=latency, distinct=64) as server:
        connection.send(server.base_url)
        connection.recv()  # until the benchmark is done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="about how long each measurement fetches")
    args = parser.parse_args()
    rows = []
    ours, theirs = multiprocessing.Pipe()
    server_process = multiprocessing.Process(target=serve, args=(args.latency, theirs))
    server_process.start()
    server = SimpleNamespace(base_url=ours.recv())
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        settings = [(c, 1000.0) for c in args.connections]
        settings.append((CUTOUT_DEFAULTS["concurrency"], CUTOUT_DEFAULTS["rate"]))
        for index, (connections, rate) in enumerate(settings):
            expected = min(connections / args.latency, rate)
            n = max(10, int(expected * args.seconds))
            rows.append(measure(server, folder, n, connections, rate, 50.0 * index))
            row = rows[-1]
            row["ideal_images_per_s"] = expected
            row["speedup"] = row["steady_images_per_s"] / rows[0]["steady_images_per_s"]
            print(f"{connections:>3} connections, rate limit {rate:>6g}/s: {n:>4} images in "
                  f"{row['seconds']:5.1f} s = {row['images_per_s']:5.1f}/s, "
                  f"{row['steady_images_per_s']:5.1f}/s without the {row['rerun_seconds']:.2f} s "
                  f"start-up ({row['speedup']:4.1f}x one connection; ideal {expected:5.1f}/s); "
                  f"client {row['client_cpu_ms_per_image']:.1f} ms CPU per image", flush=True)
    ours.send("done")
    server_process.join(timeout=10)
    result = {"latency_s": args.latency, "machine": platform.node(), "cpus": os.cpu_count(),
              "load_average": os.getloadavg(), "rows": rows}
    out = REPO / "results/bench/cutouts.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out, json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
