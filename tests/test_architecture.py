"""The package mirrors the DAG: imports point down the stages, and the docs name every part."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "spiralarms"

# Stage order (docs/architecture.md); a module may import its own layer and the ones below.
LAYERS = {
    "logs": 0, "runtime": 0, "plotting": 0,
    "gz2": 1, "acquire": 1,
    "synthetic": 2,  # writes the formats gz2 reads
    "data": 3, "models": 4, "training": 5, "evaluation": 6, "xai": 6, "report": 7, "predict": 8,
    "config_checks": 9, "config_reference": 9, "cli": 10,
}
SUBPACKAGES = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())


def imported_parts(path):
    """(line, top-level spiralarms part) of every spiralarms import, also inside functions."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spiralarms"):
            parts = node.module.split(".")
            names = parts[1:2] or [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("spiralarms.")]
        else:
            continue
        for name in names:
            yield node.lineno, name


def test_every_part_of_the_package_has_a_layer():
    parts = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"} | set(SUBPACKAGES)
    assert parts == set(LAYERS), "give new modules a layer here and in docs/architecture.md"


def test_imports_point_down_the_dag():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0].removesuffix(".py")
        if own == "__init__.py":
            continue
        for line, target in imported_parts(path):
            if LAYERS[target] > LAYERS[own]:
                upward.append(f"{rel}:{line} imports {target}")
    assert not upward, "imports against the stage order:\n" + "\n".join(upward)


def test_readme_layout_and_architecture_name_every_subpackage():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("## The real data run")]
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    for name in SUBPACKAGES:
        assert f"  {name}/" in layout, f"README layout misses {name}/"
        assert f"{name}/" in architecture, f"docs/architecture.md misses {name}/"


def test_modules_named_in_architecture_exist():
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`([a-z0-9_]+/[a-z0-9_]+)\.py`", architecture))
    assert named, "the concept table names modules as `package/module.py`"
    missing = [n for n in sorted(named) if not (PACKAGE / f"{n}.py").exists()]
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
    scripts = set(re.findall(r"`workflow/scripts/([a-z_]+\.py)`", architecture))
    on_disk = {p.name for p in (ROOT / "workflow" / "scripts").glob("*.py")}
    assert scripts == on_disk, f"rule table vs scripts: {sorted(scripts ^ on_disk)}"
