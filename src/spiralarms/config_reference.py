"""config/README.md from the schema: one table row per key, so the two never drift apart.

    python -m spiralarms.config_reference > config/README.md
"""

import sys

import yaml

from spiralarms.config_layers import REAL_RUN, SCHEMA

HEADER = """\
# Configuration keys

Every key, generated from `workflow/schemas/config.schema.yaml` by
`python -m spiralarms.config_reference`; Snakemake validates the config against that schema before
anything runs and names the offending key on error.

Which values a run uses:

- `snakemake` with no `--configfile` is the real run: `config/config.yaml` over the schema's
  defaults (column "real run": its values where they differ from the default).
- `snakemake --configfile my.yaml [more.yaml ...]` starts from the **schema's defaults** (column
  "default"), not from the real run: the files, in order, over them, each file's keys over the
  previous ones (mappings key by key, lists whole). To change the real run, list it first:
  `--configfile config/config.yaml my.yaml` (`config/heldout.yaml` is used that way).
- `spiralarms config [--configfile FILE ...]` prints every key with the value the run would use
  and where it came from (schema default or the file that set it), checked as the workflow checks
  it.

| key | default (schema: what a `--configfile` starts from) | real run (`config/config.yaml`) | meaning |
|---|---|---|---|
"""
FOOTER = """
`models.<m>.train` and `experiments.per_experiment.<name>.train` take any `train.*` key and
override it for that model or experiment only; keys they leave unset follow `train.*` (the demo
trains its V2M smoke run for 1 epoch at 32 px this way).
"""


def rows(node: dict, prefix: str = ""):
    """(key, default, description) for every property, depth first in schema order; entries of
    a free-named mapping (predict.<name>) are shown with a placeholder."""
    for name, spec in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        entries = spec.get("additionalProperties")
        yield key, "" if "properties" in spec else _show(spec.get("default")), \
            spec.get("description", "")
        yield from rows(spec, f"{key}.")
        if isinstance(entries, dict):
            yield from rows(entries, f"{key}.<name>.")


def _show(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return f"`{text.removesuffix('...').strip()}`"


def _set_in(config: dict, key: str):
    """The value `key` (dotted) has in `config`, or None where the file does not set it."""
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return (node,)


def real_run_value(config: dict, key: str) -> str:
    """The real run's value of `key` where config/config.yaml sets it (a list of mappings, such
    as comparisons, is counted; the file shows it)."""
    found = _set_in(config, key)
    if found is None or isinstance(found[0], dict):
        return ""
    value = found[0]
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        return f"{len(value)} entries (see the file)"
    return _show(value)


def render(schema: dict, real_run: dict | None = None) -> str:
    real_run = yaml.safe_load(REAL_RUN.read_text()) if real_run is None else real_run
    lines = []
    for key, default, text in rows(schema):
        real = real_run_value(real_run, key)
        lines.append(f"| `{key}` | {default} | {'' if real == default else real} | "
                     f"{' '.join(text.split()).replace('|', '/')} |\n")
    return HEADER + "".join(lines) + FOOTER


def main() -> int:
    sys.stdout.write(render(yaml.safe_load(SCHEMA.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
