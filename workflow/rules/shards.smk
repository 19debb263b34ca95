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
        votes=False,
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


# Votes experiments' shards: the same records plus each galaxy's t11 vote counts (`arm_votes`),
# in their own folder so the label shards stay byte-identical (issue 20).
use rule shards as vote_shards with:
    input:
        labels=rules.vote_labels.output.labels,
        images=images_path(),
    output:
        shards=directory(f"{RESULTS}/vote_shards"),
    log:
        f"{RESULTS}/logs/vote_shards.log",
    # one thread: it fits beside a training job, so a votes head is ready with the other heads
    # (with two it waited for both cores, the end of the demo's workflow)
    threads: 1
    params:
        size=config["shards"]["size"],
        check=config["shards"]["check"],
        votes=True,


use rule shards as split_vote_shards with:
    input:
        labels=rules.split_vote_labels.output.labels,
        images=images_path(),
    output:
        shards=directory(f"{SPLITS}/split{{split}}/vote_shards"),
    log:
        f"{RESULTS}/logs/vote_shards/split{{split}}.log",
    params:
        size=config["shards"]["size"],
        check=config["shards"]["check"],
        votes=True,
