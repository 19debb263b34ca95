"""`experiment:<name>` weights: the backbone of another experiment's trained model (that
experiment trains from scratch first), e.g. heads for the merged variants on a 6-class backbone.

The other weight sources are `spiralarms.models.weights.plan`'s; this layer adds the one that
needs experiment names (`Experiment.parse`). Importing it stays cheap (no TensorFlow): Snakemake
calls it while building the DAG.
"""

from dataclasses import replace
from pathlib import PurePosixPath

from spiralarms.models import weights
from spiralarms.models.weights import EXPERIMENT, WeightsError, WeightsPlan
from spiralarms.training.experiment import Experiment


def plan(model: str, spec, sha256=None, weights_dir="results/weights",
         experiments_dir="results/experiments") -> WeightsPlan:
    """The files behind config `models.<model>.weights: spec` (sha256: `weights_sha256`), any
    source `spiralarms.models.weights.plan` takes or `experiment:<name>`."""
    if not (isinstance(spec, str) and spec.startswith(EXPERIMENT)):
        return weights.plan(model, spec, sha256, weights_dir)
    key = f"models.{model}.weights"
    name = spec.removeprefix(EXPERIMENT)
    try:
        source = Experiment.parse(name)
    except ValueError as error:
        raise WeightsError(f"{key}={spec!r}: {error}") from None
    if source.model != model:
        raise WeightsError(f"{key}={spec!r}: that experiment trains {source.model}, not "
                           f"{model}; a backbone only fits its own network")
    return WeightsPlan(model, spec, f"{experiments_dir}/{name}/backbone.weights.h5",
                       experiment=name)


def for_experiment(weights_plan: WeightsPlan, name: str) -> WeightsPlan:
    """The plan of experiment `name`: the source experiment of `experiment:` weights is the one
    that makes the backbone, so it trains from scratch. On another split the source is the same
    experiment on that split (a backbone trained on another split's train set has seen this
    split's validation and test galaxies). Other plans are the same for every experiment."""
    if weights_plan.experiment is None:
        return weights_plan
    split = Experiment.parse(name).split
    source = Experiment.parse(weights_plan.experiment).on_split(split).name
    if name == source:
        return WeightsPlan(weights_plan.model, None)
    file = str(PurePosixPath(weights_plan.file).parent.parent / source / "backbone.weights.h5")
    return replace(weights_plan, file=file, experiment=source)
