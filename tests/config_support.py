"""The shipped configs as the workflow reads them, for tests that check what they say."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def merged(*names):
    """Config files of config/ merged in order, as Snakemake merges --configfile over
    configfile:, with the schema's defaults filled in as the workflow fills them."""
    from snakemake.utils import update_config

    from spiralarms.config_checks import validate_config
    from spiralarms.config_reference import SCHEMA

    config = {}
    for name in names:
        update_config(config, yaml.safe_load((ROOT / "config" / name).read_text()))
    validate_config(config, SCHEMA)
    return config
