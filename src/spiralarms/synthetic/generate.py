"""Synthetic Galaxy Zoo 2 dataset in the real file formats (the embedded default dataset).

`synthesize` writes, under one folder:
- `zoo2MainSpecz.csv.gz`: the 233 catalogue columns with simulated volunteer votes
  (`spiralarms.synthetic.votes`);
- `gz2_filename_mapping.csv`: `objid, sample, asset_id`, in shuffled order (join by key);
- `images_gz2/images/<asset_id>.jpg`: 424x424 RGB JPEGs (a few mapping rows have no image);
- `masks.zip`: per image, `<asset_id>.png`, where its arms and its galaxy are in the 424 frame (a
  2-bit palette PNG of labels 0 sky, 1 galaxy, 2 arm: `spiralarms.synthetic.render.galaxy_mask`;
  read them with `spiralarms.synthetic.masks.read_masks`). Not a real-data file: for the XAI
  attribution measure only. One archive rather than a file per image: creating thousands of small
  files would cost more than drawing the masks;
- `truth.csv`: per galaxy `asset_id, dr7objid, kind` ('1'..'4', '5+', '?', 'elliptical',
  'edgeon', 'irregular', 'merger'; read it with `read_truth`), `arm_class` (0-5, -1 for
  non-targets), `n_arms` (the rendered arm number; 0 for a flocculent disc), `has_image`,
  `vote_scenario`, `volunteer_label` (the argmax of the debiased t11 fractions, the paper's
  rule), every drawn parameter and what the renderer measured on the image (`mag_r,
  r90_arcsec, psf_fwhm_arcsec, arm_snr, psf_arm_spacings, inclination_deg, bar, pitch_deg,
  flocculent`, ...: docs/synthetic-sky.md). For checks only: the pipeline never reads it;
- `volunteer_confusion.csv`: galaxies per renderer truth (rows) and volunteers' label
  (columns), also printed.

Contact sheets of the result are `spiralarms.synthetic.sheets`; the command line is
`python -m spiralarms.synthetic`.
"""

import gzip
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from spiralarms import gz2
from spiralarms.synthetic import sdss
from spiralarms.synthetic.masks import encode_mask, write_masks
from spiralarms.synthetic.render import (
    KIND_LABELS,
    KINDS,
    NON_TARGET_KINDS,
    draw_params,
    render_from_params,
)
from spiralarms.synthetic.votes import assign_scenarios, catalogue_votes

CATALOG_FILE = "zoo2MainSpecz.csv.gz"
MAPPING_FILE = "gz2_filename_mapping.csv"
IMAGE_DIR = "images_gz2/images"
TRUTH_FILE = "truth.csv"
MASK_FILE = "masks.zip"
CONFUSION_FILE = "volunteer_confusion.csv"
JPEG_QUALITY = sdss.JPEG_QUALITY


# ---------------------------------------------------------------- identifiers and positions

# Ranges of the real identifiers; specobjid and dr8objid exceed 2**53 (not exact as float64).
ID_RANGES = {
    "specobjid": (299_489_952_322_840_576, 3_300_000_000_000_000_000),
    "dr8objid": (1_237_645_879_551_066_262, 1_237_679_000_000_000_000),
    "dr7objid": (587_722_981_736_120_347, 588_848_901_000_000_000),
}


def unique_ids(rng, n, low, high):
    """n distinct int64 values in [low, high], in random order."""
    step = (high - low) // max(n, 1)
    ids = low + np.cumsum(rng.integers(1, max(step, 2), n, dtype=np.int64))
    return rng.permutation(ids)


def _sexagesimal(degrees, hours):
    """'HH:MM:SS.ss' for right ascension (hours=True), '+DD:MM:SS.s' for declination."""
    decimals = 2 if hours else 1
    sign = "-" if degrees < 0 else ("" if hours else "+")
    units = abs(degrees) / 15 if hours else abs(degrees)
    seconds = round(units * 3600, decimals)  # round once, so 59.999 s carries into the minutes
    whole, minutes = divmod(int(seconds // 60), 60)
    return f"{sign}{whole:02d}:{minutes:02d}:{seconds % 60:0{3 + decimals}.{decimals}f}"


def _identity_columns(n, rng):
    """Identifiers, sky positions and sample names of n galaxies (the SDSS north cap)."""
    frame = {name: unique_ids(rng, n, *bounds) for name, bounds in ID_RANGES.items()}
    frame["ra"] = np.round(rng.uniform(110, 260, n), 6)
    frame["dec"] = np.round(np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-5)),
                                                             np.sin(np.radians(65)), n))), 6)
    frame["rastring"] = [_sexagesimal(v, hours=True) for v in frame["ra"]]
    frame["decstring"] = [_sexagesimal(v, hours=False) for v in frame["dec"]]
    frame["sample"] = np.where(rng.random(n) < 0.8, "original", "extra")
    return pd.DataFrame(frame)


# ---------------------------------------------------------------- the dataset


def _kind_list(n_per_class, n_elliptical, n_edgeon, n_irregular=0, n_merger=0):
    """Galaxy kinds in class order, after checking the requested counts."""
    if isinstance(n_per_class, dict):
        counts = [0] * 6
        for key, value in n_per_class.items():
            if key in gz2.ARM_CLASS_NAMES:
                key = gz2.ARM_CLASS_NAMES.index(key)
            if key not in range(6):
                raise ValueError(f"n_per_class key {key!r}: use an arm class 0-5 or one of "
                                 f"{gz2.ARM_CLASS_NAMES}")
            counts[key] = value
    else:
        counts = list(n_per_class)
        if len(counts) != 6:
            raise ValueError(f"n_per_class needs 6 counts (classes {gz2.ARM_CLASS_NAMES}), "
                             f"got {len(counts)}")
    counts += [n_elliptical, n_edgeon, n_irregular, n_merger]
    for kind, count in zip(KINDS, counts):
        if int(count) != count or count < 0:
            raise ValueError(f"count for kind {KIND_LABELS[kind]!r} must be a whole number "
                             f">= 0, got {count!r}")
    return [kind for kind, count in zip(KINDS, counts) for _ in range(int(count))]


def _render_one(task):
    """Draw one galaxy's parameters, render it (the votes need what its image shows) and,
    unless its image is 'missing', write its JPEG.

    Returns the parameters (with the renderer's measurements) and the mask PNG bytes (None
    without an image or `with_mask`)."""
    seed, index, kind, path, size, with_mask = task
    rng = np.random.default_rng([seed, index])
    params = draw_params(kind, rng, size)
    mask = None
    if with_mask and path is not None:
        image, label = render_from_params(params, rng, masks=True)
        mask = encode_mask(label)
    else:
        image = render_from_params(params, rng)
    if path is not None:
        Image.fromarray(image).save(path, "JPEG", quality=JPEG_QUALITY)
    return params, mask


def _one_blas_thread():
    """Each renderer is one process on one core: threaded BLAS in the frame resampling would
    only fight the other workers (10x slower on a loaded 2-core machine, measured)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _render_all(tasks, workers, progress):
    """Run `_render_one` over tasks (in order), printing progress every 10 %."""
    start, done, results = time.perf_counter(), 0, []
    step = max(1, len(tasks) // 10)
    if workers > 1:
        # fork: the workers need no re-import of the caller's script (spawn would re-run an
        # unguarded script, e.g. a Snakemake `script:`); they use only numpy, scipy and PIL
        methods = multiprocessing.get_all_start_methods()
        pool = multiprocessing.get_context("fork" if "fork" in methods else "spawn").Pool(
            workers, initializer=_one_blas_thread)
        chunk = max(1, min(32, len(tasks) // (8 * workers)))
        iterator = pool.imap(_render_one, tasks, chunksize=chunk)
    else:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(1)
        pool, iterator = None, map(_render_one, tasks)
    try:
        for result in iterator:
            results.append(result)
            done += 1
            if progress and (done % step == 0 or done == len(tasks)):
                rate = done / (time.perf_counter() - start)
                print(f"synthesize: {done}/{len(tasks)} galaxies, {rate:.0f} galaxies/s",
                      flush=True)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        else:
            limits.restore_original_limits()
    return results, time.perf_counter() - start


def _write_csv_gz(frame, path):
    """gzip with a fixed header (no name, mtime 0) so the same data gives the same bytes."""
    text = frame.to_csv(index=False, lineterminator="\n").encode()
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                mtime=0) as zipped:
        zipped.write(text)


def synthesize(out_dir, n_per_class, n_elliptical, n_edgeon, seed, n_missing_images=0,
               workers=1, progress=True, size=424, masks=True, n_irregular=0, n_merger=0):
    """Write a synthetic GZ2 dataset (catalogue, filename map, JPEGs, masks, truth, the
    volunteers' confusion) under `out_dir` (`masks`: also the arm and galaxy mask of each
    image, in MASK_FILE). Non-targets: `n_elliptical`, `n_edgeon`, `n_irregular`, `n_merger`.

    n_per_class: 6 counts for arm classes 1, 2, 3, 4, 5+, can't tell (a list, or a dict keyed by
    class index or name). Each galaxy's randomness comes from (seed, index), so the files are
    byte-identical for a given seed whatever `workers` is. Returns counts and the images/s rate.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    kinds = _kind_list(n_per_class, n_elliptical, n_edgeon, n_irregular, n_merger)
    n = len(kinds)
    if n == 0:
        raise ValueError("no galaxies requested: give n_per_class, n_elliptical or n_edgeon > 0")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed={seed!r} must be a whole number >= 0")
    if not 0 <= n_missing_images <= n:
        raise ValueError(f"n_missing_images={n_missing_images} must be between 0 and the "
                         f"number of galaxies ({n})")
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    rng = np.random.default_rng([seed, 2**32 - 1])  # catalogue-wide draws, apart from galaxies
    kinds = [kinds[i] for i in rng.permutation(n)]  # mixed, as in the real catalogue
    identity = _identity_columns(n, rng)
    asset_ids = unique_ids(rng, n, 1, 3 * n + 10)
    missing = np.zeros(n, bool)
    missing[rng.choice(n, n_missing_images, replace=False)] = True

    out_dir = Path(out_dir)
    image_dir = out_dir / IMAGE_DIR
    image_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(seed, i, kinds[i], None if missing[i] else str(image_dir / f"{asset_ids[i]}.jpg"),
              size, masks) for i in range(n)]
    rendered, render_seconds = _render_all(tasks, workers, progress)
    all_params = [params for params, _ in rendered]
    if masks:
        write_masks(out_dir / MASK_FILE, {asset_id: mask for asset_id, (_, mask)
                                          in zip(asset_ids, rendered) if mask is not None})

    scenarios = assign_scenarios(kinds, rng)
    votes = [catalogue_votes(kind, params, np.random.default_rng([seed, i, 1]), scenarios[i])[0]
             for i, (kind, params) in enumerate(zip(kinds, all_params))]
    catalogue = pd.concat([identity, pd.DataFrame(votes)], axis=1)[gz2.CATALOG_COLUMNS]
    _write_csv_gz(catalogue, out_dir / CATALOG_FILE)

    mapping = pd.DataFrame({"objid": identity["dr7objid"], "sample": identity["sample"],
                            "asset_id": asset_ids}).iloc[rng.permutation(n)]
    mapping.to_csv(out_dir / MAPPING_FILE, index=False, lineterminator="\n")
    truth = _truth_table(kinds, all_params, identity, asset_ids, missing, scenarios, votes)
    truth.to_csv(out_dir / TRUTH_FILE, index=False, lineterminator="\n")
    confusion = volunteer_confusion(truth)
    confusion.to_csv(out_dir / CONFUSION_FILE, lineterminator="\n")

    seconds = time.perf_counter() - start
    n_images = int((~missing).sum())
    summary = {
        "out_dir": str(out_dir), "n_galaxies": n, "n_images": n_images,
        "n_missing_images": int(missing.sum()), "workers": workers,
        "per_kind": {KIND_LABELS[k]: kinds.count(k) for k in KINDS},
        "seconds": round(seconds, 3), "render_seconds": round(render_seconds, 3),
        # main-process CPU time: with workers=1, the cost free of other jobs on the machine
        "cpu_seconds": round(time.process_time() - cpu_start, 3),
        "images_per_s": round(n_images / seconds, 1) if seconds else None,
    }
    if progress:
        print("synthesize: volunteers' label (columns, argmax of debiased t11) against the "
              "renderer's truth (rows):\n" + confusion.to_string(), flush=True)
        print(f"synthesize: wrote {n} galaxies ({n_images} images) to {out_dir} in "
              f"{seconds:.1f} s: {summary['images_per_s']} images/s", flush=True)
    return summary


NON_TARGET_LABELS = [KIND_LABELS[k] for k in NON_TARGET_KINDS]
# truth.csv's leading columns, in this order (the selection-function report reads them)
TRUTH_COLUMNS = ["asset_id", "dr7objid", "kind", "arm_class", "n_arms", "has_image",
                 "vote_scenario", "volunteer_label", "mag_r", "r90_arcsec", "psf_fwhm_arcsec",
                 "arm_snr", "psf_arm_spacings", "inclination_deg", "bar", "pitch_deg",
                 "flocculent"]
# parameters a kind does not have (an elliptical has no bar): 0 rather than empty
ZERO_WHEN_ABSENT = ["bar", "pitch_deg", "flocculent", "inclination_deg", "n_arms"]


def volunteer_label(vote_row):
    """The paper's label of one catalogue row: the arm class whose debiased t11 fraction is
    largest (first wins a tie), or 'none' when no volunteer reached the question."""
    fractions = [vote_row[f"{a}_debiased"] for a in gz2.ARM_ANSWERS]
    if not any(fractions):
        return "none"
    return gz2.ARM_CLASS_NAMES[int(np.argmax(fractions))]


def _truth_table(kinds, all_params, identity, asset_ids, missing, scenarios, votes):
    params = pd.DataFrame(all_params).drop(columns=["kind"])
    for column in ZERO_WHEN_ABSENT:
        params[column] = params[column].fillna(0) if column in params else 0
    truth = pd.DataFrame({
        "asset_id": asset_ids,
        "dr7objid": identity["dr7objid"].to_numpy(),
        "kind": [KIND_LABELS[k] for k in kinds],
        "arm_class": [k if isinstance(k, int) else -1 for k in kinds],
        "has_image": (~missing).astype(int),
        "vote_scenario": scenarios,
        "volunteer_label": [volunteer_label(row) for row in votes],
    })
    truth = pd.concat([truth, params.round(4)], axis=1)
    truth["n_arms"] = truth["n_arms"].astype(int)
    rest = sorted(c for c in truth.columns if c not in TRUTH_COLUMNS)
    return truth[TRUTH_COLUMNS + rest]


def volunteer_confusion(truth):
    """Galaxies per renderer truth `kind` (rows) and volunteers' label (columns)."""
    rows = [k for k in ["1", "2", "3", "4", "5+", "?", *NON_TARGET_LABELS]
            if k in set(truth["kind"])]
    columns = [*gz2.ARM_CLASS_NAMES, "none"]
    table = pd.crosstab(truth["kind"], truth["volunteer_label"])
    table = table.reindex(index=rows, columns=columns, fill_value=0)
    table.index.name, table.columns.name = "truth", "volunteers"
    return table


def read_truth(out_dir):
    """truth.csv with `kind` kept as text ('1', ..., '5+', '?', 'elliptical', 'edgeon')."""
    return pd.read_csv(Path(out_dir) / TRUTH_FILE, dtype={"kind": str})
