"""Figure helpers shared by the evaluation and XAI figures (matplotlib only, no pyplot state)."""

from pathlib import Path

import numpy as np

PNG_DPI = 150


def save(fig, stem, pad_inches=None) -> list:
    """Write `<stem>.png` (PNG_DPI) and `<stem>.pdf`, tight, parent folders created; return both
    paths. `pad_inches`: the margin around the tight box (None: matplotlib's default)."""
    paths = [_beside(stem, ".png"), _beside(stem, ".pdf")]
    fig.savefig(paths[0], dpi=PNG_DPI, bbox_inches="tight", pad_inches=pad_inches)
    fig.savefig(paths[1], bbox_inches="tight", pad_inches=pad_inches)
    return paths


def save_photo_sheet(fig, stem) -> Path:
    """Write a contact sheet of photographs as `<stem>.png` only, and return its path: a PDF
    would hold the same pixels, and writing it doubled the figures job (the demo's seven jobs
    spent most of their ~60 s on the misclassification sheets). zlib level 1: photographs
    barely compress, so it is twice as fast as the default 6 for a file ~15 % larger."""
    path = _beside(stem, ".png")
    fig.savefig(path, dpi=PNG_DPI, bbox_inches="tight", pil_kwargs={"compress_level": 1})
    return path


def _beside(stem, suffix) -> Path:
    """`<stem><suffix>` (a stem may hold dots: a class name such as 3-4), its folder created."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    return stem.with_name(stem.name + suffix)


def display_image(image, name="image") -> np.ndarray:
    """An image as imshow takes it: (H, W) grey or (H, W, 3) RGB in [0, 1].

    Model inputs are greyscale in [0, 1] (B0) or RGB in 0-255 (V2M), files uint8: anything above
    1 is taken as 0-255. `name` says in the error which image had another shape.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3):
        raise ValueError(f"{name} has shape {image.shape}; expected HxW or HxWxC")
    if image.max() > 1.0:
        image = image / 255.0
    return np.clip(image, 0.0, 1.0)
