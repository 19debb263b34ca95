import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Snakemake and every job import this checkout's src/spiralarms, even where the environment
# holds an install from another checkout (a shared environment on a cluster): Snakemake appends
# the script folder to a job's sys.path, after any install, while PYTHONPATH comes before it.
# Local jobs inherit the variable; `envvars` passes it on to cluster jobs.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
if os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] != SRC:
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [SRC, os.environ.get("PYTHONPATH")])
    )


envvars:
    "PYTHONPATH",


from spiralarms.acquire import sources as acquire_sources
from spiralarms.acquire.sources import planned_path
from spiralarms.config_checks import check_config
from spiralarms.data.channels import CHANNELS
from spiralarms.predict.astro_tables import FORMAT_SUFFIXES
from spiralarms.predict.chunks import (
    catalogue_columns,
    job_settings,
    read_plan,
    source_of,
)
from spiralarms.training import backbones
from spiralarms.training.experiment import (
    NAME_REGEX,
    XAI_NAME_REGEX,
    Experiment,
    experiment_note,
    extra_splits,
    grid,
    target_pairs,
    train_settings,
)

# --- The layout of results/ (fixed; data.download_dir is the one folder the config moves) ---
RESULTS = "results"
SYNTHETIC = f"{RESULTS}/data/synthetic"
SPLITS = f"{RESULTS}/splits"
WEIGHTS = f"{RESULTS}/weights"
EXPERIMENT_DIR = f"{RESULTS}/experiments/{{experiment}}"
PREDICTIONS = f"{RESULTS}/predictions"
ARCHIVE_SUFFIXES = (".7z", ".zip", ".tar", ".tar.gz", ".tgz")

# --- Config checks: before anything below reads the config ---
check_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
if config["synthetic"]["enabled"]:
    for key, expected in [
        ("catalog", f"{SYNTHETIC}/zoo2MainSpecz.csv.gz"),
        ("mapping", f"{SYNTHETIC}/gz2_filename_mapping.csv"),
        ("images", f"{SYNTHETIC}/images_gz2/images"),
    ]:
        if config["data"][key] != expected:
            raise ValueError(
                f"synthetic.enabled is true but data.{key} is {config['data'][key]!r}; "
                f"set it to {expected!r} (or disable synthetic)"
            )

# --- Values the config decides ---
DOWNLOAD = config["data"]["download_dir"]
# The original repository ships the stellar masses and SFRs as `stellar mass_SFR.7z`.
PHYSICAL_CSV = f"{DOWNLOAD}/extracted/stellar_mass_SFR.csv"
EXPERIMENTS = grid(config["experiments"], extra_splits(config["selection"]))


wildcard_constraints:
    experiment=NAME_REGEX,
    split=r"\d+",


def data_path(key):
    """Local path of data.<key> (spiralarms.acquire.sources.planned_path: downloads land in
    data.download_dir)."""
    return planned_path(config["data"][key], DOWNLOAD)


def images_path():
    """The image folder: local, or where fetch_images unpacks a Kaggle dataset or a zip URL."""
    return acquire_sources.image_folder(config["data"]["images"], DOWNLOAD)


def images_archive():
    """fetch_images' zip: the download rule's copy of data.images when that is a URL."""
    images = config["data"]["images"]
    return planned_path(images, DOWNLOAD) if acquire_sources.is_remote(images) else []


def remote_sources():
    """Downloaded file name -> RemoteSource (url, expected sha256, the data.* key asking)."""
    return acquire_sources.remote_sources(config["data"], DOWNLOAD)


def physical_input():
    """The labels rule's physical table: none, the CSV as given, or the CSV from an archive."""
    if not config["data"]["physical"]:
        return []
    if data_path("physical").lower().endswith(ARCHIVE_SUFFIXES):
        return [PHYSICAL_CSV]
    return [data_path("physical")]


def selection_settings(split=None):
    """selection.* for the labels rule; `split`: the seed of another split."""
    settings = {k: v for k, v in config["selection"].items() if k != "split_seeds"}
    return settings if split is None else {**settings, "seed": split}


def split_dir(split):
    """results/ for the split of selection.seed, results/splits/split<k>/ for another."""
    return RESULTS if split is None else f"{SPLITS}/split{split}"


def experiment_shards(wildcards):
    """The shards of the experiment's split; a votes experiment's carry the vote counts."""
    e = experiment(wildcards)
    return f"{split_dir(e.split)}/{'vote_shards' if e.target == 'votes' else 'shards'}"


def experiment_labels(wildcards):
    """The labels of the experiment's split with the volunteers' vote counts (vote_labels):
    both targets' evaluations measure their vote-fraction errors on them."""
    return f"{split_dir(experiment(wildcards).split)}/labels/vote_labels.parquet"


def experiment_vote_report(wildcards):
    """What a votes experiment's shards hold (the vote_labels report); [] for labels."""
    e = experiment(wildcards)
    if e.target != "votes":
        return []
    return f"{split_dir(e.split)}/labels/vote_labels.json"


def experiment(wildcards):
    return Experiment.parse(wildcards.experiment)


# models.<m>.weights -> the files to download, convert and load (spiralarms.training.backbones).
WEIGHT_PLANS = {
    model: backbones.plan(
        model, settings.get("weights"), settings.get("weights_sha256"), WEIGHTS
    )
    for model, settings in config["models"].items()
}


def weight_downloads():
    """File under results/weights/download/ -> Download, over all models' weight sources."""
    return {
        path.removeprefix(f"{WEIGHTS}/download/"): download
        for weights in WEIGHT_PLANS.values()
        for path, download in weights.downloads.items()
    }


def weight_download_key(file):
    """The config key (models.<m>.weights) that asks for results/weights/download/<file>."""
    return next(
        f"models.{weights.model}.weights"
        for weights in WEIGHT_PLANS.values()
        if f"{WEIGHTS}/download/{file}" in weights.downloads
    )


def weight_conversions():
    """Name of a converted weights file (results/weights/<name>.weights.h5) -> its plan."""
    return {
        Path(w.file).name.removesuffix(".weights.h5"): w
        for w in WEIGHT_PLANS.values()
        if w.state_dict
    }


def experiment_weights(wildcards):
    """The weights plan of one experiment (`experiment:` sources train from scratch themselves)."""
    model = experiment(wildcards).model
    return backbones.for_experiment(WEIGHT_PLANS[model], wildcards.experiment)


def model_weights(wildcards):
    """The weights file an experiment's backbone loads ([] when it trains from scratch)."""
    weights = experiment_weights(wildcards)
    return weights.file if weights.pretrained else []


def weights_source(wildcards):
    weights = experiment_weights(wildcards)
    return {"spec": weights.spec, "matches_paper": weights.matches_paper()}


def experiment_train_settings(wildcards):
    return train_settings(config, experiment(wildcards).model, wildcards.experiment)


def network_threads(wildcards):
    """Cores of a job that runs a network (train, evaluate, xai): the experiment's train.threads."""
    return experiment_train_settings(wildcards)["threads"]


def xai_experiments():
    return [e for e in EXPERIMENTS if Experiment.parse(e).mode == "xai"]


def prediction_model(name):
    """config predict.<name>.model: an experiment name (trained here) or a .keras path."""
    model = config["predict"][name]["model"]
    if re.fullmatch(NAME_REGEX, model):
        return expand(rules.train.output.model, experiment=model)[0]
    return model


# --- predict.<name>: chunked prediction helpers (workflow/rules/predict.smk) ---
PREDICTION_NAMES = "|".join(map(re.escape, config["predict"])) or "no-prediction"


def prediction_settings(name):
    return job_settings(config["predict"][name])


def prediction_source(wildcards):
    """The job's catalogue or folder; for positions, the manifest of the fetched cut-outs."""
    if config["predict"][wildcards.name].get("positions"):
        return rules.predict_cutouts.output.manifest
    return source_of(config["predict"][wildcards.name])


def cutout_entry(wildcards):
    """What predict_cutouts needs of predict.<name>: the columns and the cut-out options (a
    change fetches what the new URLs ask for)."""
    settings = prediction_settings(wildcards.name)
    return {
        "id_column": settings["id_column"],
        "size_column": settings["size_column"],
        "cutouts": settings.get("cutouts") or {},
    }


def prediction_plan(wildcards):
    """The chunk plan of predict.<name>, once predict_split has run."""
    plan = checkpoints.predict_split.get(name=wildcards.name).output.plan
    return read_plan(plan)


def prediction_tables():
    """predict.<name>.tables as files: results/predictions/<name>.fits and/or .vot."""
    return [
        f"{PREDICTIONS}/{name}{FORMAT_SUFFIXES[kind]}"
        for name in config["predict"]
        for kind in prediction_settings(name)["tables"]
    ]


def prediction_chunks(wildcards):
    chunks = [entry["chunk"] for entry in prediction_plan(wildcards)["chunks"]]
    return expand(rules.predict_chunk.output.chunk, name=wildcards.name, chunk=chunks)


def chunk_fingerprint(wildcards):
    for entry in prediction_plan(wildcards)["chunks"]:
        if entry["chunk"] == wildcards.chunk:
            return entry["fingerprint"]
    raise ValueError(f"predict.{wildcards.name} has no chunk {wildcards.chunk}")


def split_settings(wildcards):
    """The settings that decide the chunks (a change redoes the split, then every chunk)."""
    settings = prediction_settings(wildcards.name)
    return {**catalogue_columns(settings), "chunk_size": settings["chunk_size"]}


def result_settings(wildcards):
    """The settings that change predictions (a change redoes every chunk)."""
    settings = prediction_settings(wildcards.name)
    keys = ("tta", "max_upscale", "fits")
    return {key: settings[key] for key in keys}


def trained_history(wildcards):
    """history.csv of trained experiments; imported models come without one."""
    if wildcards.experiment in config["imports"]:
        return []
    return expand(rules.train.output.history, experiment=wildcards.experiment)[0]


# `snakemake --report` reports whatever has run (one target, part of the grid): the outputs of
# this config that exist, instead of failing on the first one that does not.
REPORTING = any(a == "--report" or a.startswith("--report=") for a in sys.argv)


def all_targets():
    """Everything `rule all` builds (called after every rule file is included); with --report,
    those that exist."""
    targets = [
        rules.aggregate.output.metrics,
        *expand(rules.figures.output.figures, experiment=EXPERIMENTS),
        *expand(rules.xai.output.xai, experiment=xai_experiments()),
        *([rules.xai_summary.output.csv] if xai_experiments() else []),
        *(
            [rules.selection_function.output.figure]
            if config["synthetic"]["enabled"]
            else []
        ),
        *expand(rules.predict_gather.output.predictions, name=config["predict"]),
        *prediction_tables(),
    ]
    if not REPORTING:
        return targets
    existing = [target for target in targets if os.path.exists(target)]
    if not existing:
        raise WorkflowError(
            f"--report: none of this config's results exist in {os.getcwd()}/{RESULTS} "
            f"(e.g. {targets[0]}). Run the workflow first, or give the --configfile of the "
            "run to report (e.g. --configfile config/demo.yaml)."
        )
    return existing
