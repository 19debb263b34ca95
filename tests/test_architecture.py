"""The package mirrors the DAG: imports point down the stages, and the docs name every part."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "spiralarms"

# Stage order (docs/architecture.md); a module may import its own layer and the ones below.
LAYERS = {
    "logs": 0, "runtime": 0, "plotting": 0, "atomic": 0,
    "gz2": 1, "acquire": 1,
    "synthetic": 2,  # writes the formats gz2 reads
    "data": 3, "models": 4, "training": 5, "evaluation": 6, "xai": 6, "report": 7, "predict": 8,
    "config_checks": 9, "config_reference": 9, "config_layers": 9, "cli": 10,
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


# --- no import cycles between modules -----------------------------------------------------------

def module_name(path) -> str:
    """spiralarms.report.summary for src/spiralarms/report/summary.py (a package: its folder)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict:
    """{module: {imported spiralarms module: first line}} over every module of the package,
    module-level and function-level imports alike (`from a import b` counts as a.b when b is a
    module, else as a)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package upwards
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            else:
                continue
            for target in targets:
                if target in modules and target != name:
                    edges.setdefault(target, node.lineno)
    return graph


def import_cycles(graph) -> list:
    """The groups of modules that import one another, directly or through others (strongly
    connected components of more than one module), each sorted."""
    reach = {}
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo += graph.get(module, ())
        reach[start] = seen
    groups = {tuple(sorted({m for m in reach[start] if start in reach[m]} | {start}))
              for start in graph if start in reach[start]}
    return sorted(groups)


def test_no_import_cycles_between_modules():
    graph = import_graph()
    cycles = import_cycles(graph)
    lines = [" <-> ".join(group) + ": " + "; ".join(
        f"{a} imports {b} (line {line})" for a in group for b, line in graph[a].items()
        if b in group) for group in cycles]
    assert not cycles, ("modules that import one another (move what both need into a module "
                        "below them):\n" + "\n".join(lines))


def test_the_cycle_check_sees_function_level_and_indirect_cycles():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}, "e": {"e": 5}}
    assert import_cycles(graph) == [("a", "b", "c"), ("e",)]
    modules = import_graph()
    # a function-level import is an edge: report.summary imports evaluation.metrics inside
    # notebook_with_ordinal
    assert "spiralarms.evaluation.metrics" in modules["spiralarms.report.summary"]
    assert "spiralarms.report.tables" in modules["spiralarms.report.summary"]
