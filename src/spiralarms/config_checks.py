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
