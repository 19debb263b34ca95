"""The `synthesize` rule: the synthetic dataset (`synthetic.generate`), its stellar masses and SFRs
(`synthetic.physical`) and its two contact sheets (`synthetic.sheets`), the second of them the
model's view. It lives in `data/`, not `synthetic/`, because that view is `data.images`: the
bottom layer does not import the one above it.
"""

from functools import partial
from pathlib import Path

from spiralarms.data.variants import CLASS_ORDER, display_name
from spiralarms.synthetic import sheets
from spiralarms.synthetic.generate import synthesize
from spiralarms.synthetic.physical import write_physical


def run_synthesize(catalog_path, physical_path, sheet_png, model_view_png, settings: dict,
                   model_view: dict, workers=1) -> dict:
    """The dataset (config `synthetic`: per_class, ellipticals, edgeon, irregulars, mergers,
    seed, missing_images) in
    the folder of `catalog_path`, `physical_path`, and the sheets; `model_view`: model,
    image_size and crop_size (the training sizes). Returns synthesize's summary."""
    out_dir = Path(catalog_path).parent
    summary = synthesize(
        out_dir,
        n_per_class=settings["per_class"],
        n_elliptical=settings["ellipticals"],
        n_edgeon=settings["edgeon"],
        # not in the config schema yet: none unless given
        n_irregular=settings.get("irregulars", 0),
        n_merger=settings.get("mergers", 0),
        seed=settings["seed"],
        n_missing_images=settings["missing_images"],
        workers=workers,
    )
    write_physical(out_dir, physical_path, seed=settings["seed"])
    write_sheets(out_dir, sheet_png, model_view_png, model_view)
    return summary


def write_sheets(out_dir, frames_png, view_png, view: dict):
    """The frames as written, then as the model sees them (the training sizes)."""
    from spiralarms.data import images  # TensorFlow: only after the forked renderers are done

    titles = {name: display_name(name) for name in CLASS_ORDER}
    sheets.contact_sheet(out_dir, frames_png, lambda path: images.read_rgb(path)[0],
                         "424 px frames", class_titles=titles)
    sheets.contact_sheet(out_dir, view_png, partial(images.read_model_view, **view),
                         f"{view['model']} input: central {view['crop_size']} px crop, "
                         f"{view['image_size']} px", class_titles=titles)
