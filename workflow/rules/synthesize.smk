rule synthesize:
    output:
        catalog=f"{SYNTHETIC}/zoo2MainSpecz.csv.gz",
        mapping=f"{SYNTHETIC}/gz2_filename_mapping.csv",
        images=directory(f"{SYNTHETIC}/images_gz2/images"),
        physical=f"{SYNTHETIC}/stellar_mass_sfr.csv",
        truth=f"{SYNTHETIC}/truth.csv",
        masks=f"{SYNTHETIC}/masks.zip",
        sheet=report(
            f"{SYNTHETIC}/contact_sheet.png",
            caption="../report/contact_sheet.rst",
            category="Data",
        ),
        model_view=report(
            f"{SYNTHETIC}/contact_sheet_model_view.png",
            caption="../report/contact_sheet.rst",
            category="Data",
        ),
    log:
        f"{RESULTS}/logs/synthesize.log",
    conda:
        "../../envs/spiralarms.yaml"
    threads: config["synthetic"].get("workers", 2)
    params:
        settings=config["synthetic"],
        # the model-view sheet shows the first network at the training sizes
        model_view={
            "model": (config["experiments"]["models"] or ["b0"])[0],
            "image_size": config["train"]["image_size"],
            "crop_size": config["train"]["crop_size"],
        },
    script:
        "../scripts/synthesize.py"
