# Downloads run on the submit host (compute nodes often have no internet).
localrules:
    download,
    fetch_images,
    physical_table,


# Remote sources only: local paths in data.* are used as they are.


rule download:
    output:
        f"{DOWNLOAD}/{{file}}",
    log:
        f"{RESULTS}/logs/download/{{file}}.log",
    wildcard_constraints:
        file="|".join(map(re.escape, remote_sources())) or "no-remote-source",
    retries: 2
    conda:
        "../../envs/spiralarms.yaml"
    params:
        source=lambda wildcards: remote_sources()[wildcards.file],
    script:
        "../scripts/download.py"


rule fetch_images:
    input:
        mapping=data_path("mapping"),
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


# The original repository ships the stellar masses and SFRs as `stellar mass_SFR.7z`.
PHYSICAL_CSV = f"{DOWNLOAD}/extracted/stellar_mass_SFR.csv"
ARCHIVE_SUFFIXES = (".7z", ".zip", ".tar", ".tar.gz", ".tgz")


def physical_input():
    """The labels rule's physical table: none, the CSV as given, or the CSV from an archive."""
    if not config["data"]["physical"]:
        return []
    if data_path("physical").lower().endswith(ARCHIVE_SUFFIXES):
        return [PHYSICAL_CSV]
    return [data_path("physical")]


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
