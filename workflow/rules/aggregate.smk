SUMMARY = f"{RESULTS}/summary"


rule aggregate:
    input:
        metrics=expand(rules.evaluate.output.metrics, experiment=EXPERIMENTS),
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
        comparison=report(
            f"{SUMMARY}/comparison.csv",
            caption="../report/comparison.rst",
            category="Summary",
        ),
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/aggregate.py"
