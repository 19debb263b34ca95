rule shards:
    input:
        labels=rules.labels.output.labels,
        images=images_path(),
    output:
        shards=directory(f"{RESULTS}/shards"),
    log:
        f"{RESULTS}/logs/shards.log",
    conda:
        "../../envs/spiralarms.yaml"
    threads: 2
    params:
        size=config["shards"]["size"],
        check=config["shards"]["check"],
    script:
        "../scripts/shards.py"


use rule shards as split_shards with:
    input:
        labels=rules.split_labels.output.labels,
        images=images_path(),
    output:
        shards=directory(f"{SPLITS}/split{{split}}/shards"),
    log:
        f"{RESULTS}/logs/shards/split{{split}}.log",
