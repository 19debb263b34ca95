rule synthesize:
    output:
        catalog=f"{SYNTHETIC}/zoo2MainSpecz.csv.gz",
        mapping=f"{SYNTHETIC}/gz2_filename_mapping.csv",
        images=directory(f"{SYNTHETIC}/images_gz2/images"),
        physical=f"{SYNTHETIC}/stellar_mass_sfr.csv",
        truth=f"{SYNTHETIC}/truth.csv",
        sheet=report(
            f"{SYNTHETIC}/contact_sheet.png",
            caption="../report/contact_sheet.rst",
            category="Data",
        ),
    params:
        settings=config["synthetic"],
    log:
        f"{RESULTS}/logs/synthesize.log",
    threads: config["synthetic"].get("workers", 2)
    conda:
        "../../envs/spiralarms.yaml"
    script:
        "../scripts/synthesize.py"
