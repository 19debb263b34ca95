"""Figures for `spiralarms.xai.maps`: explanation overlays and feature-map grids (PNG + PDF).

Uses matplotlib's object API (Figure, no pyplot), so no backend or global state is touched.
"""

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from spiralarms.plotting import display_image, save

OVERLAY_CMAP = "jet"
OVERLAY_ALPHA = 0.5
PANEL_INCHES = 2.0
PAD_INCHES = 0.05  # margin of the saved figures: the panels sit close to the edge
# The notebook's channel grids (rows, columns) for the lower, middle and upper layer.
FEATURE_GRIDS = ((4, 8), (8, 16), (12, 24))
DEPTH_NAMES = ("lower", "middle", "upper")


def _show_input(ax, image):
    shown = display_image(image)
    ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0.0, vmax=1.0)
    ax.set_axis_off()


def _show_overlay(ax, image, attribution):
    _show_input(ax, image)
    ax.imshow(attribution, cmap=OVERLAY_CMAP, alpha=OVERLAY_ALPHA, vmin=0.0, vmax=1.0)
    if not np.any(attribution):
        # GradCAM++ gives an all-zero map when no channel raises the class score; say so
        # rather than let a uniform tint pass for "attends nowhere in particular".
        ax.text(
            0.5,
            0.5,
            "all-zero map",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="white",
            fontsize=9,
        )


def row_title(row, class_names) -> str:
    return (
        f"true: {class_names[int(row.true_index)]}  "
        f"pred: {class_names[int(row.pred_index)]}  p={row.p:.2f}"
    )


def _overlay_grid(rows, display, column_titles, stem, title, title_lines=1) -> list:
    """rows: (display index, row title, [(attribution map, panel title or None), ...])."""
    n_cols = 1 + len(column_titles)
    row_inches = PANEL_INCHES + 0.17 * title_lines + 0.08
    fig = Figure(
        figsize=(PANEL_INCHES * n_cols + 0.3, row_inches * len(rows) + 1.0),
        layout="constrained",
    )
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for r, (image_index, row_title, panels) in enumerate(rows):
        _show_input(axes[r, 0], display[image_index])
        axes[r, 0].set_title(row_title, fontsize=9)
        for c, (attribution, panel_title) in enumerate(panels, start=1):
            _show_overlay(axes[r, c], display[image_index], attribution)
            if panel_title or r == 0:
                axes[r, c].set_title(panel_title or column_titles[c - 1], fontsize=9)
    fig.suptitle(title, fontsize=11)
    colorbar = fig.colorbar(
        ScalarMappable(Normalize(0.0, 1.0), cmap=OVERLAY_CMAP),
        ax=axes,
        location="bottom",
        shrink=0.5,
        aspect=30,
    )
    colorbar.set_label("attribution (normalised per map)", fontsize=9)
    return save(fig, stem, pad_inches=PAD_INCHES)


def plot_correct(examples, display, maps, class_names, stem) -> list:
    """Rows: correctly classified galaxies; columns: input, GradCAM++ and SmoothGrad overlays
    for the predicted (= true) class. `maps[(label, class)]` = (gradcam, smoothgrad)."""
    rows = []
    for label, row in examples.iterrows():
        cam, grad = maps[(label, int(row.pred_index))]
        rows.append((label, row_title(row, class_names), [(cam, None), (grad, None)]))
    return _overlay_grid(
        rows,
        display,
        ["GradCAM++", "SmoothGrad"],
        stem,
        "Most confident correct classifications (p = softmax probability)",
    )


def plot_misclassified(examples, display, maps, class_names, stem) -> list:
    """Rows: misclassified galaxies; columns: input, then GradCAM++ and SmoothGrad overlays
    explaining the predicted class and then the true class."""
    rows = []
    for label, row in examples.iterrows():
        pred, true = int(row.pred_index), int(row.true_index)
        cam_pred, grad_pred = maps[(label, pred)]
        cam_true, grad_true = maps[(label, true)]
        panels = [
            (cam_pred, f"GradCAM++\nfor pred {class_names[pred]}"),
            (grad_pred, f"SmoothGrad\nfor pred {class_names[pred]}"),
            (cam_true, f"GradCAM++\nfor true {class_names[true]}"),
            (grad_true, f"SmoothGrad\nfor true {class_names[true]}"),
        ]
        rows.append((label, row_title(row, class_names), panels))
    return _overlay_grid(
        rows,
        display,
        [""] * 4,
        stem,
        "Most confident misclassifications, explained for the predicted and the true class",
        title_lines=2,
    )


def channel_mosaic(activation, grid) -> np.ndarray:
    """The first rows*cols channels of an (H, W, C) activation tiled into one image, each
    channel min-max scaled on its own, NaN (drawn blank) in the gaps and missing channels."""
    n_rows, n_cols = grid
    h, w, n_channels = activation.shape
    gap = max(1, h // 16)
    mosaic = np.full((n_rows * (h + gap) - gap, n_cols * (w + gap) - gap), np.nan)
    for k in range(min(n_rows * n_cols, n_channels)):
        channel = activation[..., k].astype(np.float64)
        span = channel.max() - channel.min()
        r, c = divmod(k, n_cols)
        top, left = r * (h + gap), c * (w + gap)
        mosaic[top : top + h, left : left + w] = (channel - channel.min()) / span if span else 0.0
    return mosaic


def plot_feature_maps(activations, layers, stem, title=None, grids=FEATURE_GRIDS) -> list:
    """Channel grids (4x8, 8x16, 12x24) of the lower, middle and upper layer, one panel each."""
    if len(activations) != len(grids):
        raise ValueError(
            f"got {len(activations)} feature maps for {len(grids)} channel grids {grids}; "
            "pass one layer per depth (lower, middle, upper)"
        )
    fig = Figure(figsize=(10, 5.6 * len(grids)), layout="constrained")
    axes = fig.subplots(len(grids), 1, squeeze=False)[:, 0]
    for ax, activation, name, grid, depth in zip(axes, activations, layers, grids, DEPTH_NAMES):
        shown = min(grid[0] * grid[1], activation.shape[-1])
        ax.imshow(channel_mosaic(activation, grid), cmap="viridis", interpolation="nearest")
        ax.set_title(
            f"{depth} layer: {name} ({activation.shape[0]}x{activation.shape[1]} px, "
            f"first {shown} of {activation.shape[-1]} channels)",
            fontsize=11,
        )
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=12)
    return save(fig, stem, pad_inches=PAD_INCHES)


MASK_CONTOURS = (("galaxy", "cyan"), ("arm", "white"))


def _mask_contours(ax, regions, index):
    for region, colour in MASK_CONTOURS:
        mask = regions[region][index]
        if mask.min() < 0.5 < mask.max():
            ax.contour(mask, levels=[0.5], colors=colour, linewidths=0.8)


def plot_attribution_masks(display, regions, maps, row_titles, stem) -> list:
    """Rows: galaxies of the attribution measure; columns: the input, then each method's map
    (`maps`: method -> (N, H, W)), with the renderer's galaxy (cyan) and arm (white) masks
    outlined where the model-view mask is one half (`regions`: attribution.model_view_regions)."""
    methods = list(maps)
    n_cols = 1 + len(methods)
    fig = Figure(figsize=(PANEL_INCHES * n_cols + 0.3, (PANEL_INCHES + 0.3) * len(row_titles) + 1.0),
                 layout="constrained")
    axes = fig.subplots(len(row_titles), n_cols, squeeze=False)
    for r, title in enumerate(row_titles):
        _show_input(axes[r, 0], display[r])
        _mask_contours(axes[r, 0], regions, r)
        axes[r, 0].set_title(title, fontsize=9)
        for c, method in enumerate(methods, start=1):
            _show_overlay(axes[r, c], display[r], maps[method][r])
            _mask_contours(axes[r, c], regions, r)
            if r == 0:
                axes[r, c].set_title(method, fontsize=9)
    fig.suptitle("Attribution against the renderer's masks (cyan: galaxy, white: arms)",
                 fontsize=11)
    return save(fig, stem, pad_inches=PAD_INCHES)
