from functools import partial
from pathlib import Path

from spiralarms import logs
from spiralarms.synthetic import generate, sheets
from spiralarms.synthetic.physical import write_physical


def write_sheets(out_dir, frames_png, view_png, view):
    """The frames as written, then as the model sees them (the training sizes)."""
    from spiralarms.data import images  # TensorFlow: only after the forked renderers are done

    sheets.contact_sheet(out_dir, frames_png, lambda path: images.read_rgb(path)[0],
                         "424 px frames")
    sheets.contact_sheet(out_dir, view_png, partial(images.read_model_view, **view),
                         f"{view['model']} input: central {view['crop_size']} px crop, "
                         f"{view['image_size']} px")


logs.to_file(snakemake.log[0])
s = snakemake.params.settings
out_dir = Path(snakemake.output.catalog).parent
generate.synthesize(
    out_dir,
    n_per_class=s["per_class"],
    n_elliptical=s["ellipticals"],
    n_edgeon=s["edgeon"],
    seed=s["seed"],
    n_missing_images=s["missing_images"],
    workers=snakemake.threads,
)
write_physical(out_dir, snakemake.output.physical, seed=s["seed"])
write_sheets(out_dir, snakemake.output.sheet, snakemake.output.model_view,
             snakemake.params.model_view)
