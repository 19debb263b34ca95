"""The paper's sample: arm-number labels, per-class cap and split (docs/method.md, first table).

Default settings reproduce the notebook's membership exactly:
- cuts on the consistency-weighted fractions (features >= 0.43, not edge-on >= 0.715,
  spiral >= 0.619) and the vote chain on `total_votes` (>= 20 at every step, bug B13 kept);
- `arm_class` = argmax of the six debiased t11 answers (first answer wins a tie, like pandas
  `idxmax`), kept only when that answer's clean flag is 1;
- the first 300 galaxies per class in ascending specobjid order (bug B2 kept as `cap_order: legacy`);
- per class, sklearn `train_test_split(test_size=0.3, random_state=42)` of the capped rows in
  ascending specobjid order; what the cap leaves is the `overflow` subset.

Fixed regardless of settings: key joins on int64 ids (bug B1), duplicates and missing images
counted rather than silently mishandled. Optional fixes: `cap_order: random` (B2) and
`test_fraction > 0`, a held-out stratified test subset taken before the train/val split (B3).
"""

import json
import logging
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.model_selection import train_test_split

from spiralarms import atomic, gz2, logs
from spiralarms.gz2.catalog import (
    ARM_COUNT,
    ARM_DEBIASED,
    ARM_FLAG,
    FEATURES_WF,
    MAPPING_COLUMNS,
    NOT_EDGEON_WF,
    SELECTION_COLUMNS,
    SPIRAL_WF,
    CatalogError,
    read_catalog,
    read_mapping,
    read_physical,
)

logger = logging.getLogger(__name__)

DEFAULT_SETTINGS = {
    "features_min": 0.43,
    "not_edgeon_min": 0.715,
    "spiral_min": 0.619,
    "votes_min": 20,
    "require_arm_flag": True,
    "cap": 300,
    "cap_order": "legacy",
    "seed": 42,
    "val_fraction": 0.3,
    "test_fraction": 0.0,
    "shuffle_once": True,
}
CAP_ORDERS = ("legacy", "random")
SUBSETS = ("train", "val", "test", "overflow")
# Exclusion steps in the order applied; a galaxy is counted under the first step it fails.
STEPS = (
    "duplicate_id", "no_mapping", "image_missing", "missing_fractions", "features_cut",
    "not_edgeon_cut", "spiral_cut", "vote_cut", "arm_flag_not_clean",
)
STEP_SETTING = {
    "features_cut": "features_min", "not_edgeon_cut": "not_edgeon_min",
    "spiral_cut": "spiral_min", "vote_cut": "votes_min", "arm_flag_not_clean": "require_arm_flag",
}
N_CLASSES = len(gz2.ARM_ANSWERS)
MISSING_IMAGE_EXAMPLES = 20


class SelectionError(ValueError):
    """The settings or the inputs cannot give the requested sample."""


def resolve_settings(settings=None) -> dict:
    """Defaults overlaid with `settings` (keys as in config `selection.*`), checked."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise SelectionError(
            f"unknown selection setting(s) {unknown}; allowed: {sorted(DEFAULT_SETTINGS)}"
        )
    out = {**DEFAULT_SETTINGS, **settings}
    for key in ("features_min", "not_edgeon_min", "spiral_min"):
        _require(0.0 <= float(out[key]) <= 1.0, f"selection.{key}={out[key]!r} must be in [0, 1]")
    _require(float(out["votes_min"]) >= 0, f"selection.votes_min={out['votes_min']!r} must be >= 0")
    _require(out["cap"] is None or (int(out["cap"]) == out["cap"] and out["cap"] > 0),
             f"selection.cap={out['cap']!r} must be a positive integer or null (no cap)")
    _require(out["cap_order"] in CAP_ORDERS,
             f"selection.cap_order={out['cap_order']!r} must be one of {list(CAP_ORDERS)}")
    _require(isinstance(out["shuffle_once"], bool),
             f"selection.shuffle_once={out['shuffle_once']!r} must be true or false")
    _require(int(out["seed"]) == out["seed"], f"selection.seed={out['seed']!r} must be an integer")
    val, test = float(out["val_fraction"]), float(out["test_fraction"])
    _require(0.0 < val < 1.0 and 0.0 <= test < 1.0 and val + test < 1.0,
             f"selection.val_fraction={val} and test_fraction={test} must satisfy "
             "0 < val_fraction, 0 <= test_fraction, val_fraction + test_fraction < 1")
    return out


def _require(condition, message):
    if not condition:
        raise SelectionError(message)


def arm_labels(catalog: pd.DataFrame):
    """(arm_class, arm_fraction): argmax of the six debiased answers and its value ("rho").

    Rows with a blank debiased answer get class -1 and fraction NaN. Ties go to the first answer
    (fewer arms), as pandas `idxmax` does in the notebook (bug B12, kept).
    """
    debiased = catalog[ARM_DEBIASED].to_numpy(dtype=np.float64)
    complete = ~np.isnan(debiased).any(axis=1)
    best = np.argmax(np.where(complete[:, None], debiased, -np.inf), axis=1)
    arm_class = np.where(complete, best, -1)
    arm_fraction = np.where(complete, debiased[np.arange(len(best)), best], np.nan)
    return arm_class, arm_fraction


def select(catalog: pd.DataFrame, mapping: pd.DataFrame, image_exists=None, settings=None):
    """(labels, report): one labelled row per selected galaxy, and the counts that explain it.

    `image_exists` is a folder of `<asset_id>.jpg` files, a callable asset_id -> bool, or None to
    treat every image as present (labels before the images are downloaded).
    """
    settings = resolve_settings(settings)
    asset_id, duplicates, arm_class, arm_fraction, reason = _screen(catalog, mapping,
                                                                    image_exists, settings)
    _require_every_class(arm_class, reason)

    chosen = np.flatnonzero(reason == len(STEPS))
    chosen = chosen[np.lexsort((catalog["dr7objid"].to_numpy()[chosen],
                                catalog["specobjid"].to_numpy()[chosen]))]
    order, subset = _assign_subsets(arm_class[chosen], settings)
    rows = chosen[order]
    labels = _labels_frame(catalog, rows, asset_id[rows], arm_class[rows], arm_fraction[rows],
                           subset)
    report = _report(catalog, mapping, reason, duplicates, asset_id, labels, settings,
                     images_checked=image_exists is not None)
    check_reconciles(report)
    return labels, report


def _screen(catalog, mapping, image_exists, settings):
    """(asset_id, duplicates, arm_class, arm_fraction, reason): each galaxy's label and the first
    selection step it fails (index into STEPS; len(STEPS) = selected)."""
    _require_frame_columns(catalog, SELECTION_COLUMNS, "catalogue")
    _require_frame_columns(mapping, MAPPING_COLUMNS, "image-id map")
    asset_id, duplicates = _join_asset_ids(catalog, mapping)
    arm_class, arm_fraction = arm_labels(catalog)
    image_ok = _image_presence(asset_id, image_exists)
    failures = _failure_masks(catalog, asset_id, duplicates, image_ok, arm_class, settings)
    return asset_id, duplicates, arm_class, arm_fraction, _first_failure(failures)


def _require_frame_columns(frame, columns, what):
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SelectionError(f"the {what} frame lacks column(s) {missing}")


def _join_asset_ids(catalog, mapping):
    """asset_id per catalogue row by key (dr7objid = objid), -1 where unmapped (bug B1 fixed).

    Ids that occur twice in either table are ambiguous: those catalogue rows are excluded.
    """
    dr7 = catalog["dr7objid"].to_numpy(dtype=np.int64)
    objid = mapping["objid"].to_numpy(dtype=np.int64)
    dup_catalog = pd.Series(dr7).duplicated(keep=False).to_numpy()
    dup_mapping = pd.Series(objid).duplicated(keep=False).to_numpy()
    unique = ~dup_mapping
    position = pd.Index(objid[unique]).get_indexer(dr7)
    asset_id = np.where(position >= 0,
                        mapping["asset_id"].to_numpy(dtype=np.int64)[unique][position], -1)
    repeated_in_mapping = np.unique(objid[dup_mapping])
    touches_catalog = np.isin(repeated_in_mapping, dr7)
    duplicates = {
        "catalog_dr7objid": [int(i) for i in np.unique(dr7[dup_catalog])],
        # repeats among galaxies outside the catalogue harm nothing: counted, not listed
        "mapping_objid": [int(i) for i in repeated_in_mapping[touches_catalog]],
        "mapping_repeats_outside_catalog": int((~touches_catalog).sum()),
    }
    is_duplicate = dup_catalog | np.isin(dr7, repeated_in_mapping)
    return asset_id, {"mask": is_duplicate, **duplicates}


def _image_presence(asset_id, image_exists) -> np.ndarray:
    if image_exists is None:
        return np.ones(len(asset_id), dtype=bool)
    if callable(image_exists):
        return np.fromiter((a >= 0 and bool(image_exists(int(a))) for a in asset_id),
                           dtype=bool, count=len(asset_id))
    return np.isin(asset_id, _asset_ids_in(Path(image_exists)))


def _asset_ids_in(images_dir: Path) -> np.ndarray:
    """Asset ids of the `<asset_id>.jpg` files in a folder (one listing, not one stat per galaxy)."""
    if not images_dir.is_dir():
        raise SelectionError(
            f"image folder {images_dir} does not exist; download the GZ2 images first or pass "
            "image_exists=None to label without checking them"
        )
    stems = (name[:-4] for name in os.listdir(images_dir) if name.endswith(".jpg"))
    return np.array([int(s) for s in stems if s.isdigit()], dtype=np.int64)


def _failure_masks(catalog, asset_id, duplicates, image_ok, arm_class, settings) -> list:
    """One boolean mask per step of STEPS: True where the galaxy fails that step."""
    needed = ["total_votes", FEATURES_WF, NOT_EDGEON_WF, SPIRAL_WF, *ARM_DEBIASED]
    if settings["require_arm_flag"]:
        needed += ARM_FLAG
    votes = catalog["total_votes"].to_numpy(dtype=np.float64)
    features = catalog[FEATURES_WF].to_numpy(dtype=np.float64)
    not_edgeon = catalog[NOT_EDGEON_WF].to_numpy(dtype=np.float64)
    spiral = catalog[SPIRAL_WF].to_numpy(dtype=np.float64)
    # The notebook's chain, multiplied in its order: votes reaching t01 and then t02 (bug B13 kept)
    least = settings["votes_min"]
    enough_votes = ((votes >= least) & (votes * features >= least)
                    & (votes * features * not_edgeon >= least))
    return [
        duplicates["mask"],
        asset_id < 0,
        ~image_ok,
        catalog[needed].isna().to_numpy().any(axis=1),
        ~(features >= settings["features_min"]),
        ~(not_edgeon >= settings["not_edgeon_min"]),
        ~(spiral >= settings["spiral_min"]),
        ~enough_votes,
        _arm_flag_unclean(catalog, arm_class, settings["require_arm_flag"]),
    ]


def _arm_flag_unclean(catalog, arm_class, required) -> np.ndarray:
    if not required:
        return np.zeros(len(arm_class), dtype=bool)
    flags = catalog[ARM_FLAG].to_numpy(dtype=np.float64)
    winner_flag = flags[np.arange(len(arm_class)), np.maximum(arm_class, 0)]
    return ~(winner_flag == 1)


def _first_failure(failures) -> np.ndarray:
    """Index into STEPS of the first failed step per galaxy; len(STEPS) means selected."""
    reason = np.full(len(failures[0]), len(STEPS), dtype=np.int64)
    for step, failed in enumerate(failures):
        reason[(reason == len(STEPS)) & failed] = step
    return reason


def _require_every_class(arm_class, reason):
    """An empty class would silently change the task; name the step that emptied it."""
    for j, answer in enumerate(gz2.ARM_ANSWERS):
        candidates = arm_class == j
        if (reason[candidates] == len(STEPS)).any():
            continue
        name = gz2.ARM_CLASS_NAMES[j]
        if not candidates.any():
            raise SelectionError(
                f"arm class {name!r} ({answer}) is empty: no catalogue row has it as its largest "
                "debiased answer; is the catalogue complete?"
            )
        step = STEPS[int(reason[candidates].max())]
        hint = f" (setting selection.{STEP_SETTING[step]})" if step in STEP_SETTING else ""
        raise SelectionError(
            f"arm class {name!r} ({answer}) is empty after selection: step {step!r}{hint} removed "
            f"its last candidates ({int(candidates.sum())} galaxies had it as their top answer)"
        )


def _assign_subsets(arm_class, settings):
    """(order, subset) for galaxies given in ascending specobjid order.

    Rows come out grouped by subset, then class; within a class in the order sklearn returns them,
    i.e. the notebook's per-class concatenation; with `shuffle_once` train and val are then
    permuted as the notebook's `df.sample` did.
    """
    parts = {subset: [] for subset in SUBSETS}
    for j in range(N_CLASSES):
        members = np.flatnonzero(arm_class == j)
        kept, overflow = _cap(members, j, settings)
        for subset, positions in _split_class(kept, j, settings).items():
            parts[subset].append(positions)
        parts["overflow"].append(overflow)
    order, subset = [], []
    for name in SUBSETS:
        positions = np.concatenate(parts[name]) if parts[name] else np.array([], dtype=np.int64)
        if settings["shuffle_once"] and name in ("train", "val"):
            # The notebook's df.sample(frac=1, random_state=42) of the class-grouped frames: without
            # it, unshuffled epochs (train.shuffle: false) would see class-blocked batches.
            positions = pd.Series(positions).sample(frac=1, random_state=int(settings["seed"]))
            positions = positions.to_numpy()
        order.append(positions)
        subset += [name] * len(positions)
    return np.concatenate(order).astype(np.int64), np.array(subset, dtype=object)


def _cap(members, j, settings):
    """(kept, overflow) of one class; both stay in ascending specobjid order."""
    cap = settings["cap"]
    if cap is None or len(members) <= cap:
        return members, members[:0]
    if settings["cap_order"] == "legacy":  # the notebook: first `cap` rows in specobjid order
        return members[:cap], members[cap:]
    rng = np.random.default_rng([int(settings["seed"]), j])  # seeded, independent per class
    keep = np.zeros(len(members), dtype=bool)
    keep[rng.choice(len(members), size=cap, replace=False)] = True
    return members[keep], members[~keep]


def _split_class(kept, j, settings) -> dict:
    """{subset: positions} for one class's capped galaxies, sklearn's rounding (test part up)."""
    seed = int(settings["seed"])
    rest, test = kept, kept[:0]
    try:
        if settings["test_fraction"] > 0:
            rest, test = train_test_split(kept, test_size=settings["test_fraction"],
                                          random_state=seed, shuffle=True)
            # val_fraction stays a fraction of the whole capped class, rounded up like sklearn's
            n_val = math.ceil(settings["val_fraction"] * len(kept))
            train, val = train_test_split(rest, test_size=n_val, random_state=seed, shuffle=True)
        else:
            train, val = train_test_split(kept, test_size=settings["val_fraction"],
                                          random_state=seed, shuffle=True)
    except ValueError as err:
        raise SelectionError(
            f"arm class {gz2.ARM_CLASS_NAMES[j]!r} has {len(kept)} galaxies after the cap, too few "
            f"for val_fraction={settings['val_fraction']} and "
            f"test_fraction={settings['test_fraction']}: {err}"
        ) from None
    return {"train": train, "val": val, "test": test}


def _labels_frame(catalog, rows, asset_id, arm_class, arm_fraction, subset) -> pd.DataFrame:
    labels = pd.DataFrame({
        "dr7objid": catalog["dr7objid"].to_numpy(dtype=np.int64)[rows],
        "specobjid": catalog["specobjid"].to_numpy(dtype=np.int64)[rows],
        "asset_id": asset_id.astype(np.int64),
        "arm_class": arm_class.astype(np.int64),
        "arm_fraction": arm_fraction.astype(np.float64),
    })
    for column in ARM_DEBIASED:
        labels[column] = catalog[column].to_numpy(dtype=np.float64)[rows]
    labels["subset"] = pd.Series(subset, dtype="str")
    labels["image"] = pd.Series([f"{a}.jpg" for a in labels["asset_id"]], dtype="str")
    return labels


def _per_class(arm_class) -> list:
    return [int(c) for c in np.bincount(np.asarray(arm_class, dtype=np.int64),
                                        minlength=N_CLASSES)]


def _report(catalog, mapping, reason, duplicates, asset_id, labels, settings, images_checked):
    counts = np.bincount(reason, minlength=len(STEPS) + 1)
    missing = np.flatnonzero(reason == STEPS.index("image_missing"))[:MISSING_IMAGE_EXAMPLES]
    blank = np.flatnonzero(reason == STEPS.index("missing_fractions"))[:MISSING_IMAGE_EXAMPLES]
    values = [c for c in SELECTION_COLUMNS if c not in ("specobjid", "dr7objid")]
    per_subset = {s: _per_class(labels.loc[labels["subset"] == s, "arm_class"]) for s in SUBSETS}
    selected = _per_class(labels["arm_class"])
    overflow = per_subset["overflow"]
    return {
        "rows_read": len(catalog),
        "mapping_rows": len(mapping),
        "images_checked": bool(images_checked),
        "excluded": {step: int(counts[i]) for i, step in enumerate(STEPS)},
        "selected": int(counts[len(STEPS)]),
        "class_names": list(gz2.ARM_CLASS_NAMES),
        "selected_per_class": selected,
        "capped_per_class": [a - b for a, b in zip(selected, overflow)],
        "overflow_per_class": overflow,
        "per_subset_per_class": per_subset,
        "duplicate_ids": {k: v for k, v in duplicates.items() if k != "mask"},
        "missing_image_examples": [
            {"dr7objid": int(catalog["dr7objid"].iat[i]), "asset_id": int(asset_id[i])}
            for i in missing
        ],
        "missing_fraction_examples": [
            {"dr7objid": int(catalog["dr7objid"].iat[i]),
             "blank": [c for c in values if c in catalog and pd.isna(catalog[c].iat[i])]}
            for i in blank
        ],
        "settings": {k: settings[k] for k in DEFAULT_SETTINGS},
    }


def describe(report: dict) -> str:
    """The selection in one line: how many were kept, and why the others were not (by id for
    the reasons a user fixes per galaxy, by the setting for the cuts)."""
    examples = {
        "duplicate_id": report["duplicate_ids"]["catalog_dr7objid"]
        + report["duplicate_ids"]["mapping_objid"],
        "image_missing": [e["dr7objid"] for e in report["missing_image_examples"]],
        "missing_fractions": [e["dr7objid"] for e in report["missing_fraction_examples"]],
    }
    reasons = []
    for step, count in report["excluded"].items():
        if not count:
            continue
        if examples.get(step):
            shown = examples[step][:5]
            more = ", ..." if count > len(shown) else ""
            detail = f" (dr7objid {', '.join(map(str, shown))}{more})"
        elif step in STEP_SETTING:
            setting = STEP_SETTING[step]
            detail = f" (selection.{setting} = {report['settings'][setting]})"
        else:
            detail = ""
        reasons.append(f"{count} {step}{detail}")
    per_class = ", ".join(f"{name} {n}" for name, n in
                          zip(report["class_names"], report["selected_per_class"]))
    return (f"selected {report['selected']} of {report['rows_read']} catalogue rows "
            f"({per_class}); excluded: {'; '.join(reasons) or 'none'}")


def check_reconciles(report: dict) -> None:
    """Raise SelectionError unless every galaxy read is accounted for exactly once."""
    problems = []
    excluded = sum(report["excluded"].values())
    if report["rows_read"] != excluded + report["selected"]:
        problems.append(f"rows_read {report['rows_read']} != excluded {excluded} + selected "
                        f"{report['selected']}")
    if sum(report["selected_per_class"]) != report["selected"]:
        problems.append("selected_per_class does not sum to selected")
    per_subset = report["per_subset_per_class"]
    for j in range(N_CLASSES):
        capped, overflow = report["capped_per_class"][j], report["overflow_per_class"][j]
        if capped + overflow != report["selected_per_class"][j]:
            problems.append(f"class {j}: capped {capped} + overflow {overflow} != selected")
        split = sum(per_subset[s][j] for s in ("train", "val", "test"))
        if split != capped:
            problems.append(f"class {j}: train+val+test {split} != capped {capped}")
        if per_subset["overflow"][j] != overflow:
            problems.append(f"class {j}: overflow subset != overflow_per_class")
    if problems:
        raise SelectionError("selection report does not reconcile: " + "; ".join(problems))


def physical_properties(labels: pd.DataFrame, physical: pd.DataFrame):
    """(labels + log_mass + sfr, counts): key join on specobjid = specObjID (bug B1 fixed).

    Galaxies without a row in the table get NaN (the MPA-JHU query kept only reliable fits).
    """
    spec = physical["specObjID"].to_numpy(dtype=np.int64)
    repeated = np.unique(spec[pd.Series(spec).duplicated().to_numpy()])
    if len(repeated):
        raise CatalogError(
            f"physical-properties table lists specObjID {repeated[:5].tolist()} more than once "
            f"({len(repeated)} ids); keep one row per spectrum"
        )
    position = pd.Index(spec).get_indexer(labels["specobjid"].to_numpy(dtype=np.int64))
    matched = position >= 0
    out = labels.copy()
    for source, name in (("LGM_TOT_P50", "log_mass"), ("sfr_tot_p50", "sfr")):
        values = physical[source].to_numpy(dtype=np.float64)
        out[name] = np.where(matched, values[np.maximum(position, 0)], np.nan)
    counts = {"physical_rows": len(physical), "matched": int(matched.sum()),
              "unmatched": int((~matched).sum())}
    unmatched = out.loc[~matched, "specobjid"].to_numpy(dtype=np.int64)
    logger.info("physical properties: %d of %d labelled galaxies matched by specobjid in a table "
                "of %d rows", counts["matched"], len(out), len(physical))
    if len(unmatched):
        logger.warning("physical properties: %d labelled galaxies have no row (log_mass and sfr "
                       "left NaN), e.g. specobjid %s", len(unmatched),
                       ", ".join(str(v) for v in unmatched[:5]))
    return out, counts


def write_labels(labels: pd.DataFrame, report: dict, parquet_path, report_path) -> None:
    """labels.parquet and selection_report.json, byte-identical for identical inputs."""
    parquet_path, report_path = Path(parquet_path), Path(report_path)
    parquet_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(labels, preserve_index=False)
    pq.write_table(table, parquet_path, compression="zstd")
    report_path.write_text(json.dumps(report, indent=2) + "\n")


def run_labels(catalog_path, mapping_path, images_dir, settings, parquet_path, report_path,
               physical_path=None):
    """The labels rule: read inputs, select, optionally join masses and SFRs, write both files.

    `images_dir=None` labels without checking that images exist.
    """
    catalog = read_catalog(catalog_path)
    mapping = read_mapping(mapping_path)
    labels, report = select(catalog, mapping, images_dir, settings)
    report["inputs"] = {"catalog": str(catalog_path), "mapping": str(mapping_path),
                        "images_dir": None if images_dir is None else str(images_dir)}
    if physical_path is not None:
        labels, report["physical"] = physical_properties(labels, read_physical(physical_path))
        report["inputs"]["physical"] = str(physical_path)
    write_labels(labels, report, parquet_path, report_path)
    logger.info("labels: %s", describe(report), extra=logs.TERMINAL)
    return labels, report


# --- the votes' sample (issue 20) ---------------------------------------------------------------

VOTE_DEFAULTS = {"unflagged": False, "min_arm_votes": 10}


def resolve_vote_settings(votes=None) -> dict:
    """config `votes.*` over VOTE_DEFAULTS, checked."""
    votes = dict(votes or {})
    unknown = sorted(set(votes) - set(VOTE_DEFAULTS))
    _require(not unknown, f"unknown votes setting(s) {unknown}; allowed: {sorted(VOTE_DEFAULTS)}")
    out = {**VOTE_DEFAULTS, **votes}
    _require(isinstance(out["unflagged"], bool),
             f"votes.unflagged={out['unflagged']!r} must be true or false")
    _require(int(out["min_arm_votes"]) == out["min_arm_votes"] and out["min_arm_votes"] >= 1,
             f"votes.min_arm_votes={out['min_arm_votes']!r} must be a whole number >= 1")
    return out


def vote_labels(catalog, mapping, labels, image_exists=None, settings=None, votes=None):
    """(vote_labels, report): the labels with the six t11 vote counts (`ARM_COUNT` columns) and
    `unflagged` = False, plus, with `votes.unflagged`, the galaxies the paper drops only for their
    arm flag whose arm question has at least `votes.min_arm_votes` votes, as extra `train` rows
    (`unflagged` = True). Validation, test and overflow stay exactly the labels' galaxies, so a
    votes experiment and its labels counterpart are judged on the same held-out galaxies."""
    settings, votes = resolve_settings(settings), resolve_vote_settings(votes)
    _require_frame_columns(catalog, ARM_COUNT, "catalogue")
    counts = catalog[ARM_COUNT].to_numpy(dtype=np.float64)
    by_id = pd.Series(np.arange(len(catalog)), index=catalog["dr7objid"].to_numpy(np.int64))
    rows = by_id.reindex(labels["dr7objid"].to_numpy(np.int64))
    if rows.isna().any():
        missing = labels["dr7objid"][rows.isna().to_numpy()].tolist()[:5]
        raise SelectionError(f"labels hold dr7objid {missing} that the catalogue lacks: the "
                             "labels come from another catalogue; rerun the labels stage")
    out = labels.copy()
    out[ARM_COUNT] = counts[rows.to_numpy(np.int64)]
    out["unflagged"] = False
    report = {"settings": votes, "labelled": len(labels), "unflagged_candidates": 0,
              "unflagged_too_few_votes": 0, "unflagged_blank_counts": 0, "unflagged_added": 0}
    if votes["unflagged"]:
        asset_id, _, arm_class, arm_fraction, reason = _screen(catalog, mapping, image_exists,
                                                               settings)
        candidates = reason == STEPS.index("arm_flag_not_clean")
        blank = np.isnan(counts).any(axis=1)
        enough = ~blank & (np.nan_to_num(counts).sum(axis=1) >= votes["min_arm_votes"])
        extra = np.flatnonzero(candidates & enough)
        extra = extra[np.lexsort((catalog["dr7objid"].to_numpy()[extra],
                                  catalog["specobjid"].to_numpy()[extra]))]
        added = _labels_frame(catalog, extra, asset_id[extra], arm_class[extra],
                              arm_fraction[extra], np.array(["train"] * len(extra), dtype=object))
        for column in out.columns:
            if column not in added:  # e.g. log_mass and sfr: joined later for labelled galaxies
                added[column] = np.nan
        added[ARM_COUNT] = counts[extra]
        added["unflagged"] = True
        out = pd.concat([out, added[out.columns]], ignore_index=True)
        report.update(unflagged_candidates=int(candidates.sum()),
                      unflagged_blank_counts=int((candidates & blank).sum()),
                      unflagged_too_few_votes=int((candidates & ~blank & ~enough).sum()),
                      unflagged_added=len(extra))
    report["train"] = int((out["subset"] == "train").sum())
    return out, report


def describe_votes(report: dict) -> str:
    """The votes' sample in one line."""
    votes = report["settings"]
    if not votes["unflagged"]:
        return (f"vote labels: the {report['labelled']} labelled galaxies with their t11 vote "
                "counts (votes.unflagged: false, the paper's galaxies)")
    return (f"vote labels: {report['labelled']} labelled galaxies + {report['unflagged_added']} "
            f"unflagged ones for training (of {report['unflagged_candidates']} dropped only for "
            f"their arm flag: {report['unflagged_too_few_votes']} with fewer than "
            f"{votes['min_arm_votes']} arm votes (votes.min_arm_votes), "
            f"{report['unflagged_blank_counts']} with blank counts); {report['train']} train")


def run_vote_labels(catalog_path, mapping_path, images_dir, labels_path, settings, votes,
                    parquet_path, report_path):
    """The vote_labels rule: labels.parquet plus vote counts (and unflagged galaxies)."""
    catalog = read_catalog(catalog_path, SELECTION_COLUMNS + ARM_COUNT)
    mapping = read_mapping(mapping_path)
    frame, report = vote_labels(catalog, mapping, pd.read_parquet(labels_path), images_dir,
                                settings, votes)
    report["inputs"] = {"catalog": str(catalog_path), "labels": str(labels_path)}
    with atomic.replacing(parquet_path) as partial:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), partial,
                       compression="zstd")
    atomic.write_json(report_path, report, indent=2)
    logger.info("%s", describe_votes(report), extra=logs.TERMINAL)
    return frame, report
