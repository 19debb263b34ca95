"""A trained experiment as a model that travels: one folder to zip, hand over or push to Hugging Face.

`export_model(experiment_dir, out, config)` writes into `out`:
- `model.keras` (a copy) and its `model.json` card: all `spiralarms predict --model` needs;
- `README.md`: a model card in Hugging Face's format (YAML front matter with library, tags, licence,
  metrics and a model-index; then task, classes, preprocessing, training data and selection,
  metrics with their 95 % bootstrap intervals from metrics.json, weights provenance, licence and the
  citation of arXiv:2412.11696);
- `config.yaml`: the training config (data sources, selection, train, the model's weights) and
  `metrics.json` when the experiment was evaluated; `imported.json` for an imported model.
The folder is built beside `out` and renamed into place (`atomic.replacing_dir`).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import yaml

from spiralarms import atomic
from spiralarms.data.channels import CHANNELS
from spiralarms.data.variants import display_name, get_variant
from spiralarms.models import model_card

PAPER = "arXiv:2412.11696"
CITATION = """@article{lee2024spiralarms,
  title   = {Classification of Spiral Galaxies by Spiral Arm Number using Convolutional Neural Network},
  author  = {Lee and Soo and Sharoni},
  journal = {arXiv e-prints},
  eprint  = {2412.11696},
  archivePrefix = {arXiv},
  year    = {2024}
}"""
ZOOBOT_ENCODER = "hf_hub:mwalmsley/zoobot-encoder"
TRAINING_KEYS = ("data", "synthetic", "selection", "votes", "shards", "train")
COPIED = ("metrics.json", "imported.json", "history.csv")


class ExportError(ValueError):
    """An experiment folder that cannot be exported (no model, no card)."""


def default_license(card: dict) -> str:
    """gpl-3.0 for a model started from Zoobot's GPL-3.0 encoder (a derived work); else 'other':
    the exporter chooses (--license)."""
    source = str(((card.get("training") or {}).get("weights") or {}).get("source") or "")
    return "gpl-3.0" if source.startswith(ZOOBOT_ENCODER) else "other"


def export_model(experiment_dir, out, config: dict, license: str | None = None,
                 overwrite: bool = False) -> Path:
    """Write the shareable folder `out` of the experiment in `experiment_dir` (see the module)."""
    experiment_dir, out = Path(experiment_dir), Path(out)
    model = experiment_dir / "model.keras"
    if not model.is_file():
        raise ExportError(f"{experiment_dir} holds no model.keras: train or import the experiment "
                          f"first (snakemake {model})")
    card = model_card.read(model)
    missing = [k for k in model_card.KEYS if card.get(k) is None]
    if missing:
        raise ExportError(f"model card {model_card.card_path(model)} lacks {missing}; a model that "
                          "travels must say how to feed it (spiralarms import-model writes a card)")
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; delete it or pass --force to replace it")
    metrics = _read_json(experiment_dir / "metrics.json")
    license = license or default_license(card)
    name = experiment_dir.name
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing_dir(out) as folder:
        shutil.copyfile(model, folder / "model.keras")
        shutil.copyfile(model_card.card_path(model), folder / "model.json")
        for extra in COPIED:
            if (experiment_dir / extra).is_file():
                shutil.copyfile(experiment_dir / extra, folder / extra)
        (folder / "config.yaml").write_text(training_config(config, name, card))
        imported = (experiment_dir / "imported.json").is_file()
        (folder / "README.md").write_text(model_card_markdown(name, card, metrics, config,
                                                              license, imported))
    return out


def training_config(config: dict, name: str, card: dict) -> str:
    """The config keys that made this model, as YAML (the run's own, schema defaults filled)."""
    model = card["model"]
    kept = {key: config[key] for key in TRAINING_KEYS if key in config}
    if model in (config.get("models") or {}):
        kept["models"] = {model: config["models"][model]}
    header = (f"# The training config of {name}, exported by spiralarms export-model on "
              f"{datetime.now(timezone.utc).date()}: the run's config (schema defaults filled in)\n"
              "# for the keys that decide this model. Rerun it with this file as --configfile.\n")
    return header + yaml.safe_dump(kept, sort_keys=False)


def model_card_markdown(name: str, card: dict, metrics: dict, config: dict, license: str,
                        imported: bool = False) -> str:
    variant = get_variant(card["classes"])
    synthetic = bool((config.get("synthetic") or {}).get("enabled"))
    return "---\n" + yaml.safe_dump(front_matter(name, card, metrics, license, synthetic),
                                     sort_keys=False) + "---\n\n" + "\n".join([
        f"# {name}: the number of spiral arms of a galaxy from its image\n",
        _task(card, variant),
        _preprocessing(card),
        _training_data(config, metrics),
        _metrics_section(metrics),
        _provenance(card, imported),
        _usage(),
        f"## Licence\n\n`{license}`"
        + (" (the backbone started from Zoobot's GPL-3.0 encoder, so its weights are a derived "
           "work)." if license == "gpl-3.0" and default_license(card) == "gpl-3.0" else
           " (not chosen at export; ask the exporter)." if license == "other" else "."),
        (f"\n## Citation\n\nThe method is that of {PAPER} (rebuilt by the spiralarms pipeline); "
        f"cite the paper when you use this model:\n\n```bibtex\n{CITATION}\n```\n"),
    ])


def front_matter(name: str, card: dict, metrics: dict, license: str,
                 synthetic: bool = False) -> dict:
    """Hugging Face's model-card metadata: library, tags, licence, metrics and a model-index with
    the primary subset's accuracy and macro-F1."""
    subset = metrics.get("subset")
    results = []
    if subset and metrics.get("accuracy") is not None:
        data = "synthetic GZ2-like sky" if synthetic else "Galaxy Zoo 2"
        results.append({
            "task": {"type": "image-classification", "name": "Spiral-arm number classification"},
            "dataset": {"name": f"{data} ({subset} subset)", "type": "galaxy-zoo-2",
                        "split": subset},
            "metrics": [{"type": "accuracy", "value": round(float(metrics["accuracy"]), 4),
                         "name": f"Accuracy ({subset})"},
                        {"type": "f1", "value": round(float(metrics["macro_f1"]), 4),
                         "name": f"Macro-F1 ({subset})"}]})
    return {
        "library_name": "keras",
        "license": license,
        "pipeline_tag": "image-classification",
        "tags": ["keras", "image-classification", "astronomy", "galaxy-morphology", "galaxy-zoo",
                 "spiral-arms", "spiralarms", card["model"], card["classes"]],
        "metrics": ["accuracy", "f1"],
        "model-index": [{"name": name, "results": results}],
    }


def _task(card: dict, variant) -> str:
    rows = "\n".join(f"| {i} | `{n}` | {display_name(n)} |"
                     for i, n in enumerate(variant.class_names))
    return (f"## Task\n\nClassifies a galaxy image by its number of spiral arms, as Galaxy Zoo 2's "
            f"volunteers answered the question \"How many spiral arms are there?\" (variant "
            f"`{variant.name}`, {variant.n_classes} classes; mode `{card['mode']}`). The output is "
            f"a softmax over the classes:\n\n| index | class | meaning |\n|---|---|---|\n{rows}\n")


def _preprocessing(card: dict) -> str:
    channels = CHANNELS[card["model"]]
    colour = ("greyscale: the mean of R, G and B, in [0, 1]" if channels == 1
              else "RGB scaled to 0-255 (Keras' EfficientNetV2 rescales inside the model)")
    network = "EfficientNetB0" if card["model"] == "b0" else "EfficientNetV2M"
    return (f"## Preprocessing\n\nNetwork `{card['model']}` ({network}). Input: a galaxy framed like a GZ2 cut-out (424 x 424 px at 0.02 x Petrosian R90 "
            f"arcsec per pixel, galaxy centred); its central {card['crop_size']} px are resized "
            f"(antialiased) to {card['image_size']} x {card['image_size']} px, {colour}. "
            f"`model.json` records these sizes, and `spiralarms predict` applies exactly this "
            f"(also to images of other sizes and framings, and FITS).\n")


def _training_data(config: dict, metrics: dict) -> str:
    data, selection = config.get("data") or {}, config.get("selection") or {}
    synthetic = (config.get("synthetic") or {}).get("enabled")
    source = ("the project's synthetic GZ2-like sky (not real galaxies: a demonstration model)"
              if synthetic else
              f"Galaxy Zoo 2 (catalogue `{data.get('catalog')}`, images `{data.get('images')}`)")
    cuts = ", ".join(f"{k} {selection[k]}" for k in ("features_min", "not_edgeon_min",
                                                      "spiral_min", "votes_min", "cap")
                     if k in selection)
    sizes = ", ".join(f"{s} {int(m['n'])}" for s, m in (metrics.get("subsets") or {}).items()
                      if m.get("n") is not None)
    return (f"## Training data and selection\n\nTrained on {source}. Galaxies selected as in "
            f"{PAPER}: featured, not edge-on, spiral, with enough votes, labelled by the largest "
            f"debiased arm-number vote fraction ({cuts}). Evaluated galaxies per subset: "
            f"{sizes or 'not evaluated'}. The full training config is `config.yaml`.\n")


def _metrics_section(metrics: dict) -> str:
    if not metrics.get("subsets"):
        return "## Metrics\n\nNot evaluated (no metrics.json beside the model).\n"
    lines = ["## Metrics\n", "Bootstrap 95 % intervals over galaxies (metrics.json).\n",
             "| subset | n | accuracy [95 % CI] | macro-F1 [95 % CI] |", "|---|---|---|---|"]
    for subset, m in metrics["subsets"].items():
        lines.append(f"| {subset} | {m.get('n')} | {_with_ci(m, 'accuracy')} | "
                     f"{_with_ci(m, 'macro_f1')} |")
    primary = metrics["subsets"].get(metrics.get("subset")) or {}
    per_class = primary.get("per_class") or {}
    intervals = primary.get("per_class_f1_ci95") or {}
    if per_class:
        lines += ["", f"Per class on {metrics.get('subset')}:", "",
                  "| class | F1 [95 % CI] | precision | recall | galaxies |",
                  "|---|---|---|---|---|"]
        for name, values in per_class.items():
            lines.append(f"| {display_name(name)} | {_fmt(values.get('f1'))}"
                         f"{_ci(intervals.get(name))} | {_fmt(values.get('precision'))} | "
                         f"{_fmt(values.get('recall'))} | {values.get('support', '-')} |")
    return "\n".join(lines) + "\n"


def _with_ci(metrics: dict, key: str) -> str:
    return _fmt(metrics.get(key)) + _ci(metrics.get(f"{key}_ci95"))


def _ci(interval) -> str:
    return f" [{_fmt(interval[0])}, {_fmt(interval[1])}]" if interval else ""


def _fmt(value) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def _provenance(card: dict, imported: bool = False) -> str:
    training = card.get("training") or {}
    weights = training.get("weights") or {}
    if not training:
        where = ("Imported into the pipeline (imported.json: its source and sha256)" if imported
                 else "model.json holds no training record")
        return f"## Weights provenance\n\n{where}; how it was trained is not recorded.\n"
    lines = ["## Weights provenance\n",
             f"- backbone started from: `{weights.get('source') or 'random (from scratch)'}`"
             + (f" (file `{weights['file']}`, sha256 `{weights['sha256']}`)"
                if weights.get("sha256") else ""),
             (f"- the paper's weights: {weights.get('paper', '-')}; these match them: "
             f"{weights.get('matches_paper', 'unknown')}"),
             (f"- precision {training.get('precision')}, batch {training.get('batch_size')}, "
             f"target {training.get('target', 'labels')}")]
    lines += [f"- note: {note}" for note in training.get("notes") or []]
    return "\n".join(lines) + "\n"


def _usage() -> str:
    return ("## How to use\n\nWith the spiralarms package (`pip install -e .` of its repository):"
            "\n\n```bash\nspiralarms predict --model hf_hub:<owner>/<repo> my_cutouts/ -o arms.fits"
            "\n```\n\nor with Keras alone: `keras.models.load_model('model.keras', "
            "safe_mode=True)` and the preprocessing above.\n")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
