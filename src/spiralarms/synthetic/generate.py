"""Synthetic Galaxy Zoo 2 dataset in the real file formats (the embedded default dataset).

`synthesize` writes, under one folder:
- `zoo2MainSpecz.csv.gz`: the 233 catalogue columns with simulated volunteer votes;
- `gz2_filename_mapping.csv`: `objid, sample, asset_id`, in shuffled order (join by key);
- `images_gz2/images/<asset_id>.jpg`: 424x424 RGB JPEGs (a few mapping rows have no image);
- `masks.zip`: per image, `<asset_id>.png`, where its arms and its galaxy are in the 424 frame (a
  2-bit palette PNG of labels 0 sky, 1 galaxy, 2 arm: `spiralarms.synthetic.render.galaxy_mask`; read them
  with `read_masks`). Not a real-data file: for the XAI attribution measure only. One archive
  rather than a file per image: creating thousands of small files would cost more than drawing
  the masks;
- `truth.csv`: per galaxy `asset_id, dr7objid, kind` ('1'..'4', '5+', '?', 'elliptical',
  'edgeon'; read it with `read_truth`), `arm_class` (0-5, -1 for non-targets), `n_arms` (the
  rendered arm number, also for "can't tell"), `has_image`, `vote_scenario` and the render
  parameters. For checks only: the pipeline never reads it.

Votes follow the GZ2 decision tree, one simulated volunteer at a time, so counts, weights and
fractions are consistent. Most spirals get a clear majority for their true arm number; a few get
ambiguous or misread votes, too few votes, or fail one of the paper's cuts, so the selection
rejects some galaxies for every reason, as on the real catalogue.

`_flag` rule (documented choice): 1 when the answer's debiased fraction is >= 0.8 (the
Willett et al. 2013 "clean" threshold), else 0.
"""

import argparse
import gzip
import io
import multiprocessing
import struct
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from spiralarms import gz2
from spiralarms.synthetic.render import (
    KIND_LABELS,
    KINDS,
    MASK_ARM,
    MASK_GALAXY,
    MASK_SKY,
    check_kind,
    draw_params,
    render_from_params,
)

CATALOG_FILE = "zoo2MainSpecz.csv.gz"
MAPPING_FILE = "gz2_filename_mapping.csv"
IMAGE_DIR = "images_gz2/images"
TRUTH_FILE = "truth.csv"
MASK_FILE = "masks.zip"
MASK_PALETTE = [0, 0, 0, 128, 128, 128, 255, 255, 255]  # sky black, galaxy grey, arms white
FLAG_THRESHOLD = 0.8
JPEG_QUALITY = 90

# How a galaxy's volunteers behave, per arm-class galaxy (probabilities; the rest are "clean").
# Each non-clean scenario makes the galaxy fail one cut or the flag, or gives it a wrong label.
VOTE_SCENARIOS = {
    "looks_smooth": 0.015,   # features fraction below the 0.43 cut
    "looks_edgeon": 0.015,   # not-edge-on fraction below 0.715
    "no_spiral": 0.015,      # spiral fraction below 0.619
    "few_votes": 0.012,      # too few classifications for the vote cut
    "ambiguous": 0.025,      # no clean majority on the arm number: flag 0
    "misread": 0.025,        # a clean majority for a neighbouring arm number: wrong label
}


# ---------------------------------------------------------------- votes


def _ordered_levels(n, centre, width):
    """Probabilities over n ordered answers, peaked at `centre` (a fractional answer index)."""
    p = np.exp(-0.5 * ((np.arange(n) - centre) / width) ** 2)
    return p / p.sum()


def _spread(n, true, p_true, rng, neighbour_share=0.6):
    """Answer probabilities with `p_true` on `true`, the rest mostly on its neighbours."""
    rest = np.full(n, 0.0)
    for j in (true - 1, true + 1):
        if 0 <= j < n:
            rest[j] += neighbour_share
    rest += (1 - neighbour_share) / n * rng.uniform(0.5, 1.5, n)
    rest[true] = 0
    return (1 - p_true) * rest / rest.sum() + p_true * (np.arange(n) == true)


def _arm_votes(arm_class, scenario, rng):
    """t11 answer probabilities for a spiral of `arm_class` (0..5)."""
    if arm_class == 5:
        neighbour = int(rng.choice([0, 1, 1, 2]))  # uncountable arms are mostly called "2"
    else:
        neighbour = arm_class + (1 if arm_class == 0 or (arm_class < 4 and rng.random() < 0.5)
                                 else -1)
    if scenario == "misread":
        return _spread(6, neighbour, rng.uniform(0.88, 0.97), rng, neighbour_share=0.8)
    p_true = rng.uniform(0.45, 0.7) if scenario == "ambiguous" else rng.uniform(0.94, 0.995)
    p = _spread(6, arm_class, p_true, rng)
    if scenario == "ambiguous":  # the runner-up takes most of what is left
        p[neighbour] += 0.6 * (1 - p_true)
        p /= p.sum()
    return p


def _latent_answers(kind, params, scenario, rng):
    """Per task, the answer probabilities a careful volunteer would have for this galaxy."""
    u = rng.uniform
    if kind == "elliptical":
        smooth = u(0.75, 0.97)
        t01 = [smooth, (1 - smooth) * 0.85, (1 - smooth) * 0.15]
        edgeon, spiral = 0.1, u(0.02, 0.2)
    elif kind == "edgeon":
        features = u(0.7, 0.95)
        t01 = [0.99 - features, features, 0.01]
        edgeon, spiral = u(0.82, 0.98), u(0.1, 0.5)
    else:
        clear = scenario == "few_votes"  # an obvious spiral that few volunteers saw
        features = u(0.2, 0.4) if scenario == "looks_smooth" else u(0.95 if clear else 0.7, 0.97)
        t01 = [0.99 - features, features, 0.01]
        edgeon = u(0.4, 0.65) if scenario == "looks_edgeon" else u(0.0, 0.01 if clear else 0.06)
        spiral = u(0.3, 0.55) if scenario == "no_spiral" else u(0.98 if clear else 0.85, 0.99)
    bt = params.get("bt", 0.3)
    arm_class = kind if isinstance(kind, int) else int(rng.integers(0, 6))
    odd = u(0.02, 0.2)
    return {
        "t01_smooth_or_features": t01,
        "t02_edgeon": [edgeon, 1 - edgeon],
        "t03_bar": [odd + 0.1, 0.9 - odd],
        "t04_spiral": [spiral, 1 - spiral],
        "t05_bulge_prominence": _ordered_levels(4, 0.5 + 8 * bt, 0.7),
        "t06_odd": [odd, 1 - odd],
        "t07_rounded": _ordered_levels(3, 2 * (1 - params.get("bulge_q", 0.9)) / 0.4, 0.6),
        "t08_odd_feature": rng.dirichlet(np.full(7, 0.7)),
        "t09_bulge_shape": _ordered_levels(3, 0.0 if bt > 0.1 else 2.0, 0.8),
        "t10_arms_winding": _ordered_levels(3, (params.get("pitch_deg", 20) - 12) / 10, 0.6),
        "t11_arms_number": _arm_votes(arm_class, scenario, rng),
    }


# Who sees a task: (earlier task, answers that lead there); None = every volunteer.
TASK_ROUTE = {
    "t01_smooth_or_features": None,
    "t02_edgeon": [("t01_smooth_or_features", (1,))],
    "t03_bar": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (1,))],
    "t04_spiral": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (1,))],
    "t05_bulge_prominence": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (1,))],
    "t06_odd": [("t01_smooth_or_features", (0, 1))],
    "t07_rounded": [("t01_smooth_or_features", (0,))],
    "t08_odd_feature": [("t06_odd", (0,))],
    "t09_bulge_shape": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (0,))],
    "t10_arms_winding": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (1,)),
                         ("t04_spiral", (0,))],
    "t11_arms_number": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (1,)),
                        ("t04_spiral", (0,))],
}


def _simulate_votes(latent, n_volunteers, rng, careless_rate=0.15, care=(0.93, 1.0)):
    """Every volunteer answers every task they reach; careless ones answer more at random.

    Returns per task (counts, weights): GZ2 down-weights volunteers who disagree with the
    majority, which here are the careless ones.
    """
    careful = rng.random(n_volunteers) >= careless_rate
    consistency = np.where(careful, rng.uniform(*care, n_volunteers),
                           rng.uniform(0.2, 0.8, n_volunteers))
    weight = np.minimum(1.0, (consistency / 0.6) ** 4)
    answers, tallies = {}, {}
    for task, route in TASK_ROUTE.items():
        p = np.asarray(latent[task], dtype=float)
        probs = consistency[:, None] * p + (1 - consistency[:, None]) / len(p)
        cumulative = probs.cumsum(axis=1)
        choice = (rng.random(n_volunteers)[:, None] > cumulative).sum(axis=1)
        answers[task] = np.minimum(choice, len(p) - 1)
        reached = np.ones(n_volunteers, bool)
        for earlier, allowed in route or []:
            leads_here = np.zeros(len(gz2.TASKS[earlier]), bool)
            leads_here[list(allowed)] = True
            reached &= leads_here[answers[earlier]]
        chosen = answers[task][reached]
        tallies[task] = (np.bincount(chosen, minlength=len(p)),
                         np.bincount(chosen, weights=weight[reached], minlength=len(p)))
    return tallies


def _task_columns(task, counts, weights, rng):
    """The six catalogue columns of each answer of one task."""
    n, w = counts.sum(), weights.sum()
    fraction = counts / n if n else np.zeros(len(counts))
    weighted = weights / w if w else np.zeros(len(counts))
    # Debiasing (Hart+16) shifts fractions a little; renormalised so a task still sums to 1.
    debiased = weighted * np.exp(rng.normal(0, 0.03, len(counts)))
    debiased = debiased / debiased.sum() if debiased.sum() else debiased
    debiased = np.round(debiased, 3)
    columns = zip(counts.tolist(), np.round(weights, 3).tolist(), np.round(fraction, 3).tolist(),
                  np.round(weighted, 3).tolist(), debiased.tolist(),
                  (debiased >= FLAG_THRESHOLD).astype(int).tolist())
    row = {}
    for answer, values in zip(gz2.TASKS[task], columns):
        for suffix, value in zip(gz2.ANSWER_SUFFIXES, values):
            row[f"{task}_{answer}_{suffix}"] = value
    return row


def _draw_scenario(kind, rng):
    if not isinstance(kind, int):
        return "non_target"
    pick = rng.random()
    for scenario, p in VOTE_SCENARIOS.items():
        if pick < p:
            return scenario
        pick -= p
    return "clean"


def assign_scenarios(kinds, rng, exact_from=50):
    """Vote scenarios for a whole catalogue.

    From `exact_from` arm-class galaxies on, each scenario gets round(rate * n) galaxies and at
    least one, so the selection rejects some galaxies for every reason even in a small demo.
    """
    arm_galaxies = [i for i, kind in enumerate(kinds) if isinstance(kind, int)]
    scenarios = ["non_target"] * len(kinds)
    if len(arm_galaxies) < exact_from:
        for i in arm_galaxies:
            scenarios[i] = _draw_scenario(kinds[i], rng)
        return scenarios
    shuffled = iter(rng.permutation(arm_galaxies))
    for scenario, rate in VOTE_SCENARIOS.items():
        for _ in range(max(1, round(rate * len(arm_galaxies)))):
            scenarios[next(shuffled)] = scenario
    for i in shuffled:
        scenarios[i] = "clean"
    return scenarios


def catalogue_votes(kind, params, rng, scenario=None):
    """Vote columns, `total_classifications` and `total_votes` of one galaxy, and its scenario
    (drawn from VOTE_SCENARIOS unless given)."""
    kind = check_kind(kind)
    if scenario is None:
        scenario = _draw_scenario(kind, rng)
    elif scenario not in VOTE_SCENARIOS and scenario not in ("clean", "non_target"):
        raise ValueError(f"unknown vote scenario {scenario!r}; use 'clean' or one of "
                         f"{list(VOTE_SCENARIOS)}")
    few = scenario == "few_votes"
    # two volunteers cast ~16 votes: below the cut of 20 whatever they answer
    n_volunteers = 2 if few else int(np.clip(round(rng.normal(46, 8)), 28, 80))
    # the two volunteers of a sparsely classified galaxy are careful, so only the vote cut
    # removes it
    tallies = _simulate_votes(_latent_answers(kind, params, scenario, rng), n_volunteers, rng,
                              careless_rate=0.0 if few else 0.15,
                              care=(1.0, 1.0) if few else (0.93, 1.0))
    row = {"total_classifications": n_volunteers,
           "total_votes": int(sum(c.sum() for c, _ in tallies.values()))}
    for task, (counts, weights) in tallies.items():
        row.update(_task_columns(task, counts, weights, rng))
    row["gz2class"] = gz2_class(row)
    return row, scenario


def _winner(row, task):
    fractions = [row[f"{task}_{a}_weighted_fraction"] for a in gz2.TASKS[task]]
    return int(np.argmax(fractions))


def gz2_class(row):
    """GZ2 morphology string from the majority answers, e.g. 'Er', 'Ser', 'SBc2m', 'Sc?t(r)'."""
    t01 = _winner(row, "t01_smooth_or_features")
    if t01 == 2:
        return "A"
    if t01 == 0:
        name = "E" + "ric"[_winner(row, "t07_rounded")]
    elif _winner(row, "t02_edgeon") == 0:
        name = "Se" + "rbn"[_winner(row, "t09_bulge_shape")]
    else:
        name = "S" + ("B" if _winner(row, "t03_bar") == 0 else "")
        name += "dcba"[_winner(row, "t05_bulge_prominence")]
        if _winner(row, "t04_spiral") == 0:
            name += "1234+?"[_winner(row, "t11_arms_number")]
            name += "tml"[_winner(row, "t10_arms_winding")]
    if _winner(row, "t06_odd") == 0:
        name += "(" + "rldiomu"[_winner(row, "t08_odd_feature")] + ")"
    return name


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


def _kind_list(n_per_class, n_elliptical, n_edgeon):
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
    counts += [n_elliptical, n_edgeon]
    for kind, count in zip(KINDS, counts):
        if int(count) != count or count < 0:
            raise ValueError(f"count for kind {KIND_LABELS[kind]!r} must be a whole number "
                             f">= 0, got {count!r}")
    return [kind for kind, count in zip(KINDS, counts) for _ in range(int(count))]


# ---------------------------------------------------------------- arm and galaxy masks


def _png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def encode_mask(label) -> bytes:
    """A label image (0 sky, 1 galaxy, 2 arm) as a 2-bit palette PNG (sky black, galaxy grey,
    arms white): about 1 kB and 0.1 ms for a 424 frame, the same bytes for the same labels.

    Written here rather than by PIL (which reads it back): packing only the rows that hold the
    galaxy halves the cost, and the masks are drawn for every synthetic image."""
    label = np.ascontiguousarray(label, dtype=np.uint8)
    if label.ndim != 2 or label.max(initial=0) > MASK_ARM:
        raise ValueError(f"a mask is a 2-D image of labels {MASK_SKY}, {MASK_GALAXY} and "
                         f"{MASK_ARM}; got shape {label.shape}, max {label.max(initial=0)}")
    height, width = label.shape
    row_bytes = -(-width // 4)  # four 2-bit pixels per byte
    rows = np.zeros((height, 1 + row_bytes), np.uint8)  # each row: filter type 0, then pixels
    used = np.flatnonzero(label.max(axis=1))
    if len(used):
        top, bottom = used[0], used[-1] + 1
        part = label[top:bottom]
        if width % 4:
            part = np.pad(part, ((0, 0), (0, 4 * row_bytes - width)))
        quads = part.reshape(bottom - top, row_bytes, 4)
        packed = rows[top:bottom, 1:]
        np.left_shift(quads[..., 0], 6, out=packed)
        packed |= quads[..., 1] << 4
        packed |= quads[..., 2] << 2
        packed |= quads[..., 3]
    header = struct.pack(">IIBBBBB", width, height, 2, 3, 0, 0, 0)  # 2-bit, palette
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"PLTE", bytes(MASK_PALETTE))
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + _png_chunk(b"IEND", b""))


def decode_mask(data, name="mask") -> np.ndarray:
    """The (H, W) uint8 labels (MASK_SKY 0, MASK_GALAXY 1, MASK_ARM 2) of `encode_mask` bytes."""
    with Image.open(io.BytesIO(data)) as mask:
        if mask.mode != "P":
            raise ValueError(f"{name}: a mask is a palette PNG of labels 0-2, got mode "
                             f"{mask.mode!r}")
        label = np.asarray(mask)
    if label.max(initial=0) > MASK_ARM:
        raise ValueError(f"{name}: mask labels are {MASK_SKY}, {MASK_GALAXY} and {MASK_ARM}, "
                         f"found {label.max()}")
    return label


def write_masks(path, masks):
    """Write {asset_id: PNG bytes} as a zip of `<asset_id>.png` members, stored (PNG is
    compressed already) with fixed timestamps, so the same masks give the same bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for asset_id, data in masks.items():
            info = zipfile.ZipInfo(f"{int(asset_id)}.png", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


def read_masks(path, asset_ids=None) -> dict:
    """{asset_id: (H, W) labels} from a masks.zip, for `asset_ids` (default all). A requested
    galaxy without a mask (no image) raises KeyError naming it."""
    with zipfile.ZipFile(path) as archive:
        names = {int(Path(name).stem): name for name in archive.namelist()}
        wanted = names if asset_ids is None else [int(a) for a in asset_ids]
        absent = [a for a in wanted if a not in names]
        if absent:
            raise KeyError(f"{path} holds no mask for asset_id(s) {absent[:10]}"
                           + (f" and {len(absent) - 10} more" if len(absent) > 10 else ""))
        return {a: decode_mask(archive.read(names[a]), f"{path}:{names[a]}") for a in wanted}


def _render_one(task):
    """Draw one galaxy's parameters and, unless its image is 'missing', write its JPEG.

    Returns the parameters and the mask PNG bytes (None without an image or `with_mask`)."""
    seed, index, kind, path, size, with_mask = task
    rng = np.random.default_rng([seed, index])
    params = draw_params(kind, rng, size)
    mask = None
    if path is not None:
        if with_mask:
            image, label = render_from_params(params, rng, masks=True)
            mask = encode_mask(label)
        else:
            image = render_from_params(params, rng)
        Image.fromarray(image).save(path, "JPEG", quality=JPEG_QUALITY)
    return params, mask


def _render_all(tasks, workers, progress):
    """Run `_render_one` over tasks (in order), printing progress every 10 %."""
    start, done, results = time.perf_counter(), 0, []
    step = max(1, len(tasks) // 10)
    if workers > 1:
        # fork: the workers need no re-import of the caller's script (spawn would re-run an
        # unguarded script, e.g. a Snakemake `script:`); they use only numpy, scipy and PIL
        methods = multiprocessing.get_all_start_methods()
        pool = multiprocessing.get_context("fork" if "fork" in methods else "spawn").Pool(workers)
        chunk = max(1, min(32, len(tasks) // (8 * workers)))
        iterator = pool.imap(_render_one, tasks, chunksize=chunk)
    else:
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
    return results, time.perf_counter() - start


def _write_csv_gz(frame, path):
    """gzip with a fixed header (no name, mtime 0) so the same data gives the same bytes."""
    text = frame.to_csv(index=False, lineterminator="\n").encode()
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                mtime=0) as zipped:
        zipped.write(text)


def synthesize(out_dir, n_per_class, n_elliptical, n_edgeon, seed, n_missing_images=0,
               workers=1, progress=True, size=424, masks=True):
    """Write a synthetic GZ2 dataset (catalogue, filename map, JPEGs, masks, truth) under
    `out_dir` (`masks`: also the arm and galaxy mask of each image, in MASK_FILE).

    n_per_class: 6 counts for arm classes 1, 2, 3, 4, 5+, can't tell (a list, or a dict keyed by
    class index or name). Each galaxy's randomness comes from (seed, index), so the files are
    byte-identical for a given seed whatever `workers` is. Returns counts and the images/s rate.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    kinds = _kind_list(n_per_class, n_elliptical, n_edgeon)
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
    _truth_table(kinds, all_params, identity, asset_ids, missing, scenarios).to_csv(
        out_dir / TRUTH_FILE, index=False, lineterminator="\n")

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
        print(f"synthesize: wrote {n} galaxies ({n_images} images) to {out_dir} in "
              f"{seconds:.1f} s: {summary['images_per_s']} images/s", flush=True)
    return summary


def _truth_table(kinds, all_params, identity, asset_ids, missing, scenarios):
    params = pd.DataFrame(all_params).drop(columns=["kind", "n_arms"])
    truth = pd.DataFrame({
        "asset_id": asset_ids,
        "dr7objid": identity["dr7objid"].to_numpy(),
        "kind": [KIND_LABELS[k] for k in kinds],
        "arm_class": [k if isinstance(k, int) else -1 for k in kinds],
        "n_arms": [p["n_arms"] for p in all_params],
        "has_image": (~missing).astype(int),
        "vote_scenario": scenarios,
    })
    return pd.concat([truth, params[sorted(params.columns)].round(4)], axis=1)


def read_truth(out_dir):
    """truth.csv with `kind` kept as text ('1', ..., '5+', '?', 'elliptical', 'edgeon')."""
    return pd.read_csv(Path(out_dir) / TRUTH_FILE, dtype={"kind": str})


# ---------------------------------------------------------------- contact sheet


ROW_ORDER = ["1", "2", "3", "4", "5+", "?", "elliptical", "edgeon"]
ROW_TITLES = {"1": "1 arm", "2": "2 arms", "3": "3 arms", "4": "4 arms", "5+": "5+ arms",
              "?": "can't tell", "elliptical": "elliptical", "edgeon": "edge-on"}


def model_view(image, crop=224, side=64):
    """What the demo model sees: the central crop, channel-mean greyscale, downsampled."""
    height, width = image.shape[:2]
    top, left = (height - crop) // 2, (width - crop) // 2
    grey = image[top:top + crop, left:left + crop].astype(np.float32).mean(axis=2)
    return np.asarray(Image.fromarray(grey.astype(np.uint8)).resize((side, side),
                                                                     Image.BILINEAR))


def contact_sheet(out_dir, png_path, per_class=6):
    """PNG grid, a row per kind: the 424 px frames, then a second PNG (`<name>_model_view.png`)
    of the same galaxies as the model sees them (central 224 crop, 64 px greyscale)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = read_truth(out_dir)
    truth = truth[truth["has_image"] == 1]
    rows = [(k, truth[truth["kind"] == k].head(per_class)) for k in ROW_ORDER]
    rows = [(k, group) for k, group in rows if len(group)]
    if not rows:
        raise ValueError(f"{Path(out_dir) / TRUTH_FILE} lists no galaxies with images")
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    outputs = [png_path, png_path.with_name(png_path.stem + "_model_view.png")]
    for path, view in zip(outputs, ["frame", "model"]):
        fig, axes = plt.subplots(len(rows), per_class, figsize=(1.6 * per_class, 1.7 * len(rows)),
                                 squeeze=False)
        for (kind, group), ax_row in zip(rows, axes):
            galaxies = [g for _, g in group.iterrows()] + [None] * per_class
            for ax, galaxy in zip(ax_row, galaxies):
                ax.set_xticks([])
                ax.set_yticks([])
                if galaxy is None:
                    ax.axis("off")
                    continue
                image = np.asarray(Image.open(
                    Path(out_dir) / IMAGE_DIR / f"{galaxy['asset_id']}.jpg").convert("RGB"))
                if view == "model":
                    ax.imshow(model_view(image), cmap="gray", vmin=0, vmax=255)
                else:
                    ax.imshow(image)
            ax_row[0].set_ylabel(ROW_TITLES[kind], fontsize=10)
        title = ("424 px frames" if view == "frame"
                 else "model input: central 224 px crop, greyscale, 64 px")
        fig.suptitle(f"synthetic GZ2: {title}", fontsize=11)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
    return outputs


# ---------------------------------------------------------------- command line


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m spiralarms.synthetic.generate",
        description="Write a synthetic Galaxy Zoo 2 dataset in the real file formats.")
    parser.add_argument("out_dir")
    parser.add_argument("--per-class", type=int, nargs="+", default=[50],
                        help="galaxies per arm class (1 value for all six, or 6 values)")
    parser.add_argument("--elliptical", type=int, default=20)
    parser.add_argument("--edgeon", type=int, default=20)
    parser.add_argument("--missing-images", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--contact-sheet", help="also write this PNG (and *_model_view.png)")
    args = parser.parse_args(argv)
    per_class = args.per_class * 6 if len(args.per_class) == 1 else args.per_class
    synthesize(args.out_dir, per_class, args.elliptical, args.edgeon, args.seed,
               n_missing_images=args.missing_images, workers=args.workers)
    if args.contact_sheet:
        for path in contact_sheet(args.out_dir, args.contact_sheet):
            print(f"contact sheet: {path}")


if __name__ == "__main__":
    main()
