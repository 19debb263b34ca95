"""Quality gates that CI runs through `make test`: ruff, snakefmt --check, snakemake --lint."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command):
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)


def test_ruff_is_clean():
    result = _run("ruff", "check", "src", "tests", "bench", "workflow/scripts")
    assert result.returncode == 0, result.stdout


def test_snakefmt_would_change_nothing():
    result = _run("snakefmt", "--check", "Snakefile", "workflow/rules")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("config", ["config/config.yaml", "config/demo.yaml",
                                    ".test/config/tiny.yaml"])
def test_snakemake_lint_is_clean(config):
    result = _run("snakemake", "--lint", "--configfile", config)
    assert "Congratulations" in result.stdout + result.stderr, result.stdout + result.stderr


def test_split_seeds_give_each_split_its_own_labels_shards_and_experiments(tmp_path):
    extra = tmp_path / "splits.yaml"
    extra.write_text("selection:\n  split_seeds: [42, 7]\n")
    result = _run("snakemake", "-n", "--quiet", "rules", "--configfile", "config/demo.yaml",
                  str(extra), "--cores", "2")
    assert result.returncode == 0, result.stderr
    planned = _run("snakemake", "-n", "--configfile", "config/demo.yaml", str(extra),
                   "--cores", "2").stdout
    assert "results/splits/split7/shards" in planned
    assert "results/experiments/b0_merge45_standard_s42_split7/metrics.json" in planned
    # the head on split 7 uses the backbone trained on split 7, not the base split's
    assert "results/experiments/b0_6class_xai_s42_split7/backbone.weights.h5" in planned
    assert "split42" not in planned  # selection.seed's split keeps its plain names


NETWORK_RULES = ("train", "evaluate", "xai")


def planned_jobs(*configfiles, cores=4) -> list:
    """(rule, fields) of every job of a forced dry run of the demo with `configfiles` over it;
    fields as Snakemake prints them, `resources` as a dict."""
    planned = _run("snakemake", "-n", "--forceall", "--cores", str(cores), "--configfile",
                   "config/demo.yaml", *configfiles)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    jobs = []
    for block in planned.stdout.split("\nrule ")[1:]:
        rule, _, body = block.partition(":\n")
        fields = dict(line.strip().split(": ", 1) for line in body.splitlines()
                      if line.startswith("    ") and ": " in line)
        fields["resources"] = dict(item.split("=", 1) for item
                                   in fields.get("resources", "").split(", ") if "=" in item)
        jobs.append((rule, fields))
    return jobs


def test_network_jobs_declare_a_gpu_and_take_the_configured_threads(tmp_path):
    extra = tmp_path / "threads.yaml"
    extra.write_text("train:\n  threads: 3\n")
    jobs = planned_jobs(str(extra))
    network = [(rule, fields) for rule, fields in jobs if rule in NETWORK_RULES]
    assert {rule for rule, _ in network} == set(NETWORK_RULES)
    for rule, fields in network:
        assert fields["resources"].get("gpu") == "1", (rule, fields)
        assert fields.get("threads") == "3", (rule, fields)
    light = [rule for rule, fields in jobs if rule not in NETWORK_RULES
             and "gpu" in fields["resources"]]
    assert not light, f"jobs without a network hold a GPU: {light}"


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "xai.py", "predict_chunk.py"])
def test_network_scripts_hold_tensorflow_to_the_jobs_threads(script):
    """The script hands snakemake.threads to the package function it imports (followed through
    its import), and that function hands its `threads` to runtime.configure (or predict's
    configure_threads) -- read from the parsed code, not its text."""
    import ast

    tree = ast.parse((ROOT / "workflow" / "scripts" / script).read_text())
    imported = {alias.asname or alias.name: node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    handed = [call for call in ast.walk(tree) if isinstance(call, ast.Call)
              and isinstance(call.func, ast.Name) and call.func.id in imported
              and any(k.arg == "threads" and ast.unparse(k.value) == "snakemake.threads"
                      for k in call.keywords)]
    assert len(handed) == 1, f"{script} does not pass threads=snakemake.threads to one function"
    function, module = handed[0].func.id, imported[handed[0].func.id]
    path = ROOT / "src" / Path(*module.split(".")).with_suffix(".py")
    definition = next(node for node in ast.walk(ast.parse(path.read_text()))
                      if isinstance(node, ast.FunctionDef) and node.name == function)
    configures = [call for call in ast.walk(definition) if isinstance(call, ast.Call)
                  and ast.unparse(call.func).rsplit(".", 1)[-1] in ("configure",
                                                                    "configure_threads")
                  and call.args and ast.unparse(call.args[0]) == "threads"]
    assert configures, f"{module}.{function} does not configure TensorFlow with its threads"


def test_runtime_configure_limits_tensorflow_threads():
    for threads, expected in ((3, ["3", "2"]), (1, ["1", "2"])):  # one inter-op thread stalls
        code = ("from spiralarms import runtime; import tensorflow as tf; "
                f"runtime.configure({threads}); "
                "print(tf.config.threading.get_intra_op_parallelism_threads(), "
                "tf.config.threading.get_inter_op_parallelism_threads())")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=120, check=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert result.stdout.split() == expected, result.stderr


def test_jobs_import_the_package_of_the_checkout_they_run_in(tmp_path):
    """A `spiralarms` found first elsewhere (an editable install from another checkout in a
    shared environment, here a decoy on PYTHONPATH) must not be what a job imports."""
    import yaml
    from httpserver import FileServer

    decoy = tmp_path / "other_checkout" / "spiralarms"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy spiralarms was imported')\n")
    with FileServer({"catalogue.csv": b"a,b\n1,2\n"}) as server:
        config = tmp_path / "remote.yaml"
        config.write_text(yaml.safe_dump({"data": {"catalog": server.url("catalogue.csv")}}))
        env = {**os.environ, "PYTHONPATH": str(decoy.parent)}
        result = subprocess.run(
            [str(BIN / "snakemake"), "results/data/download/catalogue.csv", "-s",
             str(ROOT / "Snakefile"), "--cores", "1", "--configfile",
             str(ROOT / "config/config.yaml"), str(config)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "results/data/download/catalogue.csv").read_bytes() == b"a,b\n1,2\n"
    log = (tmp_path / "results/logs/download/catalogue.csv.log").read_text()
    assert "decoy" not in log


def _declared_outputs(rule, *args):
    """File names the dry run lists as outputs of the first job of `rule`."""
    planned = _run("snakemake", *args, "-n", "--forceall", "--configfile", "config/demo.yaml")
    block = next(b for b in planned.stdout.split("\nrule ") if b.startswith(f"{rule}:"))
    line = next(x for x in block.splitlines() if x.strip().startswith("output:"))
    return sorted(Path(p.strip()).name for p in line.split(":", 1)[1].split(","))


def test_aggregate_declares_every_file_it_writes(tmp_path):
    from report_support import (
        known_pair,
        subset_metrics,
        with_ordinal,
        write_nested,
        write_predictions,
    )

    from spiralarms.report.aggregate import aggregate

    experiments = ["b0_6class_standard_s1", "b0_6class_xai_s1"]
    paths = [write_nested(tmp_path / "experiments", e, with_ordinal(subset_metrics(.8, .7)))
             for e in experiments]
    dirs = {e: write_predictions(tmp_path / "preds", e, frame)
            for e, frame in zip(experiments, known_pair())}
    written = aggregate(paths, tmp_path / "summary", predictions_dirs=dirs, n_boot=10,
                        comparisons=[{"a": experiments[0], "b": experiments[1]}])
    assert sorted(p.name for p in written) == _declared_outputs("aggregate",
                                                                "results/summary/metrics.csv")


def _schema_defaults(node) -> dict:
    """{key: default} of an object in the config schema, nested objects as dicts of theirs."""
    return {key: _schema_defaults(spec) if "properties" in spec else spec.get("default")
            for key, spec in node["properties"].items()}


@pytest.mark.parametrize(("section", "code_defaults", "config_only", "code_only"), [
    # split_seeds repeats the whole selection per seed: the workflow's, not one selection's
    ("selection", "spiralarms.gz2.selection:DEFAULT_SETTINGS", {"split_seeds"}, set()),
    # threads belong to the job (Snakemake), monitor is fixed: the paper's val_accuracy
    ("train", "spiralarms.training.train:DEFAULTS", {"threads"}, {"monitor"}),
])
def test_schema_defaults_are_the_code_defaults(section, code_defaults, config_only, code_only):
    """The workflow fills the schema's defaults, a caller of the package gets the code's: one
    value for both (as predict's defaults, tests/test_predict.py)."""
    import importlib

    import yaml

    from spiralarms.config_reference import SCHEMA

    module, name = code_defaults.split(":")
    code = getattr(importlib.import_module(module), name)
    schema = _schema_defaults(yaml.safe_load(SCHEMA.read_text())["properties"][section])
    assert set(schema) - set(code) == config_only, "a config key the code does not default"
    assert set(code) - set(schema) == code_only, "a code default the config cannot set"
    shared = sorted(set(schema) & set(code))
    assert {k: schema[k] for k in shared} == {k: code[k] for k in shared}


def test_make_test_keeps_each_module_on_one_worker(tmp_path):
    # `make test`'s spread (tests/conftest.py): a module's fixture (a workflow run, a trained
    # model) must be built once, on one worker; the two SLURM modules share one.
    for module in ("test_alpha", "test_slurm", "test_predict_slurm"):
        (tmp_path / f"{module}.py").write_text(
            "import os\n\n\n" + "".join(
                f"def test_{i}():\n    with open('workers.txt', 'a') as f:\n"
                f"        f.write(__name__ + ' ' + os.environ['PYTEST_XDIST_WORKER'] + '\\n')"
                "\n\n\n" for i in range(4)))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q",
         "--rootdir", str(tmp_path), "-c", os.devnull, "--numprocesses", "2",
         "--dist", "loadgroup", "--no-loadscope-reorder", str(tmp_path)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT / "tests"),
                           "SPIRALARMS_TEST_CPU": ""},  # not counted as the suite's own tests
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    workers = {}
    for line in (tmp_path / "workers.txt").read_text().splitlines():
        module, worker = line.split()
        workers.setdefault(module, set()).add(worker)
    assert sum(map(len, workers.values())) and all(len(w) == 1 for w in workers.values()), workers
    assert workers["test_slurm"] == workers["test_predict_slurm"], workers


def test_cpu_per_test_counts_the_processes_a_test_waits_for(tmp_path):
    # SPIRALARMS_TEST_CPU (tests/conftest.py) and its reader bench/suite_cpu.py: where the CPU of
    # the CPU-bound suite goes, including Snakemake and its jobs, which the tests start.
    spin = "import time\\nend = time.process_time() + 1.0\\nwhile time.process_time() < end: pass"
    (tmp_path / "test_cpu.py").write_text(
        "import subprocess, sys\nimport pytest\n\n\n"
        "def test_child():\n"
        f"    subprocess.run([sys.executable, '-c', '{spin}'], check=True)\n\n\n"
        "@pytest.mark.parametrize('text', ['a:\\n  b: 1\\n'])\n"
        "def test_idle(text):\n    pass\n")
    record = tmp_path / "cpu.txt"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT / "tests"),
                           "SPIRALARMS_TEST_CPU": str(record)},
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import suite_cpu
    finally:
        sys.path.remove(str(ROOT / "bench"))
    lines = suite_cpu.read(record)
    rows = {node.split("::")[1]: cpu for cpu, _, _, _, node in lines}
    idle = "test_idle[a:\\n  b: 1\\n]"  # pytest escapes the newline: one line a test
    assert set(rows) == {"test_child", idle}, rows
    assert rows["test_child"] >= 1.0 > rows[idle], rows
    (busy, idle_at_end), = suite_cpu.per_worker(lines).values()  # without xdist: one "worker"
    assert busy >= 1.0 and idle_at_end == 0.0
