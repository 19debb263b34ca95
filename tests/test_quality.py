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


def test_bad_config_value_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: many\n")
    result = _run("snakemake", "-n", "--configfile", str(bad))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "train.epochs: 'many' is not of type 'integer'" in output


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


def test_network_jobs_declare_a_gpu_and_keep_tensorflow_to_their_threads():
    planned = _run("snakemake", "-n", "--forceall", "--configfile", "config/demo.yaml").stdout
    blocks = planned.split("\nrule ")
    for rule in ("train", "evaluate", "xai"):
        block = next(b for b in blocks if b.startswith(f"{rule}:"))
        assert "gpu=1" in block.split("resources:")[1].splitlines()[0], block
    # Each script hands the job's threads to its rule's function, which configures TensorFlow.
    scripts = ROOT / "workflow" / "scripts"
    package = ROOT / "src" / "spiralarms"
    for script, module, function, call in (
        ("train.py", "training/train.py", "run_train", "runtime.configure(threads)"),
        ("evaluate.py", "evaluation/evaluate.py", "run_evaluate", "runtime.configure(threads)"),
        ("xai.py", "xai/stage.py", "run_xai", "runtime.configure(threads)"),
        ("predict_chunk.py", "predict/chunks.py", "run_predict_chunk",
         "configure_threads(threads)"),
    ):
        text = (scripts / script).read_text()
        assert f"{function}(" in text and "threads=snakemake.threads" in text, script
        assert call in _function_source(package / module, function), (module, function)


def _function_source(path, name):
    import ast

    source = path.read_text()
    node = next(n for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_source_segment(source, node)


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
    from test_comparisons import known_pair, write_predictions
    from test_summary import subset_metrics, with_ordinal, write_nested

    from spiralarms.report import summary

    experiments = ["b0_6class_standard_s1", "b0_6class_xai_s1"]
    paths = [write_nested(tmp_path / "experiments", e, with_ordinal(subset_metrics(.8, .7)))
             for e in experiments]
    dirs = {e: write_predictions(tmp_path / "preds", e, frame)
            for e, frame in zip(experiments, known_pair())}
    written = summary.aggregate(paths, tmp_path / "summary", predictions_dirs=dirs, n_boot=10,
                                comparisons=[{"a": experiments[0], "b": experiments[1]}])
    assert sorted(p.name for p in written) == _declared_outputs("aggregate",
                                                                "results/summary/metrics.csv")
