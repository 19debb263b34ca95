import os
import re
import sys
from pathlib import Path

from snakemake.utils import validate

# The package lives in src/ (installed by `make`; found here without an install too). Jobs
# import it through workflow/scripts/spiralarms, a link to src/spiralarms: Snakemake puts a
# script's own folder on its sys.path, also under --sdm conda and on SLURM nodes.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from spiralarms.experiment import NAME_REGEX, Experiment, grid, train_settings

validate(config, schema="../schemas/config.schema.yaml")

RESULTS = "results"
SYNTHETIC = f"{RESULTS}/data/synthetic"
DOWNLOAD = config["data"]["download_dir"]
EXPERIMENTS = grid(config["experiments"])


wildcard_constraints:
    experiment=NAME_REGEX,


def is_remote(source):
    return source.startswith(("http://", "https://"))


def data_path(key):
    """Local path of data.<key>: downloaded sources land in data.download_dir."""
    source = config["data"][key]
    if is_remote(source):
        return f"{DOWNLOAD}/{os.path.basename(source.split('?')[0])}"
    return source


def images_path():
    source = config["data"]["images"]
    return f"{DOWNLOAD}/images" if source.startswith("kaggle:") else source


def remote_sources():
    """Downloaded file name -> (url, expected sha256 or None)."""
    return {
        os.path.basename(data_path(key)): (
            config["data"][key],
            config["data"][f"{key}_sha256"],
        )
        for key in ("catalog", "mapping")
        if is_remote(config["data"][key])
    }


def experiment(wildcards):
    return Experiment.parse(wildcards.experiment)


def model_weights(wildcards):
    return config["models"][experiment(wildcards).model]["weights"]


def experiment_train_settings(wildcards):
    return train_settings(config, experiment(wildcards).model)


def xai_experiments():
    return [e for e in EXPERIMENTS if Experiment.parse(e).mode == "xai"]


def prediction_model(name):
    """config predict.<name>.model: an experiment name (trained here) or a .keras path."""
    model = config["predict"][name]["model"]
    if re.fullmatch(NAME_REGEX, model):
        return f"{RESULTS}/experiments/{model}/model.keras"
    return model


def trained_history(wildcards):
    """history.csv of trained experiments; imported models come without one."""
    if wildcards.experiment in config["imports"]:
        return []
    return f"{RESULTS}/experiments/{wildcards.experiment}/history.csv"


def all_targets():
    return [
        f"{RESULTS}/summary/metrics.csv",
        *expand(f"{RESULTS}/experiments/{{e}}/figures", e=EXPERIMENTS),
        *expand(f"{RESULTS}/experiments/{{e}}/xai", e=xai_experiments()),
        *expand(f"{RESULTS}/predictions/{{name}}.parquet", name=config["predict"]),
    ]


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
