rule xai:
    input:
        model=rules.train.output.model,
        predictions=rules.evaluate.output.predictions,
        images=images_path(),
        # the renderer's arm and galaxy masks; none on real data (no attribution measure)
        masks=rules.synthesize.output.masks if config["synthetic"]["enabled"] else [],
    output:
        xai=report(
            directory(f"{EXPERIMENT_DIR}/xai"),
            patterns=["{name}.png"],
            caption="../report/xai.rst",
            category="XAI",
            subcategory="{experiment}",
        ),
    log:
        f"{RESULTS}/logs/xai/{{experiment}}.log",
    wildcard_constraints:
        experiment=XAI_NAME_REGEX,
    conda:
        "../../envs/spiralarms.yaml"
    threads: network_threads
    resources:
        gpu=1,
    params:
        settings=experiment_train_settings,
        xai=config["xai"],
    script:
        "../scripts/xai.py"


rule xai_summary:
    input:
        xai=expand(rules.xai.output.xai, experiment=xai_experiments()),
    output:
        csv=report(
            f"{RESULTS}/summary/attribution.csv",
            caption="../report/attribution.rst",
            category="XAI",
        ),
        markdown=f"{RESULTS}/summary/attribution.md",
    log:
        f"{RESULTS}/logs/xai_summary.log",
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/xai_summary.py"
