"""Paired comparisons of two experiments on the same galaxies: a paired bootstrap of the difference
in accuracy, macro-F1 and per-class recall, and McNemar's test of the accuracy difference.

The config's `comparisons` list names the pairs: {a, b, subset (default val), classes (optional
restriction to original arm classes, e.g. ["4"]), judge (own or common, default own)}. Galaxies
are matched by `dr7objid` between results/experiments/<a>/predictions/<subset>.parquet and <b>'s;
galaxies in only one of them (a variant that drops classes, e.g. select12; a different selection)
are counted (only_a, only_b) and left out.

What counts as correct, per galaxy, when the two experiments' class variants differ. Every
prediction table carries `arm_class`, the galaxy's original class (index into 1, 2, 3, 4, 5+, ?):
- judge "own" (default): each experiment is judged in its own variant: a prediction is correct when
  the predicted class contains the galaxy's original class, i.e. pred == variant.class_map
  [arm_class] (the table's `true`). So for a 4-arm galaxy merge45 is right with "4+" and 6class
  only with "4". This is the paper's claim ("merging raised the 4-arm accuracy"): the merged model
  is judged on the easier task it was trained for.
- judge "common": both are judged on the finest partition of the original classes that is coarser
  than both variants (6class vs merge45: 4 and 5+ together; merge34 vs merge45: 3, 4, 5+
  together): correct when the predicted class falls in the galaxy's group. A like-for-like test of
  the two models on one task.
Per-class recall is always per original class (arm_class): the share of that class's galaxies
judged correct. Macro-F1 (unrestricted comparisons only) is each experiment's own macro-F1 on the
matched galaxies, in its own classes (own) or the common groups (common), over the classes with at
least one matched galaxy; a comparison restricted by `classes` reports accuracy and recall only,
as F1's precision needs the galaxies outside the restriction.

The bootstrap resamples matched galaxies with replacement, the same indices for both experiments
(spiralarms.evaluation.metrics.resample_blocks), and reports the 2.5 and 97.5 percentiles of a - b. McNemar's
test uses the discordant counts n_a (a right, b wrong) and n_b (a wrong, b right): an exact
two-sided binomial test (scipy.stats.binomtest, p = 0.5) when n_a + n_b < 25, else the chi-squared
statistic with continuity correction (|n_a - n_b| - 1)^2 / (n_a + n_b) on one degree of freedom.
Macro-F1 rows have no p-value (no paired test of F1 is used here; read the interval).
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest, chi2

from spiralarms.data.variants import VARIANTS
from spiralarms.evaluation.metrics import per_class_f1, resample_blocks
from spiralarms.report.tables import (
    MISSING,
    count,
    difference_with_interval,
    is_missing,
    number,
    p_value,
    to_markdown,
    write_csv_and_markdown,
)
from spiralarms.training.experiment import Experiment

log = logging.getLogger(__name__)

ORIGINAL = list(VARIANTS["6class"].class_names)  # arm_class index -> original class name
EXACT_BELOW = 25  # discordant pairs under which McNemar's test is the exact binomial one
COLUMNS = ["comparison", "a", "b", "subset", "classes", "judge", "metric", "n", "a_value",
           "b_value", "difference", "ci_low", "ci_high", "a_only_correct", "b_only_correct",
           "p_value", "test", "n_matched", "only_a", "only_b", "note"]


# --- McNemar ------------------------------------------------------------------------------------

def mcnemar(correct_a, correct_b) -> dict:
    """McNemar's test of paired correctness: discordant counts, statistic, p-value and test name
    (exact binomial under EXACT_BELOW discordant pairs, else chi-squared with continuity
    correction; p = 1 without discordant pairs)."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    n_a, n_b = int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())
    discordant = n_a + n_b
    if discordant == 0:
        return {"a_only_correct": 0, "b_only_correct": 0, "statistic": None, "p_value": 1.0,
                "test": "McNemar (no discordant pairs)"}
    if discordant < EXACT_BELOW:
        p = binomtest(n_a, discordant, 0.5, alternative="two-sided").pvalue
        return {"a_only_correct": n_a, "b_only_correct": n_b, "statistic": float(n_a),
                "p_value": float(min(p, 1.0)), "test": "McNemar exact binomial"}
    statistic = (abs(n_a - n_b) - 1) ** 2 / discordant
    return {"a_only_correct": n_a, "b_only_correct": n_b, "statistic": float(statistic),
            "p_value": float(chi2.sf(statistic, 1)), "test": "McNemar chi2 (continuity corr.)"}


# --- matching and judging -----------------------------------------------------------------------

def read_predictions(predictions_dir, subset) -> pd.DataFrame:
    """dr7objid, arm_class, true and pred of one experiment's predictions/<subset>.parquet."""
    path = Path(predictions_dir) / f"{subset}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the experiment has no {subset!r} "
                                f"predictions (see its metrics.json subsets_skipped)")
    frame = pd.read_parquet(path, columns=["dr7objid", "arm_class", "true", "pred"])
    duplicated = frame["dr7objid"][frame["dr7objid"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{path}: dr7objid {sorted(duplicated.unique())[:5]} appear more than "
                         f"once; a galaxy must be predicted once per subset")
    return frame


def match(frame_a, frame_b) -> tuple:
    """Inner join on dr7objid (columns arm_class, true_a, pred_a, true_b, pred_b, in a's row
    order) and the counts {n_matched, only_a, only_b} of galaxies matched and left out."""
    merged = frame_a.merge(frame_b, on="dr7objid", how="inner", suffixes=("_a", "_b"),
                           validate="one_to_one")
    differ = merged["arm_class_a"] != merged["arm_class_b"]
    if differ.any():
        raise ValueError(f"galaxies {merged.loc[differ, 'dr7objid'].tolist()[:5]} have different "
                         f"arm_class in the two prediction tables; they come from different "
                         f"labels, so the experiments cannot be compared galaxy by galaxy")
    merged = merged.drop(columns="arm_class_b").rename(columns={"arm_class_a": "arm_class"})
    counts = {"n_matched": len(merged), "only_a": len(frame_a) - len(merged),
              "only_b": len(frame_b) - len(merged)}
    return merged, counts


def common_groups(*variants) -> list:
    """Group index per original class: the finest partition coarser than every variant's (two
    original classes share a group when some variant maps them to one target)."""
    parent = list(range(len(ORIGINAL)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for variant in variants:
        for i in range(len(ORIGINAL)):
            for j in range(i):
                if variant.class_map[i] is not None and variant.class_map[i] == variant.class_map[j]:
                    parent[root(i)] = root(j)
    roots = [root(i) for i in range(len(ORIGINAL))]
    order = list(dict.fromkeys(roots))
    return [order.index(r) for r in roots]


def judged_labels(arm_class, true, pred, variant, judge, groups) -> tuple:
    """(true labels, predicted labels, number of labels) on which correctness is judged:
    the variant's own targets, or the common groups of the original classes."""
    true, pred = np.asarray(true, np.int64), np.asarray(pred, np.int64)
    if judge == "own":
        return true, pred, variant.n_classes
    if judge != "common":
        raise ValueError(f"judge must be 'own' or 'common', got {judge!r}")
    target_group = {}
    for original, target in enumerate(variant.class_map):
        if target is not None:
            target_group[target] = groups[original]
    to_group = np.array([target_group[t] for t in range(variant.n_classes)])
    return np.asarray(groups)[np.asarray(arm_class, np.int64)], to_group[pred], max(groups) + 1


# --- one comparison -----------------------------------------------------------------------------

def label(spec) -> str:
    classes = spec.get("classes")
    restriction = f", class {'/'.join(classes)}" if classes else ""
    judge = "" if spec.get("judge", "own") == "own" else ", common classes"
    return f"{spec['a']} vs {spec['b']} ({spec.get('subset', 'val')}{restriction}{judge})"


def compare(spec, frame_a, frame_b, n_boot=1000, seed=0) -> list:
    """Rows (dicts with COLUMNS) of one comparison `spec` from the two prediction tables."""
    a, b = Experiment.parse(spec["a"]), Experiment.parse(spec["b"])
    subset, judge = spec.get("subset", "val"), spec.get("judge", "own")
    classes = spec.get("classes") or None
    base = {"comparison": label(spec), "a": a.name, "b": b.name, "subset": subset,
            "classes": "all" if classes is None else ",".join(classes), "judge": judge}
    merged, counts = match(frame_a, frame_b)
    base.update(counts)
    if classes is not None:
        keep = merged["arm_class"].isin([ORIGINAL.index(c) for c in classes])
        merged = merged[keep.to_numpy()].reset_index(drop=True)
    if merged.empty:
        note = "no galaxy is in both prediction tables" + (
            f" with class {'/'.join(classes)}" if classes else "")
        log.warning("%s: %s", base["comparison"], note)
        return [{**dict.fromkeys(COLUMNS), **base, "metric": "accuracy", "n": 0, "note": note}]
    groups = common_groups(a.variant, b.variant)
    arm = merged["arm_class"].to_numpy(np.int64)
    labels = [judged_labels(arm, merged[f"true_{k}"], merged[f"pred_{k}"], e.variant, judge, groups)
              for k, e in (("a", a), ("b", b))]
    correct = [t == p for t, p, _ in labels]
    present = sorted(set(arm.tolist()))

    def statistics(idx):
        """(resamples, statistics) per experiment: accuracy, recall per class, [macro-F1]."""
        out = []
        for (true, pred, n_labels), right in zip(labels, correct):
            columns = [right[idx].mean(axis=1)]
            for original in present:
                members = arm[idx] == original
                hits = (right[idx] & members).sum(axis=1)
                total = members.sum(axis=1)
                columns.append(np.divide(hits, total, out=np.full(len(idx), np.nan),
                                         where=total > 0))
            if classes is None:
                supported = sorted(set(true.tolist()))
                columns.append(per_class_f1(true[idx], pred[idx], n_labels)[:, supported]
                               .mean(axis=1))
            out.append(np.stack(columns, axis=1))
        return out

    point_a, point_b = (s[0] for s in statistics(np.arange(len(merged))[None, :]))
    differences = []
    if n_boot > 0:
        for idx in resample_blocks(len(merged), n_boot, seed):
            stat_a, stat_b = statistics(idx)
            differences.append(stat_a - stat_b)
        differences = np.concatenate(differences)
    metrics = ["accuracy"] + [f"recall_{ORIGINAL[c]}" for c in present] + (
        ["macro_f1"] if classes is None else [])
    rows = []
    for k, metric in enumerate(metrics):
        row = {**base, "metric": metric, "a_value": float(point_a[k]),
               "b_value": float(point_b[k]), "difference": float(point_a[k] - point_b[k]),
               "ci_low": None, "ci_high": None, "note": ""}
        if n_boot > 0:
            values = differences[:, k]
            values = values[~np.isnan(values)]
            if values.size:
                row["ci_low"], row["ci_high"] = (float(v) for v in
                                                 np.percentile(values, [2.5, 97.5]))
        if metric == "macro_f1":
            row["n"] = len(merged)
            row.update(a_only_correct=None, b_only_correct=None, p_value=None, test="",
                       note="paired bootstrap interval only")
        else:
            members = (np.ones(len(merged), bool) if metric == "accuracy"
                       else arm == present[k - 1])
            row["n"] = int(members.sum())
            test = mcnemar(correct[0][members], correct[1][members])
            row.update({key: test[key] for key in ("a_only_correct", "b_only_correct",
                                                   "p_value", "test")})
        rows.append(row)
    return rows


# --- the summary's comparisons table ------------------------------------------------------------

def run_comparisons(comparisons, predictions_dirs, n_boot=1000, seed=0) -> pd.DataFrame:
    """All comparisons of the config's list; `predictions_dirs` maps an experiment name to its
    predictions folder. A missing subset table becomes a row with a note, not an error."""
    rows = []
    for spec in comparisons:
        for key in ("a", "b"):
            if spec[key] not in predictions_dirs:
                raise KeyError(f"comparison {label(spec)}: no predictions folder given for "
                               f"{key} = {spec[key]!r}; the aggregate rule must list it")
        subset = spec.get("subset", "val")
        try:
            frames = [read_predictions(predictions_dirs[spec[k]], subset) for k in ("a", "b")]
        except FileNotFoundError as error:
            log.warning("%s: %s", label(spec), error)
            rows.append({**dict.fromkeys(COLUMNS), "comparison": label(spec), "a": spec["a"],
                         "b": spec["b"], "subset": subset, "metric": "accuracy", "n": 0,
                         "note": str(error)})
            continue
        rows += compare(spec, *frames, n_boot=n_boot, seed=seed)
    return pd.DataFrame(rows, columns=COLUMNS)


def write_comparisons(table, out_dir) -> list:
    """comparisons.csv (every column, full precision) and comparisons.md (difference a - b with
    its interval, McNemar p-value, galaxies matched and left out) in `out_dir`."""
    return write_csv_and_markdown(table, out_dir, "comparisons", comparisons_markdown(table))


def comparisons_markdown(table) -> str:
    intro = ("Difference a - b with its paired-bootstrap 95% interval; p: McNemar's test of the "
             "galaxies one experiment gets right and the other wrong (n_a: only a right, n_b: "
             "only b right). Galaxies are matched by dr7objid; `only a` / `only b` count those "
             "in one table only. A merged class is correct for the original classes it contains "
             "(judge own); recall is per original class. See spiralarms.report.comparisons.")
    lines = ["# Paired comparisons on the same galaxies", "", intro, ""]
    if table.empty:
        return "\n".join(lines + ["No comparisons configured (config key `comparisons`).", ""])
    for name, group in table.groupby("comparison", sort=False):
        first = group.iloc[0]
        lines += [f"## {name}", ""]
        if first["n_matched"] is not None and not pd.isna(first["n_matched"]):
            counts = (f"{count(first['n_matched'])} galaxies in both; only in a: "
                      f"{count(first['only_a'])}, only in b: {count(first['only_b'])}.")
            lines += [counts, ""]
        display = pd.DataFrame({
            "metric": group["metric"], "n": group["n"].map(count),
            "a": group["a_value"].map(number), "b": group["b_value"].map(number),
            "a - b [95% CI]": [difference_with_interval(*v) for v in
                               zip(group["difference"], group["ci_low"], group["ci_high"])],
            "n_a / n_b": [f"{count(x)} / {count(y)}" if not is_missing(x) else MISSING
                          for x, y in zip(group["a_only_correct"], group["b_only_correct"])],
            "p": group["p_value"].map(p_value), "test": group["test"].fillna(""),
        })
        lines.append(to_markdown(display))
        notes = [n for n in group["note"].dropna().unique() if n and "interval only" not in n]
        lines += [f"_{n}_\n" for n in notes]
    return "\n".join(lines)
