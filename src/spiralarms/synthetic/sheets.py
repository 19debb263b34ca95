"""Contact sheets of a synthetic dataset: a row per galaxy kind, a few galaxies each (PNG).

What a cell shows is the caller's `load(path)`: the 424 px frame as written, or the model's view
of it (`spiralarms.data.images.model_view` with the training sizes; the `synthesize` rule draws
both).
"""

from pathlib import Path

import numpy as np

from spiralarms import atomic, gz2
from spiralarms.synthetic.generate import IMAGE_DIR, TRUTH_FILE, read_truth

ROW_ORDER = [*gz2.ARM_CLASS_NAMES, "elliptical", "edgeon", "irregular", "merger"]
# Arm classes are titled by the caller (data.variants.display_name: this layer is below data).
OTHER_TITLES = {"elliptical": "elliptical", "edgeon": "edge-on", "irregular": "irregular",
                "merger": "merger"}


def contact_sheet(out_dir, png_path, load, title, per_class=6, class_titles=None) -> Path:
    """Write a PNG grid of the dataset under `out_dir`, a row per kind (the first `per_class`
    galaxies with an image): `load(jpeg_path)` gives each cell, uint8 RGB or (H, W) grey / RGB
    in [0, 1]; `class_titles` maps an arm class to its row title (else the class name). Returns
    the PNG path."""
    titles = {**(class_titles or {}), **OTHER_TITLES}
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = read_truth(out_dir)
    truth = truth[truth["has_image"] == 1]
    rows = [(k, truth[truth["kind"] == k].head(per_class)) for k in ROW_ORDER]
    rows = [(k, group) for k, group in rows if len(group)]
    if not rows:
        raise ValueError(f"{Path(out_dir) / TRUTH_FILE} lists no galaxies with images")
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(rows), per_class, figsize=(1.6 * per_class, 1.7 * len(rows)),
                             squeeze=False)
    for (kind, group), ax_row in zip(rows, axes):
        galaxies = [g for _, g in group.iterrows()] + [None] * per_class
        for ax, galaxy in zip(ax_row, galaxies):
            ax.set_xticks([])
            ax.set_yticks([])
            if galaxy is None:
                ax.axis("off")
                continue
            image = np.asarray(load(Path(out_dir) / IMAGE_DIR / f"{galaxy['asset_id']}.jpg"))
            if image.ndim == 2:
                ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image)
        ax_row[0].set_ylabel(titles.get(kind, kind), fontsize=10)
    fig.suptitle(f"synthetic GZ2: {title}", fontsize=11)
    fig.tight_layout()
    with atomic.replacing(png_path) as partial:
        fig.savefig(partial, dpi=90, format="png")
    plt.close(fig)
    return png_path
