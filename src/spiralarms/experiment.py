"""Experiment names and settings: `{model}_{classes}_{mode}_s{seed}` <-> its parts and train settings."""

import itertools
import re
from dataclasses import dataclass

from .variants import VARIANTS, Variant

MODELS = ("b0", "v2m")
# Input channels: b0 takes greyscale (as Zoobot's B0 did), v2m RGB.
CHANNELS = {"b0": 1, "v2m": 3}
MODES = ("standard", "xai")
# Without named groups: Snakemake takes this as the {experiment} wildcard constraint.
NAME_REGEX = rf"(?:{'|'.join(MODELS)})_(?:{'|'.join(VARIANTS)})_(?:{'|'.join(MODES)})_s\d+"
PATTERN = re.compile(
    rf"^(?P<model>{'|'.join(MODELS)})_(?P<classes>{'|'.join(VARIANTS)})"
    rf"_(?P<mode>{'|'.join(MODES)})_s(?P<seed>\d+)$"
)


@dataclass(frozen=True)
class Experiment:
    model: str
    classes: str
    mode: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.model}_{self.classes}_{self.mode}_s{self.seed}"

    @property
    def variant(self) -> Variant:
        return VARIANTS[self.classes]

    @classmethod
    def parse(cls, name: str) -> "Experiment":
        match = PATTERN.match(name)
        if not match:
            raise ValueError(
                f"experiment {name!r} is not of the form {{model}}_{{classes}}_{{mode}}_s{{seed}} "
                f"with model in {MODELS}, classes in {tuple(VARIANTS)}, mode in {MODES}"
            )
        parts = match.groupdict()
        return cls(parts["model"], parts["classes"], parts["mode"], int(parts["seed"]))


def grid(experiments: dict) -> list:
    """Experiment names from config `experiments` (the product grid plus `extra`), in order."""
    names = [
        Experiment(*point).name
        for point in itertools.product(
            experiments["models"], experiments["classes"], experiments["modes"],
            experiments["seeds"],
        )
    ]
    names += [Experiment.parse(n).name for n in experiments.get("extra", [])]
    return list(dict.fromkeys(names))


def train_settings(config: dict, model: str, name: str | None = None) -> dict:
    """config train.*, then models.<model>.train, then experiments.per_experiment.<name>.train
    (each later one wins; augment merged key by key)."""
    layers = [config["train"], config.get("models", {}).get(model, {}).get("train", {})]
    if name is not None:
        per = config.get("experiments", {}).get("per_experiment", {}).get(name) or {}
        layers.append(per.get("train", {}))
    settings, augment = {}, {}
    for layer in layers:
        layer = dict(layer)
        augment.update(layer.pop("augment", {}) or {})
        settings.update(layer)
    return {**settings, "augment": augment}


def experiment_note(config: dict, name: str) -> str | None:
    """experiments.per_experiment.<name>.note: plain words shown with the results."""
    per = config.get("experiments", {}).get("per_experiment", {}).get(name) or {}
    return per.get("note")
