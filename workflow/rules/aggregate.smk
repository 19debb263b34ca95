SUMMARY = f"{RESULTS}/summary"


# A few tables and one figure from the experiments' metrics: not worth a cluster job.
localrules:
    aggregate,


# Experiments named in config `comparisons` (checked against the grid in common.smk), and the
# pairs that differ only by target (labels against votes: results/summary/targets.md).
COMPARED = list(
    dict.fromkeys(
        [c[k] for c in config["comparisons"] for k in ("a", "b")]
        + [name for pair in target_pairs(EXPERIMENTS) for name in pair]
    )
)


rule aggregate:
    input:
        metrics=expand(rules.evaluate.output.metrics, experiment=EXPERIMENTS),
        predictions=expand(rules.evaluate.output.predictions, experiment=COMPARED),
        # the renderer's truth: labels against votes judged on it too (synthetic data only)
        truth=(
            [rules.synthesize.output.truth] if config["synthetic"]["enabled"] else []
        ),
    output:
        metrics=report(
            f"{SUMMARY}/metrics.csv",
            caption="../report/summary.rst",
            category="Summary",
        ),
        markdown=f"{SUMMARY}/metrics.md",
        latex=f"{SUMMARY}/metrics.tex",
        seeds=report(
            f"{SUMMARY}/seeds.csv",
            caption="../report/seeds.rst",
            category="Summary",
        ),
        seeds_markdown=f"{SUMMARY}/seeds.md",
        seeds_latex=f"{SUMMARY}/seeds.tex",
        splits=report(
            f"{SUMMARY}/splits.csv",
            caption="../report/splits.rst",
            category="Summary",
        ),
        splits_markdown=f"{SUMMARY}/splits.md",
        splits_latex=f"{SUMMARY}/splits.tex",
        comparison=report(
            f"{SUMMARY}/comparison.csv",
            caption="../report/comparison.rst",
            category="Summary",
        ),
        comparison_markdown=f"{SUMMARY}/comparison.md",
        comparisons=report(
            f"{SUMMARY}/comparisons.csv",
            caption="../report/comparisons.rst",
            category="Summary",
        ),
        comparisons_markdown=f"{SUMMARY}/comparisons.md",
        targets=report(
            f"{SUMMARY}/targets.csv",
            caption="../report/targets.rst",
            category="Summary",
        ),
        targets_markdown=f"{SUMMARY}/targets.md",
        overview=report(
            f"{SUMMARY}/overview_f1.png",
            caption="../report/overview.rst",
            category="Summary",
        ),
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        "../../envs/spiralarms.yaml"
    params:
        comparisons=config["comparisons"],
        bootstrap=config["evaluate"]["bootstrap"],
        subsets=config["evaluate"]["subsets"],
    script:
        "../scripts/aggregate.py"


# Accuracy per physical quantity against the renderer's truth: synthetic data only (real
# galaxies have no truth.csv), so on real data the rule does not exist.
if config["synthetic"]["enabled"]:

    localrules:
        selection_function,

    rule selection_function:
        input:
            predictions=expand(
                rules.evaluate.output.predictions, experiment=EXPERIMENTS
            ),
            truth=rules.synthesize.output.truth,
        output:
            csv=f"{SUMMARY}/selection_function.csv",
            markdown=f"{SUMMARY}/selection_function.md",
            figure=report(
                f"{SUMMARY}/selection_function.png",
                caption="../report/selection_function.rst",
                category="Summary",
            ),
        log:
            f"{RESULTS}/logs/selection_function.log",
        conda:
            "../../envs/spiralarms.yaml"
        script:
            "../scripts/selection_function.py"
