# Pretrained backbone weights (models.<m>.weights): downloaded on the submit host, converted once.


localrules:
    download_weights,


rule download_weights:
    output:
        weights=f"{WEIGHTS}/download/{{file}}",
    log:
        f"{RESULTS}/logs/download_weights/{{file}}.log",
    wildcard_constraints:
        file="|".join(map(re.escape, weight_downloads())) or "no-weights-download",
    # 0, not the profile's retries: download() itself retries what can succeed on a retry
    # (timeouts, cut connections, 429, 5xx); a rerun would only repeat a 404 or a checksum.
    retries: 0
    conda:
        "../../envs/spiralarms.yaml"
    params:
        source=lambda wildcards: weight_downloads()[wildcards.file],
        key=lambda wildcards: weight_download_key(wildcards.file),
    script:
        "../scripts/download_weights.py"


rule convert_weights:
    input:
        state_dict=lambda wildcards: weight_conversions()[wildcards.name].state_dict,
        config=lambda wildcards: weight_conversions()[wildcards.name].timm_config or [],
    output:
        weights=f"{WEIGHTS}/{{name}}.weights.h5",
        card=f"{WEIGHTS}/{{name}}.json",
    log:
        f"{RESULTS}/logs/convert_weights/{{name}}.log",
    wildcard_constraints:
        name="|".join(map(re.escape, weight_conversions())) or "no-weights-conversion",
    conda:
        "../../envs/spiralarms.yaml"
    params:
        channels=lambda wildcards: CHANNELS[weight_conversions()[wildcards.name].model],
    script:
        "../scripts/convert_weights.py"


rule extract_backbone:
    input:
        model=rules.train.output.model,
    output:
        backbone=f"{EXPERIMENT_DIR}/backbone.weights.h5",
    log:
        f"{RESULTS}/logs/extract_backbone/{{experiment}}.log",
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/extract_backbone.py"
