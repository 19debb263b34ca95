"""Import a trained model from elsewhere into an experiment folder, ready for `predict`: the
`import_model` rule, which stands in for `train` (ruleorder import_model > train).

Sources: a `.keras` file, a zip/tar(.gz) archive holding exactly one, a folder holding exactly one,
a Google Drive file (`gdrive:<id>` or a drive.google.com link), or an exported model elsewhere (the
https:// URL of its zip, or `hf_hub:<owner>/<repo>`: fetched once into the model cache,
spiralarms.acquire.model_source). The model must load in Keras'
safe mode (no Lambda layers or other Python code), and is written as `model.keras` with its
`model.json` card and an `imported.json` provenance note (source, SHA-256, time).

The original notebook saved TF checkpoints (`results/finetune_minimal.index` + `.data-*`,
`save_weights_only=True`), not whole models; they cannot be imported directly (see CHECKPOINT_HINT).
"""

import logging
import re
import shutil
import tarfile
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import keras

from spiralarms import atomic
from spiralarms.acquire import AcquireError, fetch_gdrive, safe_extract, sha256_of
from spiralarms.acquire.model_source import HF_HUB, fetch_model, fetch_model_archive
from spiralarms.data.channels import CHANNELS
from spiralarms.data.variants import VARIANTS, get_variant
from spiralarms.models import (
    MODES,
    model_card,
    votes,  # noqa: F401 - registers the votes head's layer for load_model
)
from spiralarms.models.file_kinds import describe
from spiralarms.training.experiment import Experiment

log = logging.getLogger(__name__)

DRIVE_LINK = re.compile(r"^https?://(drive|docs)\.google\.com/|^https?://drive\.usercontent\.")
CHECKPOINT_HINT = (
    "A TF checkpoint (e.g. the notebook's finetune_minimal.index + .data-00000-of-00001) or a bare "
    "weights file holds weights, not a model: convert it first by building the same network "
    "(spiralarms.models.networks.build_model), loading the weights into it (load_weights) and saving it "
    "with model.save('model.keras'). Keras 3 cannot read TF checkpoints, so that step needs the "
    "notebook's TensorFlow 2 / tf-keras environment; it is not automated here."
)


class ModelImportError(AcquireError):
    """A source holds no single loadable, safe Keras model."""


def import_model(source, experiment_dir, card: dict | None = None, max_bytes=2e9,
                 overwrite: bool = False) -> Path:
    """Copy the model in `source` to `experiment_dir/model.keras` and return that path.

    The card comes from a model.json beside the model (in the archive or folder) with the
    entries of `card` on top, over what the experiment folder's name
    `{model}_{classes}_{mode}_s{seed}` says; model type and image size come from the network's
    input, the crop size defaults to 224.
    A folder with such a name takes only the model it names (network, variant, outputs, mode).
    Nothing is written into `experiment_dir` unless the model loads safely and the card fits it.
    """
    experiment_dir = Path(experiment_dir)
    target = experiment_dir / "model.keras"
    if target.exists() and not overwrite:
        raise ModelImportError(f"{target} already exists; delete it (or pass overwrite=True / "
                               f"--force) to replace it with {source}")
    experiment_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{experiment_dir.name}.", suffix=".import",
                                    dir=experiment_dir.parent))
    try:
        local = local_source(source, staging)
        model_file = find_model_file(unpack(local, staging, max_bytes), source)
        model = load_safely(model_file, source)
        claimed, origin = _claimed_card(model_file, card)
        _check_fits_experiment(model, claimed, origin, experiment_dir, source)
        full_card = model_card.complete(model, model_file,
                                        _card_overrides(claimed, experiment_dir))
        experiment_dir.mkdir(parents=True, exist_ok=True)
        # The card and provenance first, the model last: model.keras (the rule's output) is
        # there only with everything it needs, each file complete or absent; a model being
        # replaced goes first, so it is never paired with the new card.
        target.unlink(missing_ok=True)
        variant = get_variant(full_card["classes"])
        model_card.write(target, full_card["model"], variant, full_card["mode"], full_card)
        _write_provenance(experiment_dir / "imported.json", source, local, model_file, staging)
        with atomic.replacing(target) as partial:
            shutil.copyfile(model_file, partial)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("imported %s to %s", source, target)
    return target


# --- getting the model file --------------------------------------------------------------------

def local_source(source, staging: Path) -> Path:
    """A local path for `source`, downloading Google Drive files into `staging` and exported
    models (a zip URL: the zip, whose sha256 goes into imported.json; hf_hub: the folder of
    model.keras and model.json) into the model cache."""
    text = str(source)
    if text.startswith("gdrive:") or DRIVE_LINK.match(text):
        return fetch_gdrive(text, staging / "download" / "")
    if text.startswith(HF_HUB):
        return fetch_model(text, key="import-model SOURCE").parent
    if re.match(r"^https?://", text, re.IGNORECASE):
        return fetch_model_archive(text, key="import-model SOURCE")
    if re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        raise ModelImportError(f"cannot import from {text!r}: give a local file or folder, "
                               f"gdrive:<file id>, a drive.google.com link, the https:// URL of "
                               f"an exported model's zip or hf_hub:<owner>/<repo>")
    path = Path(text).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"model source {path} does not exist")
    return path


def unpack(local: Path, staging: Path, max_bytes) -> Path:
    """A folder (or a single .keras file) to search: archives are extracted safely first.
    A .keras file is itself a zip, so its suffix is checked before the archive test."""
    if local.is_dir() or local.suffix.lower() == ".keras":
        if local.is_file() and local.stat().st_size > max_bytes:
            raise ModelImportError(f"{local} is {local.stat().st_size:,} bytes, over the limit "
                                   f"of {int(max_bytes):,} (max_bytes)")
        return local
    if zipfile.is_zipfile(local) or tarfile.is_tarfile(local):
        folder = staging / "extracted"
        safe_extract(local, folder, max_total_bytes=int(max_bytes))
        return folder
    raise ModelImportError(f"{local} is {describe(local)}, neither a .keras model nor a zip/tar "
                           f"archive nor a folder. {CHECKPOINT_HINT}")


def find_model_file(location: Path, source) -> Path:
    """The one *.keras file at `location`; errors list the candidates or what was there."""
    if location.is_file():
        return location
    files = [p for p in location.rglob("*") if p.is_file() and not _is_junk(p, location)]
    candidates = sorted(p for p in files if p.suffix.lower() == ".keras")
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        listed = ", ".join(str(p.relative_to(location)) for p in candidates)
        raise ModelImportError(f"{source} holds {len(candidates)} .keras files ({listed}); "
                               f"import the one you want from a file or archive of its own")
    listed = ", ".join(str(p.relative_to(location)) for p in sorted(files)[:10]) or "nothing"
    raise ModelImportError(f"{source} holds no .keras model (found: {listed}). {CHECKPOINT_HINT}")


def _is_junk(path: Path, root: Path) -> bool:
    """macOS archive droppings ('__MACOSX/', '._model.keras') look like models but are not."""
    parts = path.relative_to(root).parts
    return "__MACOSX" in parts or path.name.startswith("._")


def load_safely(model_file: Path, source):
    """Load with safe_mode=True; a refusal says that the model carries Python code."""
    if not zipfile.is_zipfile(model_file):  # Keras would answer "File not found"
        raise ModelImportError(
            f"{source}: {model_file} is not a Keras model: it is {describe(model_file)}, not the "
            f"zip archive that model.save('model.keras') writes. Give that .keras file (or an "
            f"archive or folder holding it)")
    try:
        return keras.models.load_model(model_file, safe_mode=True)
    except Exception as error:  # Keras raises ValueError, TypeError, OSError... for bad files
        text = str(error)
        if "safe_mode" in text or "Lambda" in text:
            raise ModelImportError(
                f"{source}: refused by Keras safe mode: the model contains a Lambda layer or "
                f"other Python code, which could run arbitrary code when loaded. Only models "
                f"built from standard Keras layers can be imported. ({text.splitlines()[0]})"
            ) from error
        raise ModelImportError(f"{source}: {model_file.name} is not a loadable Keras model "
                               f"({type(error).__name__}: {text[:300]})") from error


# --- the model card and provenance ---------------------------------------------------------------

def _claimed_card(model_file: Path, card: dict | None) -> tuple[dict, str]:
    """What the model is said to be: the model.json that comes with it (model_card.complete
    reads it too), with the entries of `card` on top; and where that was said."""
    found = model_card.card_path(model_file)
    from_file = model_card.read(model_file)
    given = {k: v for k, v in (card or {}).items() if v is not None}
    conflicts = {k: (from_file[k], v) for k, v in given.items()
                 if k in from_file and from_file[k] != v}
    if conflicts:
        log.warning("given card entries override those of %s: %s", found, conflicts)
    said = (["the model.json that came with it"] if from_file else []) + (
        [f"the given {', '.join(sorted(given))}"] if given else [])
    return {**from_file, **given}, " and ".join(said) or "no model.json came with it"


def _check_fits_experiment(model, claimed: dict, origin: str, experiment_dir: Path, source):
    """Refuse a model whose network, class variant or mode is not the one its experiment folder
    names: evaluation and prediction take the variant from the name, so a 6-class model in a
    select12 folder would be scored on 2 of its 6 outputs without a word."""
    try:
        experiment = Experiment.parse(experiment_dir.name)
    except ValueError:
        return  # not a pipeline experiment folder: the card alone says what the model is
    outputs = model.outputs[0].shape[-1] if len(model.outputs) == 1 else None
    channels = model.inputs[0].shape[-1] if len(model.inputs) == 1 else None
    network = next((name for name, c in CHANNELS.items() if c == channels), None)
    found = {"model": claimed.get("model", network), "classes": claimed.get("classes"),
             "mode": claimed.get("mode")}
    wanted = {"model": experiment.model, "classes": experiment.classes, "mode": experiment.mode}
    if (all(found[k] in (None, wanted[k]) for k in wanted) and network == experiment.model
            and outputs == experiment.variant.n_classes):
        return
    said = f"from {origin}" if claimed else origin
    classes = found["classes"] or " or ".join(
        name for name, variant in VARIANTS.items() if variant.n_classes == outputs) or "?"
    if (found["classes"] in VARIANTS and VARIANTS[found["classes"]].n_classes == outputs
            and CHANNELS.get(found["model"]) == channels and found["mode"] in MODES):
        own = Experiment(found["model"], found["classes"], found["mode"], experiment.seed,
                         experiment.split)
        fits = f" Import it as the experiment it is, e.g. {experiment_dir.with_name(own.name)}, or"
    else:
        fits = " Import it into a folder named for what it is, or"
    raise ModelImportError(
        f"{source} does not fit experiment {experiment.name}: that name means model "
        f"{experiment.model}, variant {experiment.classes} ({experiment.variant.n_classes} "
        f"outputs), mode {experiment.mode}; the model is {found['model'] or network}, variant "
        f"{classes} ({outputs} outputs), mode {found['mode'] or 'not stated'} ({said}; "
        f"its network takes {channels} channel(s) and outputs {outputs}).{fits} import the "
        f"{experiment.model} {experiment.classes} model that experiment needs. Evaluation "
        f"takes the variant from the folder name, so a mismatch would be scored wrongly."
    )


def _card_overrides(claimed: dict, experiment_dir: Path) -> dict:
    """Card entries for model_card.complete: what the folder name says, the model's own claims on
    top (_claimed_card; they agree for a pipeline experiment, _check_fits_experiment), the paper's
    crop by default."""
    merged = {"crop_size": model_card.DEFAULTS["crop_size"], **_card_from_name(experiment_dir),
              **claimed}
    if "classes" not in merged:
        raise ModelImportError(
            f"no model.json comes with the model and the folder name {experiment_dir.name!r} is "
            f"not '{{model}}_{{classes}}_{{mode}}_s{{seed}}': give the class variant (--classes, "
            f"one of {sorted(VARIANTS)}) or name the folder e.g. b0_6class_standard_s42"
        )
    return merged


def _card_from_name(experiment_dir: Path) -> dict:
    try:
        experiment = Experiment.parse(experiment_dir.name)
    except ValueError:
        return {}  # then the caller must give the classes
    return {"model": experiment.model, "classes": experiment.classes, "mode": experiment.mode}


def _write_provenance(path, source, local, model_file, staging):
    record = {
        "source": str(source),
        "source_sha256": sha256_of(local) if local.is_file() else None,
        "member": None if model_file == local else _member_name(model_file, local, staging),
        "sha256": sha256_of(model_file),  # model.keras is a copy of it
        "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic.write_json(path, record, indent=1)


def _member_name(model_file: Path, local: Path, staging: Path) -> str:
    root = local if local.is_dir() else staging / "extracted"
    return model_file.relative_to(root).as_posix()
