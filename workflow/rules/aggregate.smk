rule aggregate:
    input:
        metrics=expand(rules.evaluate.output.metrics, experiment=EXPERIMENTS),
    output:
        metrics=report(
            f"{RESULTS}/summary/metrics.csv",
            caption="../report/summary.rst",
            category="Summary",
        ),
        tables=directory(f"{RESULTS}/summary/tables"),
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/aggregate.py"
