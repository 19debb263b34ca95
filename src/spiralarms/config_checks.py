"""Checks across config keys that the JSON schema cannot express; each message names the keys."""


class ConfigError(ValueError):
    """A configuration whose keys contradict each other."""


def check_subsets(config: dict) -> None:
    """Every subset in evaluate.subsets must be one the selection can produce."""
    subsets = config["evaluate"]["subsets"]
    selection = config["selection"]
    if "test" in subsets and not selection["test_fraction"]:
        raise ConfigError(
            "evaluate.subsets lists 'test' but selection.test_fraction is 0, so the selection "
            "makes no held-out test set: set selection.test_fraction (e.g. 0.15, see "
            "config/heldout.yaml) or remove 'test' from evaluate.subsets (the notebook reported "
            "validation, bug B3)")
    if "overflow" in subsets and selection["cap"] is None:
        raise ConfigError(
            "evaluate.subsets lists 'overflow' but selection.cap is null, so no galaxy overflows "
            "the cap: set selection.cap or remove 'overflow' from evaluate.subsets")


def check_comparisons(config: dict) -> None:
    """Every entry of `comparisons` names two different experiments of the grid, a subset that
    evaluate.subsets evaluates, and (with `classes`) original classes that both variants keep."""
    from spiralarms.data.variants import VARIANTS
    from spiralarms.training.experiment import Experiment, grid

    original_names = list(VARIANTS["6class"].class_names)
    experiments = grid(config["experiments"])
    subsets = config["evaluate"]["subsets"]
    for k, entry in enumerate(config.get("comparisons") or []):
        where = f"comparisons[{k}]"
        for key in ("a", "b"):
            if entry[key] not in experiments:
                raise ConfigError(
                    f"{where}.{key} names experiment {entry[key]!r}, which is not in the "
                    f"experiment grid (experiments.models x classes x modes x seeds plus "
                    f"experiments.extra: {experiments}); add it to experiments.extra or compare "
                    f"experiments of the grid")
        if entry["a"] == entry["b"]:
            raise ConfigError(f"{where}: a and b are both {entry['a']!r}; compare two "
                              f"different experiments")
        subset = entry.get("subset", "val")
        if subset not in subsets:
            raise ConfigError(
                f"{where}.subset is {subset!r} but evaluate.subsets is {subsets}, so no "
                f"predictions exist for it: add it to evaluate.subsets or compare another subset")
        for name in entry.get("classes") or []:
            for key in ("a", "b"):
                variant = Experiment.parse(entry[key]).variant
                if variant.class_map[original_names.index(name)] is None:
                    raise ConfigError(
                        f"{where}.classes lists {name!r} but {key} = {entry[key]!r} "
                        f"({variant.name}) drops that class, so it predicts none of its "
                        f"galaxies: remove {name!r} from {where}.classes")
