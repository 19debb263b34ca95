"""Survey-scale prediction: a catalogue split into chunks, each chunk one job, then a gather step.

The input contract is Zoobot's: a catalogue (CSV or parquet) with an id column and a file column
(`id_str` and `file_loc` unless named otherwise), or a folder of images (each file one row, its
name the id). Relative file paths resolve against the catalogue's folder. Ids pass through to
every output row, with the catalogue row number (`row`, from 0).

Chunks are fixed runs of `chunk_size` catalogue rows in catalogue order (folder: sorted names):
the same catalogue always gives the same chunks, and rows appended at the end only change the last
chunk and add new ones. Each chunk carries a fingerprint of its rows (id, resolved path, size,
pre-set skip); a chunk file whose fingerprint and prediction settings match is finished and is not
predicted again (Snakemake: the fingerprint is a rule parameter; the CLI compares it with the
chunk file's own metadata).

Layout for an output `<out>.parquet` (the workflow's `results/predictions/<name>.parquet`):

    <out>/catalog.parquet        the normalised catalogue, one row group per chunk
    <out>/chunks.json            the chunk plan: rows, chunk size, one fingerprint per chunk
    <out>/chunks/<NNNNNN>.parquet  one finished chunk: every row, predicted or skipped
    <out>.parquet/part-<NNNNNN>.parquet  the gathered predictions (a dataset: read the folder)
    <out>.skipped.csv            rows not predicted: row, id, file, path, code, reason
    <out>.summary.json / .md     counts by class and share, skipped by reason, reconciled totals
    <out>.confidence.png         distribution of the top-class probability, by predicted class

Nothing here imports TensorFlow at module level: the workflow's split and gather steps stay
light (a test checks it); only predicting a chunk imports `predictor`. Every file is written to a
temporary name and renamed into place once complete (`spiralarms.atomic`), the dataset folder
included, so nothing here can be read half-written.
"""

import hashlib
import json
import logging
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms import atomic
from spiralarms.gz2.catalog import CatalogError, require_columns
from spiralarms.predict.records import (
    SKIP_MEANINGS,
    SKIPPED_COLUMNS,
    arrow_table,
    check_max_upscale,
    scan_folder,
)

log = logging.getLogger(__name__)

CATALOG_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".parquet", ".pq")
CHUNK_DIGITS = 6
# A catalogue may say why a row has no image (the cut-out fetcher's manifest.csv does): the row
# is then skipped with that code and reason instead of as an empty or missing file.
PRESET_SKIP_COLUMNS = ("skip_code", "skip_reason")
NORMALISED_COLUMNS = ["row", "id", "file", "path", "size", "skip_code", "skip_reason"]
CONFIDENCE_BINS = np.linspace(0.0, 1.0, 21)

# Every key of predict.<name> besides model/images/catalog, with its default. The schema
# (workflow/schemas/config.schema.yaml) documents the same keys; the CLI flags mirror them.
DEFAULTS = {
    "id_column": "id_str",
    "file_column": "file_loc",
    "size_column": None,
    "pixel_scale": None,
    "chunk_size": 10000,
    "batch_size": 64,
    "tta": 1,
    "threads": 2,
    "max_upscale": 4.0,
    "fits": {},
    "tables": [],  # "fits", "votable": the gathered dataset also as these (astro_tables)
}


# Where a prediction job's galaxies come from: give exactly one. positions: a table of sky
# positions whose cut-outs a local rule fetches first (spiralarms.acquire.cutouts).
SOURCES = ("catalog", "images", "positions")


class ChunkError(RuntimeError):
    """Finished chunks that do not add up to the plan (stale or missing)."""


def job_settings(entry: dict) -> dict:
    """predict.<name> (or CLI options) with the defaults filled in."""
    unknown = set(entry) - set(DEFAULTS) - set(SOURCES) - {"model", "cutouts"}
    if unknown:
        raise CatalogError(f"unknown prediction settings {sorted(unknown)}")
    settings = {**DEFAULTS, **{k: v for k, v in entry.items() if v is not None}}
    settings["fits"] = dict(settings.get("fits") or {})
    try:
        settings["max_upscale"] = check_max_upscale(settings["max_upscale"])
    except ValueError as error:
        raise CatalogError(f"prediction setting {error}") from None
    if sum(bool(entry.get(key)) for key in SOURCES) != 1:
        raise CatalogError("give one of a catalogue (catalog), a folder of images (images) or a "
                           "table of sky positions to fetch cut-outs for (positions)")
    return settings


def catalogue_columns(settings: dict) -> dict:
    """How the split reads the job's catalogue: the settings' columns, or for positions the
    cut-out manifest's (id_str, file_loc; its frames are GZ2's, so no size column)."""
    keys = ("id_column", "file_column", "size_column", "pixel_scale")
    if settings.get("positions"):
        return {"id_column": "id_str", "file_column": "file_loc", "size_column": None,
                "pixel_scale": None}
    return {key: settings[key] for key in keys}


def source_of(entry: dict) -> str:
    return str(entry.get("catalog") or entry.get("images"))


# --- reading the input -------------------------------------------------------------------------

def read_input(source, id_column="id_str", file_column="file_loc", size_column=None,
               pixel_scale=None) -> pd.DataFrame:
    """The normalised catalogue: row, id, file, path (resolved), size (galaxy size in pixels of
    its image, NaN without a size column), and skip_code/skip_reason for rows that cannot be
    predicted whatever the image (empty id or file, duplicate id, no size)."""
    source = Path(source)
    if source.is_dir():
        return _folder_rows(source)
    if not source.exists():
        what = "catalogue" if source.name.lower().endswith(CATALOG_SUFFIXES) else \
            "input (a folder of images or a catalogue file)"
        raise CatalogError(f"{what} {source} does not exist; check the path")
    catalogue = read_catalog_file(source, [id_column, file_column]
                                  + ([size_column] if size_column else []),
                                  optional=PRESET_SKIP_COLUMNS)
    ids = catalogue[id_column].map(_as_id)
    files = catalogue[file_column].map(lambda v: "" if _missing(v) else str(v).strip())
    base = source.resolve().parent
    paths = files.map(lambda f: "" if not f else str(_resolve(f, base)))
    table = pd.DataFrame({"row": np.arange(len(catalogue), dtype=np.int64), "id": ids,
                          "file": files, "path": paths})
    if size_column:
        size = pd.to_numeric(catalogue[size_column], errors="coerce").to_numpy(np.float64)
        if pixel_scale:
            size = size / float(pixel_scale)
        table["size"] = size
    else:
        table["size"] = np.nan
    table["skip_code"], table["skip_reason"] = "", ""
    if "skip_code" in catalogue:  # rows an earlier step could not provide keep its reason
        given = catalogue["skip_code"].map(lambda v: "" if _missing(v) else str(v).strip())
        table["skip_code"] = given
        table["skip_reason"] = catalogue.get("skip_reason", given).map(
            lambda v: "" if _missing(v) else str(v)).where(given != "", "")
    _mark(table, files == "", "empty_file", f"no file given (column {file_column!r} is empty)")
    _mark(table, ids == "", "empty_id", f"the id (column {id_column!r}) is empty")
    if size_column:
        bad = ~(table["size"] > 0)
        _mark(table, bad, "no_size", f"no galaxy size: column {size_column!r} is empty or not "
                                     f"a positive number")
    _mark_duplicates(table)
    return table


def read_catalog_file(path, columns, optional=()) -> pd.DataFrame:
    """The named columns of a CSV (ids kept as text) or parquet catalogue, and those of
    `optional` that it has; CatalogError naming the missing ones and the columns there are."""
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            present = pq.ParquetFile(path).schema_arrow.names
            _check_columns(path, columns, present)
            columns = list(columns) + [c for c in optional if c in present]
            return pd.read_parquet(path, columns=list(dict.fromkeys(columns)))
        if name.endswith((".csv", ".csv.gz", ".tsv")):
            separator = "\t" if name.endswith(".tsv") else ","
            present = list(pd.read_csv(path, sep=separator, nrows=0).columns)
            _check_columns(path, columns, present)
            columns = list(columns) + [c for c in optional if c in present]
            return pd.read_csv(path, sep=separator, usecols=list(dict.fromkeys(columns)),
                               dtype=str, keep_default_na=False)
    except CatalogError:
        raise
    except Exception as error:
        raise CatalogError(f"catalogue {path} could not be read: {str(error).splitlines()[0]}") \
            from error
    raise CatalogError(f"catalogue {path}: give a .csv or .parquet file (or a folder of images), "
                       f"not {path.suffix or 'a file without suffix'}")


def _check_columns(path, wanted, present):
    require_columns("catalogue", path, wanted, present,
                    "name the id and file columns with --id-column/--file-column "
                    "(workflow: predict.<name>.id_column/file_column)")


def _folder_rows(folder) -> pd.DataFrame:
    paths = scan_folder(folder)
    return pd.DataFrame({"row": np.arange(len(paths), dtype=np.int64),
                         "id": [p.name for p in paths], "file": [p.name for p in paths],
                         "path": [str(p.resolve()) for p in paths], "size": np.nan,
                         "skip_code": "", "skip_reason": ""})


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or \
        (isinstance(value, str) and not value.strip())


def _as_id(value) -> str:
    if _missing(value):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))  # an integer id that a parquet writer stored as float
    return str(value).strip()


def _resolve(file, base: Path) -> Path:
    path = Path(os.path.expanduser(file))
    return path if path.is_absolute() else base / path


def _mark(table, mask, code, reason):
    mask = np.asarray(mask, bool) & (table["skip_code"].to_numpy() == "")
    table.loc[mask, "skip_code"] = code
    table.loc[mask, "skip_reason"] = reason


def _mark_duplicates(table):
    ids = table["id"]
    dup = ids.duplicated(keep="first") & (ids != "") & (table["skip_code"] == "")
    if not dup.any():
        return
    first = {value: row for row, value in zip(table["row"][::-1], ids[::-1])}
    table.loc[dup, "skip_code"] = "duplicate_id"
    table.loc[dup, "skip_reason"] = [f"duplicate id {value!r} (first on catalogue row "
                                     f"{first[value]}, which is predicted)" for value in ids[dup]]
    log.warning("%d rows repeat an earlier id and are skipped", int(dup.sum()))


# --- the chunk plan ----------------------------------------------------------------------------

def chunk_name(index: int) -> str:
    return f"{index:0{CHUNK_DIGITS}d}"


def fingerprint(rows: pd.DataFrame) -> str:
    """sha256 of what decides a chunk's rows: row, id, resolved path, size and pre-set skips."""
    digest = hashlib.sha256()
    for row in rows[["row", "id", "path", "size", "skip_code"]].itertuples(index=False):
        size = "" if not np.isfinite(row.size) else repr(float(row.size))
        digest.update(f"{row.row}\t{row.id}\t{row.path}\t{size}\t{row.skip_code}\n".encode())
    return digest.hexdigest()


def plan_chunks(table: pd.DataFrame, chunk_size: int) -> dict:
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise CatalogError(f"chunk size must be >= 1, got {chunk_size}")
    chunks = []
    for index, start in enumerate(range(0, len(table), chunk_size)):
        stop = min(start + chunk_size, len(table))
        chunks.append({"chunk": chunk_name(index), "start": start, "stop": stop,
                       "fingerprint": fingerprint(table.iloc[start:stop])})
    return {"rows": len(table), "chunk_size": chunk_size, "chunks": chunks}


def write_split(table: pd.DataFrame, plan: dict, catalog_out, plan_out):
    """The normalised catalogue (one parquet row group per chunk, so a chunk job reads only its
    own rows) and the plan; both written whole or not at all."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    catalog_out, plan_out = Path(catalog_out), Path(plan_out)
    catalog_out.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(table[NORMALISED_COLUMNS], preserve_index=False)
    with atomic.replacing(catalog_out) as partial:
        pq.write_table(arrow, partial, row_group_size=max(1, plan["chunk_size"]))
    _write_json(plan_out, plan)


def read_plan(plan_path) -> dict:
    return json.loads(Path(plan_path).read_text())


def chunk_entry(plan: dict, chunk: str) -> dict:
    for entry in plan["chunks"]:
        if entry["chunk"] == chunk:
            return entry
    raise ChunkError(f"chunk {chunk} is not in the plan ({len(plan['chunks'])} chunks)")


def read_chunk_rows(catalog_path, plan: dict, chunk: str) -> pd.DataFrame:
    """The catalogue rows of one chunk, checked against the plan's fingerprint."""
    import pyarrow.parquet as pq

    entry = chunk_entry(plan, chunk)
    index = int(chunk)
    parquet = pq.ParquetFile(catalog_path)
    if parquet.metadata.num_row_groups > index and \
            parquet.metadata.row_group(index).num_rows == entry["stop"] - entry["start"]:
        rows = parquet.read_row_group(index).to_pandas()
    else:
        rows = pd.read_parquet(catalog_path).iloc[entry["start"]:entry["stop"]]
    rows = rows.reset_index(drop=True)
    if fingerprint(rows) != entry["fingerprint"]:
        raise ChunkError(f"chunk {chunk}: the catalogue's rows do not match the plan; rerun the "
                         "split step")
    return rows


# --- one chunk ---------------------------------------------------------------------------------

def settings_digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def write_chunk(full: pd.DataFrame, path, metadata: dict) -> Path:
    """A chunk's rows (predicted and skipped) with the plan fingerprint and settings in the
    parquet metadata; written to a temporary name and renamed, so a killed job leaves no chunk
    that looks finished."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = arrow_table(full)
    meta = dict(arrow.schema.metadata or {})
    meta[b"spiralarms"] = json.dumps(metadata, default=str).encode()
    with atomic.replacing(path) as partial:
        pq.write_table(arrow.replace_schema_metadata(meta), partial)
    return path


def chunk_metadata(path) -> dict | None:
    """The metadata a finished chunk file was written with, or None (no file, unreadable)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[b"spiralarms"])
    except (OSError, KeyError, ValueError):
        return None


def is_finished(path, entry: dict, digest: str) -> bool:
    meta = chunk_metadata(path)
    return bool(meta) and meta.get("fingerprint") == entry["fingerprint"] and \
        meta.get("settings") == digest


def predict_chunk(predictor, catalog_path, plan: dict, chunk: str, out_path, threads=None):
    """Predict one chunk and write its file. Returns the full table of its rows."""
    from spiralarms.predict.predictor import predict_all_rows

    rows = read_chunk_rows(catalog_path, plan, chunk)
    entry = chunk_entry(plan, chunk)
    full = predict_all_rows(predictor, rows, threads, progress=f"chunk {chunk}: ")
    write_chunk(full, out_path, {"chunk": chunk, "fingerprint": entry["fingerprint"],
                                 "settings": settings_digest(predictor.settings()),
                                 "model_card": predictor.card, "tta": predictor.tta})
    return full


# --- gathering ---------------------------------------------------------------------------------

def layout(out) -> dict:
    """Paths of everything a chunked prediction to `out` (…/<name>.parquet) writes."""
    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise CatalogError(f"chunked predictions are a parquet dataset: give an output ending in "
                           f".parquet, not {out.name}")
    work = out.with_suffix("")
    stem = str(work)
    return {"dataset": out, "work": work, "catalog": work / "catalog.parquet",
            "plan": work / "chunks.json", "chunks": work / "chunks",
            "skipped": Path(stem + ".skipped.csv"), "summary": Path(stem + ".summary.json"),
            "summary_md": Path(stem + ".summary.md"),
            "figure": Path(stem + ".confidence.png")}


def chunk_path(paths: dict, chunk: str) -> Path:
    return paths["chunks"] / f"{chunk}.parquet"


def gather(plan: dict, chunk_files, dataset_dir, skipped_csv, summary_json, summary_md=None,
           figure=None, name: str = "") -> dict:
    """Merge finished chunks into the dataset (one part per chunk, predicted rows only), the
    skipped list and the summary; refuse chunks that do not match the plan. Returns the summary.

    The dataset folder is built beside its final path and swapped in whole: until then a reader
    sees the previous complete dataset, never part of the new one."""
    chunk_files = [Path(p) for p in chunk_files]
    entries = plan["chunks"]
    if len(chunk_files) != len(entries):
        raise ChunkError(f"{len(chunk_files)} chunk files for a plan of {len(entries)} chunks")
    dataset_dir = Path(dataset_dir)
    if dataset_dir.is_file():
        dataset_dir.unlink()
    dataset_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing_dir(dataset_dir) as partial_dir:
        merged = _merge_chunks(entries, chunk_files, partial_dir)
    return _write_gathered(plan, *merged, skipped_csv, summary_json, summary_md, figure, name)


def _merge_chunks(entries, chunk_files, dataset_dir):
    """Write one dataset part per chunk into `dataset_dir`; return (total, predicted, skipped,
    class counts, confidence histograms, card, tta)."""
    import pyarrow.parquet as pq

    skipped_parts, class_counts, confidence, card, tta = [], None, None, None, 1
    total = predicted = 0
    for entry, path in zip(entries, chunk_files):
        meta = chunk_metadata(path) or {}
        if meta.get("fingerprint") != entry["fingerprint"]:
            raise ChunkError(f"chunk file {path} was predicted for other catalogue rows than "
                             f"chunk {entry['chunk']} of the plan: delete it and rerun")
        full = pq.read_table(path).to_pandas()
        if len(full) != entry["stop"] - entry["start"] or \
                full["row"].tolist() != list(range(entry["start"], entry["stop"])):
            raise ChunkError(f"chunk file {path} holds {len(full)} rows, the plan "
                             f"{entry['stop'] - entry['start']}: delete it and rerun")
        card, tta = meta.get("model_card") or card, meta.get("tta", tta)
        skip = full["skip_code"] != ""
        kept = full[~skip].drop(columns=["skip_code", "skip_reason"])
        part = arrow_table(kept)
        part_meta = {**(part.schema.metadata or {}), b"spiralarms": json.dumps(
            {"chunk": entry["chunk"], "model_card": meta.get("model_card"),
             "tta": meta.get("tta")}).encode()}
        pq.write_table(part.replace_schema_metadata(part_meta),
                       dataset_dir / f"part-{entry['chunk']}.parquet")
        skipped_parts.append(full.loc[skip, ["row", "id", "file", "path", "skip_code",
                                             "skip_reason"]])
        counts = kept["pred_name"].value_counts()
        class_counts = counts if class_counts is None else class_counts.add(counts, fill_value=0)
        hist = {name: np.histogram(group["p_max"], CONFIDENCE_BINS)[0]
                for name, group in kept.groupby("pred_name")}
        confidence = _add_hist(confidence, hist)
        total += len(full)
        predicted += len(kept)
    skipped = pd.concat(skipped_parts) if skipped_parts else pd.DataFrame(
        columns=["row", "id", "file", "path", "skip_code", "skip_reason"])
    skipped = skipped.rename(columns={"skip_code": "code", "skip_reason": "reason"})
    return total, predicted, skipped, class_counts, confidence, card, tta


def _write_gathered(plan, total, predicted, skipped, class_counts, confidence, card, tta,
                    skipped_csv, summary_json, summary_md, figure, name) -> dict:
    Path(skipped_csv).parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(skipped_csv) as partial:
        skipped[SKIPPED_COLUMNS].to_csv(partial, index=False)
    summary = summarise(name, plan, total, predicted, skipped, class_counts, confidence, card, tta,
                        SKIP_MEANINGS)
    _write_json(summary_json, summary)
    if summary_md:
        atomic.write_text(summary_md, summary_markdown(summary))
    if figure:
        confidence_figure(summary, figure)
    if not summary["reconciles"]:
        raise ChunkError(f"counts do not reconcile: {summary['catalogue_rows']} catalogue rows, "
                         f"{predicted} predicted + {len(skipped)} skipped")
    return summary


def _add_hist(total, hist):
    if total is None:
        return {k: v.copy() for k, v in hist.items()}
    for key, values in hist.items():
        total[key] = total.get(key, np.zeros_like(values)) + values
    return total


def summarise(name, plan, total, predicted, skipped, class_counts, confidence, card, tta,
              meanings) -> dict:
    from spiralarms.data.variants import get_variant, long_names

    names = list(card["class_names"]) if card else []
    labels = long_names(get_variant(card["classes"])) if card else []
    counts = (class_counts if class_counts is not None else pd.Series(dtype=float))
    counts = counts.reindex(names, fill_value=0).astype(int)
    by_reason = skipped["code"].value_counts() if len(skipped) else pd.Series(dtype=int)
    confidence = confidence or {}
    return {
        "name": name,
        "catalogue_rows": int(plan["rows"]),
        "rows_in_chunks": int(total),
        "predicted": int(predicted),
        "skipped": len(skipped),
        "reconciles": int(plan["rows"]) == int(total) == int(predicted) + len(skipped),
        "chunks": len(plan["chunks"]),
        "chunk_size": int(plan["chunk_size"]),
        "tta": int(tta or 1),
        "model_card": card,
        "classes": [{"class": n, "label": label, "count": int(counts[n]),
                     "share": float(counts[n] / predicted) if predicted else 0.0}
                    for n, label in zip(names, labels)],
        "skipped_by_reason": [{"code": code, "count": int(count),
                               "meaning": meanings.get(code, code)}
                              for code, count in by_reason.items()],
        "confidence": {"bins": CONFIDENCE_BINS.round(3).tolist(),
                       "counts": {n: confidence.get(n, np.zeros(len(CONFIDENCE_BINS) - 1,
                                                                int)).astype(int).tolist()
                                  for n in names}},
    }


def summary_markdown(summary: dict) -> str:
    counts = (f"{summary['catalogue_rows']} catalogue rows = {summary['predicted']} predicted "
              f"+ {summary['skipped']} skipped "
              f"({'reconciled' if summary['reconciles'] else 'DO NOT RECONCILE'}); "
              f"{summary['chunks']} chunks of up to {summary['chunk_size']}; "
              f"test-time views: {summary['tta']}.")
    lines = [f"# Predictions {summary['name']}".rstrip(), "", counts, "",
             "| class | count | share | median top probability |", "|---|---:|---:|---:|"]
    bins = np.asarray(summary["confidence"]["bins"])
    for entry in summary["classes"]:
        hist = np.asarray(summary["confidence"]["counts"][entry["class"]])
        lines.append(f"| {entry['label']} | {entry['count']} | {entry['share']:.1%} | "
                     f"{_hist_median(hist, bins)} |")
    lines += ["", "| skipped because | rows |", "|---|---:|"]
    lines += [f"| {s['meaning']} (`{s['code']}`) | {s['count']} |"
              for s in summary["skipped_by_reason"]] or ["| (nothing skipped) | 0 |"]
    return "\n".join(lines) + "\n"


def _hist_median(hist, bins) -> str:
    if hist.sum() == 0:
        return "–"
    index = int(np.searchsorted(np.cumsum(hist), hist.sum() / 2))
    return f"{bins[index]:.2f}-{bins[index + 1]:.2f}"


def confidence_figure(summary: dict, path):
    """Stacked histogram of the top-class probability, one colour per predicted class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = np.asarray(summary["confidence"]["bins"])
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    bottom = np.zeros(len(bins) - 1)
    for entry in summary["classes"]:
        counts = np.asarray(summary["confidence"]["counts"][entry["class"]], float)
        ax.bar(bins[:-1], counts, width=np.diff(bins), bottom=bottom, align="edge",
               label=f"{entry['label']} ({entry['count']})", edgecolor="white", linewidth=0.4)
        bottom += counts
    ax.set_xlim(0, 1)
    ax.set_xlabel("top-class probability (p_max)")
    ax.set_ylabel("galaxies")
    ax.set_title(f"{summary['name']}: {summary['predicted']} predicted, "
                 f"{summary['skipped']} skipped".lstrip(": "))
    ax.legend(title="predicted class", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(path) as partial:
        fig.savefig(partial, dpi=120, format="png")
    plt.close(fig)


def _write_json(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(data, indent=1, default=str))


# --- the workflow's three rules: predict_split, predict_chunk, predict_gather ----------------------

def run_predict_split(source, settings: dict, catalog_out, plan_out) -> dict:
    """The `predict_split` rule: the catalogue (or folder) -> the normalised catalogue and the
    chunk plan. Returns the plan."""
    table, plan = split(source, settings, {"catalog": catalog_out, "plan": plan_out})
    print(f"{len(table)} rows in {len(plan['chunks'])} chunks of up to {settings['chunk_size']}")
    return plan


def run_predict_chunk(model_path, catalog_path, plan_path, chunk: str, out_path, entry: dict,
                      threads=None) -> pd.DataFrame:
    """The `predict_chunk` rule: one chunk of the prediction job `entry` (config predict.<name>)
    -> its parquet file (every row). TensorFlow starts here: set up the log first."""
    from spiralarms.predict.predictor import Predictor, configure_threads

    pipeline_threads = configure_threads(threads)
    settings = job_settings(entry)
    predictor = Predictor(model_path, None, settings["batch_size"], settings["tta"],
                          settings["fits"], settings["max_upscale"])
    return predict_chunk(predictor, catalog_path, read_plan(plan_path), chunk, out_path,
                         pipeline_threads)


def run_predict_gather(plan_path, chunk_files, dataset_dir, skipped_csv, summary_json,
                       summary_md, figure, name: str) -> dict:
    """The `predict_gather` rule: finished chunks -> parquet dataset, skipped list, summary and
    figure. Returns the summary."""
    summary = gather(read_plan(plan_path), chunk_files, dataset_dir, skipped_csv, summary_json,
                     summary_md, figure, name)
    print(f"{summary['catalogue_rows']} rows: {summary['predicted']} predicted, "
          f"{summary['skipped']} skipped")
    return summary


# --- the CLI's driver: all chunks in this process, finished ones skipped --------------------------

def split(source, settings: dict, paths: dict) -> tuple[pd.DataFrame, dict]:
    table = read_input(source, settings["id_column"], settings["file_column"],
                       settings["size_column"], settings["pixel_scale"])
    plan = plan_chunks(table, settings["chunk_size"])
    write_split(table, plan, paths["catalog"], paths["plan"])
    return table, plan


def run_chunked(predictor, source, settings: dict, out, threads=None, name="") -> dict:
    """Split, predict every unfinished chunk, gather; returns the summary (with `redone`)."""
    paths = layout(out)
    table, plan = split(source, settings, paths)
    if not len(table):
        raise CatalogError(f"{source} lists no images")
    digest = settings_digest(predictor.settings())
    done = []
    for entry in plan["chunks"]:
        target = chunk_path(paths, entry["chunk"])
        if is_finished(target, entry, digest):
            continue
        predict_chunk(predictor, paths["catalog"], plan, entry["chunk"], target, threads)
        done.append(entry["chunk"])
        log.info("chunk %s of %d written", entry["chunk"], len(plan["chunks"]))
    _remove_extra_chunks(paths, plan)
    summary = gather(plan, [chunk_path(paths, e["chunk"]) for e in plan["chunks"]],
                     paths["dataset"], paths["skipped"], paths["summary"], paths["summary_md"],
                     paths["figure"], name or Path(out).stem)
    summary["predicted_chunks"] = done
    return summary


def _remove_extra_chunks(paths, plan):
    """Chunk files beyond the plan (the catalogue got shorter) would confuse a reader."""
    wanted = {f"{e['chunk']}.parquet" for e in plan["chunks"]}
    for path in paths["chunks"].glob("*.parquet"):
        if path.name not in wanted:
            path.unlink()
