"""config/README.md from the schema: one table row per key, so the two never drift apart.

    python -m spiralarms.config_reference > config/README.md
"""

import sys
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
HEADER = """\
# Configuration keys

Every key of `config/config.yaml` (the real run), `config/heldout.yaml` (the real run with a
held-out test set) and `config/demo.yaml` (synthetic demo), with its default. Generated from
`workflow/schemas/config.schema.yaml` by `python -m spiralarms.config_reference`; Snakemake validates
the config against that schema before anything runs and names the offending key on error.
Pass your own file with `--configfile my.yaml`: it is merged over `config/config.yaml`.

| key | default | meaning |
|---|---|---|
"""
FOOTER = """
`models.b0.train` and `models.v2m.train` take any `train.*` key and override it for that model
only (the demo trains V2M for 2 epochs).
"""


def rows(node: dict, prefix: str = ""):
    """(key, default, description) for every property, depth first in schema order; entries of
    a free-named mapping (predict.<name>) are shown with a placeholder."""
    for name, spec in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        entries = spec.get("additionalProperties")
        yield key, "" if "properties" in spec else _default(spec), spec.get("description", "")
        yield from rows(spec, f"{key}.")
        if isinstance(entries, dict):
            yield from rows(entries, f"{key}.<name>.")


def _default(spec) -> str:
    text = yaml.safe_dump(spec.get("default"), default_flow_style=True).strip()
    return f"`{text.removesuffix('...').strip()}`"


def render(schema: dict) -> str:
    body = "".join(f"| `{key}` | {default} | {' '.join(text.split()).replace('|', '/')} |\n"
                   for key, default, text in rows(schema))
    return HEADER + body + FOOTER


def main() -> int:
    sys.stdout.write(render(yaml.safe_load(SCHEMA.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
