# Trained (or imported) models applied to new galaxies, and models someone else trained.
#
# predict.<name> runs as: predict_split (a checkpoint: the catalogue or folder -> the normalised
# catalogue and a plan of fixed-size chunks), one predict_chunk job per chunk (threads, gpu=1:
# `--resources gpu=N` locally and the SLURM profile schedule them), then predict_gather (the
# partitioned parquet dataset, the skipped list and the summary). A chunk is redone only when its
# rows (fingerprint), the results-changing settings, the model or the code change: the split's
# outputs are `ancient` inputs of the chunks, so a rewritten catalogue (rows appended at the end,
# a rerun after a crash) leaves finished chunks alone.


rule import_model:
    output:
        model=f"{RESULTS}/experiments/{{experiment}}/model.keras",
        card=f"{RESULTS}/experiments/{{experiment}}/model.json",
        provenance=f"{RESULTS}/experiments/{{experiment}}/imported.json",
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


# Light steps (no TensorFlow): run where Snakemake runs, not as cluster jobs.
localrules:
    predict_split,
    predict_gather,


checkpoint predict_split:
    input:
        source=prediction_source,
    output:
        catalog=f"{PREDICTIONS}/{{name}}/catalog.parquet",
        plan=f"{PREDICTIONS}/{{name}}/chunks.json",
    log:
        f"{RESULTS}/logs/predict_split/{{name}}.log",
    wildcard_constraints:
        name=PREDICTION_NAMES,
    conda:
        "../../envs/spiralarms.yaml"
    params:
        settings=split_settings,
    script:
        "../scripts/predict_split.py"


rule predict_chunk:
    input:
        model=lambda wildcards: prediction_model(wildcards.name),
        catalog=ancient(f"{PREDICTIONS}/{{name}}/catalog.parquet"),
        plan=ancient(f"{PREDICTIONS}/{{name}}/chunks.json"),
    output:
        chunk=f"{PREDICTIONS}/{{name}}/chunks/{{chunk}}.parquet",
    log:
        f"{RESULTS}/logs/predict_chunk/{{name}}/{{chunk}}.log",
    wildcard_constraints:
        name=PREDICTION_NAMES,
        chunk="[0-9]+",
    conda:
        "../../envs/spiralarms.yaml"
    threads: lambda wildcards: prediction_settings(wildcards.name)["threads"]
    resources:
        gpu=1,
        runtime=120,
        mem_mb=4000,
    params:
        fingerprint=chunk_fingerprint,
        settings=result_settings,
    script:
        "../scripts/predict_chunk.py"


rule predict_gather:
    input:
        chunks=prediction_chunks,
        plan=f"{PREDICTIONS}/{{name}}/chunks.json",
    output:
        predictions=directory(f"{PREDICTIONS}/{{name}}.parquet"),
        skipped=f"{PREDICTIONS}/{{name}}.skipped.csv",
        summary=f"{PREDICTIONS}/{{name}}.summary.json",
        table=f"{PREDICTIONS}/{{name}}.summary.md",
        figure=f"{PREDICTIONS}/{{name}}.confidence.png",
    log:
        f"{RESULTS}/logs/predict_gather/{{name}}.log",
    wildcard_constraints:
        name=PREDICTION_NAMES,
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/predict_gather.py"
