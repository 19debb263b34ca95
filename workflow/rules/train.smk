rule train:
    input:
        shards=experiment_shards,
        weights=model_weights,
    output:
        model=f"{RESULTS}/experiments/{{experiment}}/model.keras",
        history=f"{RESULTS}/experiments/{{experiment}}/history.csv",
        card=f"{RESULTS}/experiments/{{experiment}}/model.json",
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
