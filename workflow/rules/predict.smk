# Trained or imported models (train.smk) applied to new galaxies.
#
# predict.<name> runs as: predict_split (a checkpoint: the catalogue or folder -> the normalised
# catalogue and a plan of fixed-size chunks), one predict_chunk job per chunk (threads, gpu=1:
# `--resources gpu=N` locally and the SLURM profile schedule them), then predict_gather (the
# partitioned parquet dataset, the skipped list and the summary). A chunk is redone only when its
# rows (fingerprint), the results-changing settings, the model or the code change: the split's
# outputs are `ancient` inputs of the chunks, so a rewritten catalogue (rows appended at the end,
# a rerun after a crash) leaves finished chunks alone.


# Light steps (no TensorFlow) and the cut-out download (compute nodes have no internet): run
# where Snakemake runs, not as cluster jobs.
localrules:
    predict_cutouts,
    predict_split,
    predict_gather,
    predict_table,


# predict.<name>.positions: the cut-outs are fetched first (spiralarms.acquire.cutouts); the
# images and journal.jsonl stay in the folder, so a rerun (after a kill, or with more rows)
# fetches only what is missing. The manifest is the split's catalogue; skipped rows keep their
# reason through to <name>.skipped.csv.
rule predict_cutouts:
    input:
        positions=lambda wildcards: config["predict"][wildcards.name]["positions"],
    output:
        manifest=f"{PREDICTIONS}/{{name}}/cutouts/manifest.csv",
    log:
        f"{RESULTS}/logs/predict_cutouts/{{name}}.log",
    wildcard_constraints:
        name=PREDICTION_NAMES,
    conda:
        "../../envs/spiralarms.yaml"
    params:
        entry=cutout_entry,
    script:
        "../scripts/predict_cutouts.py"


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
        catalog=ancient(rules.predict_split.output.catalog),
        plan=ancient(rules.predict_split.output.plan),
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
        plan=rules.predict_split.output.plan,
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


# predict.<name>.tables: the gathered dataset also as a FITS binary table and/or a VOTable.
rule predict_table:
    input:
        predictions=rules.predict_gather.output.predictions,
        summary=rules.predict_gather.output.summary,
        source=prediction_source,
    output:
        table=f"{PREDICTIONS}/{{name}}.{{suffix}}",
    log:
        f"{RESULTS}/logs/predict_table/{{name}}.{{suffix}}.log",
    wildcard_constraints:
        name=PREDICTION_NAMES,
        suffix="fits|vot",
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/predict_table.py"
