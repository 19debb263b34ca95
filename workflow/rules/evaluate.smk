rule evaluate:
    input:
        model=rules.train.output.model,
        shards=experiment_shards,
        labels=experiment_labels,
    output:
        metrics=f"{EXPERIMENT_DIR}/metrics.json",
        predictions=directory(f"{EXPERIMENT_DIR}/predictions"),
    log:
        f"{RESULTS}/logs/evaluate/{{experiment}}.log",
    conda:
        "../../envs/spiralarms.yaml"
    threads: network_threads
    resources:
        gpu=1,
    params:
        settings=experiment_train_settings,
        subsets=config["evaluate"]["subsets"],
        bootstrap=config["evaluate"]["bootstrap"],
    script:
        "../scripts/evaluate.py"


rule figures:
    input:
        metrics=rules.evaluate.output.metrics,
        predictions=rules.evaluate.output.predictions,
        history=trained_history,
        images=images_path(),
    output:
        figures=report(
            directory(f"{EXPERIMENT_DIR}/figures"),
            # top-level figures only: the per-cell misclassification sheets stay on disk
            patterns=["{name,[^/]+}.png"],
            caption="../report/figures.rst",
            category="Experiments",
            subcategory="{experiment}",
        ),
    log:
        f"{RESULTS}/logs/figures/{{experiment}}.log",
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/figures.py"
