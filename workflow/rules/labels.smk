# Selections: tables in, tables out, in seconds; on SLURM a job of their own would wait in the
# queue longer than it runs, so they run where Snakemake runs (the downloads before them too).
localrules:
    labels,
    split_labels,
    vote_labels,
    split_vote_labels,


rule labels:
    input:
        catalog=data_path("catalog"),
        mapping=data_path("mapping"),
        images=images_path(),
        physical=physical_input(),
    output:
        labels=f"{RESULTS}/labels/labels.parquet",
        report=f"{RESULTS}/labels/selection_report.json",
    log:
        f"{RESULTS}/logs/labels.log",
    conda:
        "../../envs/spiralarms.yaml"
    params:
        settings=selection_settings(),
    script:
        "../scripts/labels.py"


# The same selection on another split seed (selection.split_seeds): results/splits/split<k>/.
use rule labels as split_labels with:
    output:
        labels=f"{SPLITS}/split{{split}}/labels/labels.parquet",
        report=f"{SPLITS}/split{{split}}/labels/selection_report.json",
    log:
        f"{RESULTS}/logs/labels/split{{split}}.log",
    params:
        settings=lambda wildcards: selection_settings(int(wildcards.split)),


# The labels with the volunteers' six t11 vote counts, and (votes.unflagged) the galaxies the paper
# drops only for their arm flag as extra training rows: what votes experiments train on, and what
# every evaluation measures vote-fraction errors against (issue 20).
rule vote_labels:
    input:
        catalog=data_path("catalog"),
        mapping=data_path("mapping"),
        images=images_path(),
        labels=rules.labels.output.labels,
    output:
        labels=f"{RESULTS}/labels/vote_labels.parquet",
        report=f"{RESULTS}/labels/vote_labels.json",
    log:
        f"{RESULTS}/logs/vote_labels.log",
    conda:
        "../../envs/spiralarms.yaml"
    params:
        settings=selection_settings(),
        votes=config["votes"],
    script:
        "../scripts/vote_labels.py"


use rule vote_labels as split_vote_labels with:
    input:
        catalog=data_path("catalog"),
        mapping=data_path("mapping"),
        images=images_path(),
        labels=rules.split_labels.output.labels,
    output:
        labels=f"{SPLITS}/split{{split}}/labels/vote_labels.parquet",
        report=f"{SPLITS}/split{{split}}/labels/vote_labels.json",
    log:
        f"{RESULTS}/logs/vote_labels/split{{split}}.log",
    params:
        settings=lambda wildcards: selection_settings(int(wildcards.split)),
        votes=config["votes"],
