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
        settings=config["selection"],
    script:
        "../scripts/labels.py"
