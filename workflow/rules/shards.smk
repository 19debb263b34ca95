rule shards:
    input:
        labels=rules.labels.output.labels,
        images=images_path(),
    output:
        shards=directory(f"{RESULTS}/shards"),
    params:
        size=config["shards"]["size"],
    log:
        f"{RESULTS}/logs/shards.log",
    threads: 2
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/shards.py"
