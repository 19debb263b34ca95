"""The config schema documents every key, and config/README.md is generated from it."""

from pathlib import Path

import jsonschema
import pytest
import yaml

from spiralarms.config_checks import ConfigError, check_subsets
from spiralarms.config_layers import load
from spiralarms.config_reference import SCHEMA, render

ROOT = Path(__file__).resolve().parents[1]
# JSON Schema keywords the schema uses; anything else is a stray key, e.g. the tail of a
# description cut at a comma inside a YAML flow mapping.
KEYWORDS = {
    "$schema", "type", "description", "default", "enum", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "items", "minItems", "maxItems", "properties",
    "additionalProperties", "pattern", "propertyNames", "required", "uniqueItems", "$ref",
}


def schema():
    return yaml.safe_load(SCHEMA.read_text())


def properties(node, path=""):
    for name, spec in node.get("properties", {}).items():
        yield f"{path}{name}", spec
        yield from properties(spec, f"{path}{name}.")
        if isinstance(spec.get("additionalProperties"), dict):
            yield from properties(spec["additionalProperties"], f"{path}{name}.<name>.")


def test_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("key, spec", list(properties(schema())))
def test_every_property_has_a_description_and_no_stray_keys(key, spec):
    assert isinstance(spec.get("description"), str) and spec["description"].strip(), key
    assert set(spec) <= KEYWORDS, f"{key}: stray keys {set(spec) - KEYWORDS}"


def test_config_readme_is_generated_from_the_schema():
    assert (ROOT / "config" / "README.md").read_text() == render(schema()), (
        "config/README.md is stale: python -m spiralarms.config_reference > config/README.md")


def merged(*names):
    """The config of `snakemake --configfile config/<name> ...`, checked and filled as the
    workflow does."""
    return load([ROOT / "config" / name for name in names])


@pytest.mark.parametrize("names", [["config.yaml"], ["config.yaml", "heldout.yaml"],
                                   ["demo.yaml"]])
def test_shipped_configs_validate_and_their_subsets_exist(names):
    check_subsets(merged(*names))


def test_heldout_config_evaluates_a_held_out_test_set():
    config = merged("config.yaml", "heldout.yaml")
    assert config["selection"]["test_fraction"] > 0 and "test" in config["evaluate"]["subsets"]


def base_config():
    return merged("config.yaml")


def test_test_subset_without_a_test_split_is_refused_naming_both_keys():
    config = base_config()
    config["evaluate"]["subsets"] = ["val", "test"]
    with pytest.raises(ConfigError, match="evaluate.subsets.*selection.test_fraction"):
        check_subsets(config)


def test_overflow_without_a_cap_is_refused_naming_both_keys():
    config = base_config()
    config["selection"]["cap"] = None
    with pytest.raises(ConfigError, match="evaluate.subsets.*selection.cap"):
        check_subsets(config)
