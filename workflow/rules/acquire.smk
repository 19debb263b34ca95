# Remote sources only: local paths in data.* are used as they are.


rule download:
    output:
        f"{DOWNLOAD}/{{file}}",
    params:
        source=lambda wildcards: remote_sources()[wildcards.file],
    wildcard_constraints:
        file="|".join(map(re.escape, remote_sources())) or "no-remote-source",
    log:
        f"{RESULTS}/logs/download/{{file}}.log",
    retries: 2
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/download.py"


rule fetch_images:
    output:
        images=directory(f"{DOWNLOAD}/images"),
    params:
        dataset=config["data"]["images"].removeprefix("kaggle:"),
    log:
        f"{RESULTS}/logs/fetch_images.log",
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/fetch_images.py"
