"""The config a run uses, layer by layer, and where each value comes from (`spiralarms config`).

The rule (the Snakefile's `configfile:` handling; tests/test_config_layers.py dry-runs both):
with no `--configfile`, the real run, config/config.yaml, over the schema's defaults; with
`--configfile A [B ...]`, A then B over the schema's defaults only. A user's file never inherits
the real run's sources, downloads or comparisons; to change the real run, list it first:
`--configfile config/config.yaml mine.yaml`. TensorFlow-free.
"""

import copy
from pathlib import Path

import yaml

from spiralarms.config_checks import ConfigError, check_config, fill_defaults, load_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
REAL_RUN = ROOT / "config" / "config.yaml"
SCHEMA_DEFAULT = "schema default"


def base_configfiles(configfiles) -> list:
    """The files a run reads, in order: the `--configfile` files, or the real run without any."""
    return [Path(f) for f in configfiles] if configfiles else [REAL_RUN]


def read_config_file(path) -> dict:
    """One config file as a dict; a missing file, a YAML error or a non-mapping is a ConfigError
    naming the file (and the line and column of a YAML error)."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {path} {what} (working directory {Path.cwd()}); "
                          f"pass the path of a YAML file to --configfile")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"config file {where}: not valid YAML ({problem}); indent with "
                          f"spaces, not tabs, and quote values holding ': ' or '#'") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path} is not UTF-8 text ({error.reason}); save it "
                          f"as UTF-8") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"config file {path} holds a {type(content).__name__}, not a mapping of "
                          f"keys (config/README.md lists them)")
    return content


def merge(base: dict, update: dict) -> dict:
    """`update` over `base` as Snakemake merges config files: mappings key by key, anything else
    (lists included) replaced whole."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def leaves(config, prefix: str = ""):
    """(dotted key, value) of every leaf: a non-mapping value or an empty mapping."""
    if isinstance(config, dict) and config:
        for key, value in config.items():
            yield from leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif prefix:
        yield prefix, config


def layers(configfiles=()) -> list:
    """[(file name, its mapping)] of the files a run with these `--configfile`s reads, in order."""
    return [(str(f), read_config_file(f)) for f in base_configfiles(configfiles)]


def load(configfiles=()) -> dict:
    """The config a run with these `--configfile`s uses, checked and with the schema's defaults
    filled in as the workflow does; a ConfigError for what the workflow would refuse."""
    config = {}
    for _, layer in layers(configfiles):
        merge(config, layer)
    check_config(config, SCHEMA)
    return config


def effective(configfiles=()) -> list:
    """[(key, value, source)] of every key of `load(configfiles)`, in schema order; source is the
    last file that set the key, or 'schema default'."""
    set_by = {key: name for name, layer in layers(configfiles) for key, _ in leaves(layer)}
    in_schema_order = merge(schema_defaults(), load(configfiles))
    return [(key, value, set_by.get(key, SCHEMA_DEFAULT))
            for key, value in leaves(in_schema_order)]


def schema_defaults() -> dict:
    """The config an empty `--configfile` gives: every default of the schema."""
    config = {}
    fill_defaults(config, load_schema(SCHEMA))
    return config


def render(rows, relative_to=None) -> str:
    """Aligned `key  value  source` lines."""
    def show(value):
        return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip() \
            .removesuffix("...").strip()

    def where(source):
        if source == SCHEMA_DEFAULT or relative_to is None:
            return source
        try:
            return str(Path(source).resolve().relative_to(Path(relative_to).resolve()))
        except ValueError:
            return source

    table = [(key, show(value), where(source)) for key, value, source in rows]
    key_width = max(len(k) for k, _, _ in table)
    value_width = min(60, max(len(v) for _, v, _ in table))
    return "".join(f"{k:<{key_width}}  {v:<{value_width}}  {s}\n" for k, v, s in table)
