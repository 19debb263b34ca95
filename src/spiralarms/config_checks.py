"""The config checked against its JSON schema, and across keys where a schema cannot express the
rule; each message names the key."""

import copy
import difflib
from pathlib import Path

import yaml

MAX_ERRORS = 10


class ConfigError(ValueError):
    """A configuration with an unknown key, a wrong value or keys that contradict each other."""


def validate_config(config: dict, schema_path) -> None:
    """Check `config` against the schema, then fill in the defaults (in place).

    Unlike snakemake.utils.validate, a failure is a few lines naming each bad key, the allowed
    keys or values and the closest match, not the schema; and a `$ref` (models.<m>.train and
    experiments.per_experiment.<name>.train point at train) borrows train's checks but not its
    defaults, so unset override keys keep following train.*.
    """
    from jsonschema import Draft202012Validator

    check_checksums(config)
    schema = load_schema(schema_path)
    errors = sorted(Draft202012Validator(schema).iter_errors(config),
                    key=lambda e: [str(part) for part in e.absolute_path])
    if errors:
        lines = [describe(error) for error in errors[:MAX_ERRORS]]
        if len(errors) > MAX_ERRORS:
            lines.append(f"... and {len(errors) - MAX_ERRORS} more")
        raise ConfigError("invalid config (config/README.md lists every key):\n  "
                          + "\n  ".join(lines))
    fill_defaults(config, schema)


def check_config(config: dict, schema_path) -> None:
    """Every check the workflow runs on its config before anything runs (in place: the schema's
    defaults are filled in); `spiralarms config` runs the same."""
    validate_config(config, schema_path)
    check_subsets(config)
    check_comparisons(config)
    check_data(config)


def load_schema(schema_path) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 7x faster on every run
    return yaml.load(Path(schema_path).read_text(), Loader=loader)


def check_checksums(config, where: str = "") -> None:
    """Refuse a `*_sha256` that YAML read as a number: an all-digit checksum written unquoted
    loses its leading zeros (and `0123` reads as octal), so it cannot be recovered exactly."""
    if isinstance(config, list):
        for k, item in enumerate(config):
            check_checksums(item, f"{where}[{k}]")
    if not isinstance(config, dict):
        return
    for key, value in config.items():
        path = _join(where, key)
        if str(key).endswith("_sha256") and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            raise ConfigError(
                f"{path}: YAML read the checksum as the number {value!r}, which loses leading "
                f"zeros; quote it: {key}: \"<the 64 hex digits>\"")
        check_checksums(value, path)


def describe(error) -> str:
    """One line for a jsonschema ValidationError: the key path, what is wrong, what would do."""
    where = key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        return "; ".join(f"{_join(where, key)}: unknown key{_close(key, allowed)}; "
                         f"{where or 'the config'} takes {', '.join(allowed)}" for key in unknown)
    if "propertyNames" in error.absolute_schema_path:  # a free-named entry with a bad name
        names = error.schema.get("enum")
        hint = _close(error.instance, names) if names else ""
        return f"{where}: {error.instance!r} is not allowed as a name here{hint} ({error.message})"
    if error.validator == "required" and not where:  # a top-level section a run must name
        missing = [key for key in error.validator_value if key not in error.instance]
        return (f"{', '.join(missing)}: missing; a --configfile starts from the schema's "
                f"defaults, not from config/config.yaml, so it must name its own "
                f"{' and '.join(missing)} (or list config/config.yaml first: --configfile "
                f"config/config.yaml yours.yaml)")
    if error.validator == "enum":
        hint = _close(str(error.instance), [str(v) for v in error.validator_value])
        return f"{where}: {error.instance!r} is not one of {error.validator_value}{hint}"
    return f"{where or 'the config'}: {error.message}"


def key_path(parts) -> str:
    """('experiments', 'seeds', 0) -> 'experiments.seeds[0]'."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else str(key)


def _close(word, choices) -> str:
    found = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


def fill_defaults(instance, schema: dict) -> None:
    """Set every missing key that has a default, depth first, as the schema nests them.

    A node with `$ref` is not followed: overrides take train's checks, never its defaults.
    """
    if "$ref" in schema:
        return
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            fill_defaults(item, schema["items"])
    if not isinstance(instance, dict):
        return
    properties = schema.get("properties", {})
    for key, spec in properties.items():
        if key not in instance and "default" in spec:
            instance[key] = copy.deepcopy(spec["default"])
        if key in instance:
            fill_defaults(instance[key], spec)
    entries = schema.get("additionalProperties")
    if isinstance(entries, dict):
        for key, value in instance.items():
            if key not in properties:
                fill_defaults(value, entries)


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


def check_data(config: dict) -> None:
    """Local data paths that exist must be of the right kind: data.images a folder."""
    from spiralarms.acquire.sources import is_remote

    images = config["data"]["images"]
    if images and not is_remote(images) and Path(images).is_file():
        raise ConfigError(
            f"data.images is {images!r}, a file, not a folder: set data.images to the folder "
            f"holding the GZ2 images (<asset_id>.jpg), or to kaggle:<owner>/<dataset> to "
            f"download them")


def refuse_target(target: str):
    """Raise the error for a results/experiments/<name>/... target whose <name> does not parse:
    the naming scheme and the allowed parts (the one parser, Experiment.parse)."""
    from spiralarms.training.experiment import Experiment

    name = Path(target).parts[2]
    try:
        Experiment.parse(name)
    except ValueError as error:
        raise ConfigError(f"no rule makes {target}: {error}") from None
    raise ConfigError(f"no rule makes {target}")
