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
