# Trained (or imported) models applied to new galaxies, and models someone else trained.


rule import_model:
    output:
        model=f"{RESULTS}/experiments/{{experiment}}/model.keras",
        card=f"{RESULTS}/experiments/{{experiment}}/model.json",
        provenance=f"{RESULTS}/experiments/{{experiment}}/imported.json",
    log:
        f"{RESULTS}/logs/import_model/{{experiment}}.log",
    wildcard_constraints:
        experiment="|".join(map(re.escape, config["imports"])) or "no-import",
    conda:
        "../../envs/spiralarms.yaml"
    params:
        source=lambda wildcards: config["imports"][wildcards.experiment],
    script:
        "../scripts/import_model.py"


ruleorder: import_model > train


rule predict:
    input:
        model=lambda wildcards: prediction_model(wildcards.name),
        images=lambda wildcards: config["predict"][wildcards.name]["images"],
    output:
        predictions=f"{RESULTS}/predictions/{{name}}.parquet",
    log:
        f"{RESULTS}/logs/predict/{{name}}.log",
    conda:
        "../../envs/spiralarms.yaml"
    threads: 2
    script:
        "../scripts/predict.py"
