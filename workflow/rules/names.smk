from spiralarms.config_checks import refuse_target


# A target under results/experiments/ whose folder is no experiment name (the wildcard constraint
# keeps every other rule off it): refused with the naming scheme and the allowed parts, where
# Snakemake alone would say "No rule to produce".
rule unknown_experiment:
    input:
        lambda wildcards: refuse_target(
            f"{RESULTS}/experiments/{wildcards.name}/{wildcards.file}"
        ),
    output:
        f"{RESULTS}/experiments/{{name}}/{{file}}",
    wildcard_constraints:
        name=rf"(?!(?:{NAME_REGEX})/)[^/]+",
        file=".+",
