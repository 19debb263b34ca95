"""Experiment names and settings: `{model}_{classes}_{mode}[_votes]_s{seed}[_split{k}]` <-> its
parts and train settings. Without a suffix an experiment uses the split of `selection.seed`;
`_split{k}` names the same experiment on the split drawn with seed k (config
`selection.split_seeds`). The target axis (issue 20): no token is the paper's hard labels, so every
existing name keeps its meaning; `_votes` trains on the volunteers' t11 vote counts."""

import itertools
import re
from dataclasses import dataclass

from spiralarms.data.channels import CHANNELS
from spiralarms.data.variants import VARIANTS, Variant
from spiralarms.models import MODES  # the networks' modes: standard, xai

MODELS = tuple(CHANNELS)  # the networks: b0, v2m
# What an experiment learns from: the paper's labels (no name token) or the vote counts (`_votes`).
TARGETS = ("labels", "votes")


def name_regex(modes=MODES) -> str:
    """Without named groups: Snakemake takes it as the {experiment} wildcard constraint."""
    return (rf"(?:{'|'.join(MODELS)})_(?:{'|'.join(VARIANTS)})_(?:{'|'.join(modes)})"
            r"(?:_votes)?_s\d+(?:_split\d+)?")


NAME_REGEX = name_regex()
XAI_NAME_REGEX = name_regex(("xai",))  # only xai-mode networks have the flat graph XAI needs
PATTERN = re.compile(
    rf"^(?P<model>{'|'.join(MODELS)})_(?P<classes>{'|'.join(VARIANTS)})"
    rf"_(?P<mode>{'|'.join(MODES)})(?P<votes>_votes)?_s(?P<seed>\d+)(?:_split(?P<split>\d+))?$"
)


@dataclass(frozen=True)
class Experiment:
    model: str
    classes: str
    mode: str
    seed: int
    split: int | None = None  # None: the split of selection.seed
    target: str = "labels"  # TARGETS: the paper's hard labels, or the t11 vote counts

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose one of {TARGETS}")

    @property
    def name(self) -> str:
        suffix = "" if self.split is None else f"_split{self.split}"
        token = "" if self.target == "labels" else f"_{self.target}"
        return f"{self.model}_{self.classes}_{self.mode}{token}_s{self.seed}{suffix}"

    def on_split(self, split: int | None) -> "Experiment":
        return Experiment(self.model, self.classes, self.mode, self.seed, split, self.target)

    def with_target(self, target: str) -> "Experiment":
        """The same experiment learning from `target` (its counterpart in a target comparison)."""
        return Experiment(self.model, self.classes, self.mode, self.seed, self.split, target)

    @property
    def variant(self) -> Variant:
        return VARIANTS[self.classes]

    @classmethod
    def parse(cls, name: str) -> "Experiment":
        match = PATTERN.fullmatch(name)  # `$` alone would accept a trailing newline
        if not match:
            raise ValueError(
                f"experiment {name!r} is not of the form {{model}}_{{classes}}_{{mode}}_s{{seed}} "
                f"(optionally _votes before _s{{seed}}, _split{{k}} after it){_wrong_part(name)}: "
                f"model is one of "
                f"{', '.join(MODELS)}; classes one of {', '.join(VARIANTS)}; mode one of "
                f"{', '.join(MODES)}; seed and k whole numbers, e.g. {MODELS[0]}_"
                f"{next(iter(VARIANTS))}_{MODES[0]}_s42"
            )
        parts = match.groupdict()
        split = None if parts["split"] is None else int(parts["split"])
        target = "votes" if parts["votes"] else "labels"
        return cls(parts["model"], parts["classes"], parts["mode"], int(parts["seed"]), split,
                   target)


def _wrong_part(name: str) -> str:
    """', where classes '7class' is wrong' for a name with the right number of parts."""
    parts = [p for p in name.split("_") if p != "votes"]
    if len(parts) not in (4, 5):
        return ""
    checks = [("model", parts[0], parts[0] in MODELS),
              ("classes", parts[1], parts[1] in VARIANTS),
              ("mode", parts[2], parts[2] in MODES),
              ("seed", parts[3], re.fullmatch(r"s\d+", parts[3]) is not None)]
    if len(parts) == 5:
        checks.append(("split", parts[4], re.fullmatch(r"split\d+", parts[4]) is not None))
    wrong = [f"{what} {part!r}" for what, part, ok in checks if not ok]
    return f", where {' and '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} wrong" if wrong else ""


def grid(experiments: dict, splits=()) -> list:
    """Experiment names from config `experiments` (the product grid over models, classes, modes,
    seeds and targets (default labels only), plus `extra`), in order, then the same grid on each
    extra split in `splits` (config selection.split_seeds)."""
    names = [
        Experiment(model, classes, mode, seed, None, target).name
        for model, classes, mode, seed, target in itertools.product(
            experiments["models"], experiments["classes"], experiments["modes"],
            experiments["seeds"], experiments.get("targets") or ["labels"],
        )
    ]
    names += [Experiment.parse(n).name for n in experiments.get("extra", [])]
    base = list(dict.fromkeys(names))
    for split in splits:
        base += [Experiment.parse(n).on_split(split).name for n in base
                 if Experiment.parse(n).split is None]
    return list(dict.fromkeys(base))


def extra_splits(selection: dict) -> list:
    """selection.split_seeds other than selection.seed (whose split has no name suffix)."""
    seeds = selection.get("split_seeds") or []
    return [int(s) for s in dict.fromkeys(seeds) if int(s) != int(selection["seed"])]


def train_settings(config: dict, model: str, name: str | None = None) -> dict:
    """config train.*, then models.<model>.train, then experiments.per_experiment.<name>.train
    (each later one wins; augment merged key by key)."""
    layers = [config["train"], config.get("models", {}).get(model, {}).get("train", {})]
    if name is not None:
        layers.append(_per_experiment(config, name).get("train", {}))
    settings, augment = {}, {}
    for layer in layers:
        layer = dict(layer)
        augment.update(layer.pop("augment", {}) or {})
        settings.update(layer)
    return {**settings, "augment": augment}


def experiment_note(config: dict, name: str) -> str | None:
    """experiments.per_experiment.<name>.note: plain words shown with the results."""
    return _per_experiment(config, name).get("note")


def _per_experiment(config: dict, name: str) -> dict:
    """experiments.per_experiment of `name`, or of its base name on another split."""
    per = config.get("experiments", {}).get("per_experiment", {})
    return per.get(name) or per.get(Experiment.parse(name).on_split(None).name) or {}


def target_pairs(names) -> list:
    """(labels, votes) name pairs among `names` that differ only by target, in `names`' order."""
    present = set(names)
    pairs = []
    for name in names:
        experiment = Experiment.parse(name)
        if experiment.target == "labels":
            counterpart = experiment.with_target("votes").name
            if counterpart in present:
                pairs.append((name, counterpart))
    return pairs
