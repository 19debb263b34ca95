# A model per experiment: trained here, or imported (config `imports`) in place of its training.


rule train:
    input:
        shards=experiment_shards,
        weights=model_weights,
        vote_report=experiment_vote_report,
    output:
        model=f"{EXPERIMENT_DIR}/model.keras",
        history=f"{EXPERIMENT_DIR}/history.csv",
        card=f"{EXPERIMENT_DIR}/model.json",
    log:
        f"{RESULTS}/logs/train/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{experiment}}.tsv"
    conda:
        "../../envs/spiralarms.yaml"
    threads: network_threads
    resources:
        gpu=1,
        runtime=24 * 60,
        mem_mb=16000,
    params:
        settings=experiment_train_settings,
        weights_source=weights_source,
        synthetic=config["synthetic"]["enabled"],
        note=lambda wildcards: experiment_note(config, wildcards.experiment),
        # Checkpoints live outside the declared outputs: Snakemake deletes a failed job's
        # outputs, and a rerun resumes from here.
        work_dir=lambda wildcards: f"{RESULTS}/work/{wildcards.experiment}",
    script:
        "../scripts/train.py"


# imports.<experiment>: a model trained elsewhere takes the experiment's place (no history.csv).
# Local: a Drive file, a zip URL or a Hugging Face repository is downloaded, and compute nodes
# often have no internet.
localrules:
    import_model,


rule import_model:
    output:
        model=rules.train.output.model,
        card=rules.train.output.card,
        provenance=f"{EXPERIMENT_DIR}/imported.json",
    log:
        f"{RESULTS}/logs/import_model/{{experiment}}.log",
    wildcard_constraints:
        experiment="|".join(map(re.escape, config["imports"])) or "no-import",
    conda:
        "../../envs/spiralarms.yaml"
    params:
        source=lambda wildcards: config["imports"][wildcards.experiment],
    script:
        "../scripts/import_model.py"


ruleorder: import_model > train
