rule xai:
    input:
        model=rules.train.output.model,
        predictions=rules.evaluate.output.predictions,
        images=images_path(),
    output:
        xai=report(
            directory(f"{RESULTS}/experiments/{{experiment}}/xai"),
            patterns=["{name}.png"],
            caption="../report/xai.rst",
            category="XAI",
            subcategory="{experiment}",
        ),
    log:
        f"{RESULTS}/logs/xai/{{experiment}}.log",
    conda:
        "../../envs/spiralarms.yaml"
    threads: 2
    params:
        settings=experiment_train_settings,
        xai=config["xai"],
    script:
        "../scripts/xai.py"
