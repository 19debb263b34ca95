# Downloads run on the submit host (compute nodes often have no internet).
localrules:
    download,
    fetch_images,
    physical_table,


# Remote sources only: local paths in data.* are used as they are.


rule download:
    output:
        downloaded=f"{DOWNLOAD}/{{file}}",
    log:
        f"{RESULTS}/logs/download/{{file}}.log",
    wildcard_constraints:
        file="|".join(map(re.escape, remote_sources())) or "no-remote-source",
    # 0, not the profile's retries: download() itself retries what can succeed on a retry
    # (timeouts, cut connections, 429, 5xx); a rerun would only repeat a 404 or a checksum.
    retries: 0
    conda:
        "../../envs/spiralarms.yaml"
    params:
        source=lambda wildcards: remote_sources()[wildcards.file],
    script:
        "../scripts/download.py"


# data.images as kaggle:<owner>/<dataset> (the kaggle client) or the URL of a zip (Zenodo's
# images_gz2.zip, fetched by the download rule): unpacked into one folder of <asset_id>.jpg.
rule fetch_images:
    input:
        mapping=data_path("mapping"),
        archive=images_archive(),
    output:
        images=directory(f"{DOWNLOAD}/images"),
    log:
        f"{RESULTS}/logs/fetch_images.log",
    conda:
        "../../envs/spiralarms.yaml"
    params:
        dataset=config["data"]["images"].removeprefix("kaggle:"),
    script:
        "../scripts/fetch_images.py"


rule physical_table:
    input:
        archive=lambda wildcards: data_path("physical"),
    output:
        csv=PHYSICAL_CSV,
    log:
        f"{RESULTS}/logs/physical_table.log",
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/physical_table.py"
