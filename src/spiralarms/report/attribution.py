"""The attribution measure across experiments (the `xai_summary` rule): results/summary/
attribution.csv and .md from each xai folder's attribution.csv (`spiralarms.xai.attribution`)."""

import json
from pathlib import Path

import pandas as pd

from spiralarms import atomic
from spiralarms.report.tables import number
from spiralarms.report.tables import to_markdown as markdown_table
from spiralarms.training.experiment import Experiment
from spiralarms.xai.attribution import NO_MASKS, REGIONS, SUMMARY_COLUMNS, SUMMARY_FILE, TARGET


def collect(xai_dirs) -> pd.DataFrame:
    """One table over experiments: each xai folder's attribution.csv with the experiment's
    name, network and class variant in front; a folder without one (real data, no masks) gives
    one row whose status says so."""
    frames = []
    for folder in map(Path, xai_dirs):
        experiment = Experiment.parse(folder.parent.name)
        front = {"experiment": experiment.name, "model": experiment.model,
                 "classes": experiment.classes, "seed": experiment.seed}
        if (folder / SUMMARY_FILE).exists():
            table = pd.read_csv(folder / SUMMARY_FILE, dtype={"class": str})
            status = "measured"
        else:
            status = NO_MASKS
            meta = folder / "xai.json"
            if meta.exists():
                status = json.loads(meta.read_text()).get("attribution", {}).get("status", status)
            table = pd.DataFrame([{}], columns=SUMMARY_COLUMNS)
        frames.append(table.assign(**front, status=status))
    columns = ["experiment", "model", "classes", "seed", "status", *SUMMARY_COLUMNS]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def to_markdown(table: pd.DataFrame) -> str:
    """The summary as markdown: per experiment, method and class, energy share against area
    (the chance level) for arms, galaxy and sky."""
    intro = ("Share of each map's energy (its non-negative sum, maps scaled to [0, 1]) on the "
             "renderer's arm and galaxy masks, in the model's view (central crop, resized); "
             "`area` is the share of the view the mask covers, what a map spread evenly would "
             "score; `lift` = share / area (> 1: the map concentrates there). Each galaxy is "
             f"explained for its {TARGET}; shares leave out all-zero maps (`zero maps`). "
             "docs/xai-attribution.md defines the masks.")
    lines = ["# Where the attribution falls (energy-based pointing)", "", intro, ""]
    measured = table[table["status"] == "measured"]
    for row in table[table["status"] != "measured"].drop_duplicates("experiment").itertuples():
        lines.append(f"- {row.experiment}: {row.status}")
    if len(table) > len(measured):
        lines.append("")
    if not len(table):
        lines.append("No xai-mode experiments.")
    if len(measured):
        display = pd.DataFrame({
            "experiment": measured["experiment"], "method": measured["method"],
            "class": measured["class"], "n": measured["n"].astype(int),
            "zero maps": measured["n_zero_maps"].astype(int),
            **{f"{region} share (area)": [
                f"{number(s)} ({number(a)})" for s, a in
                zip(measured[f"{region}_share"], measured[f"{region}_area"])]
               for region in REGIONS},
            "arm lift": measured["arm_lift"].map(lambda v: number(v, 2)),
            "galaxy lift": measured["galaxy_lift"].map(lambda v: number(v, 2)),
        })
        lines.append(markdown_table(display))
    return "\n".join(lines).rstrip() + "\n"


def write_summary(xai_dirs, csv_path, markdown_path) -> pd.DataFrame:
    """results/summary/attribution.csv and .md over every xai-mode experiment."""
    table = collect(xai_dirs)
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(csv_path) as partial:
        table.to_csv(partial, index=False, float_format="%.4f", lineterminator="\n")
    atomic.write_text(markdown_path, to_markdown(table))
    return table


def run_xai_summary(xai_dirs, csv_path, markdown_path) -> pd.DataFrame:
    """The `xai_summary` rule: write_summary, and a line saying what it holds."""
    table = write_summary(xai_dirs, csv_path, markdown_path)
    print(f"attribution summary: {table['experiment'].nunique()} experiment(s), "
          f"{int((table['status'] == 'measured').sum())} measured row(s)")
    return table
