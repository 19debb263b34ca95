"""Render Galaxy-Zoo-2-like colour cut-outs of synthetic galaxies (numpy + scipy only).

A spiral is an exponential disc modulated by m logarithmic arms, with star-forming knots along the
arms, a small Sersic bulge, random inclination and position angle, a Gaussian PSF, sky noise, an
asinh stretch and a colour tint. Sizes are given for the 424 px GZ2 frame and scale with `size`.

The demo model sees only the central 224 px of the frame, downsampled to 64 px greyscale, so the
countable classes keep the disc inside that crop and the arms wide apart (see `MIN_PITCH_DEG`).
"""

from typing import NamedTuple

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import expit

from spiralarms.gz2 import FRAME  # the GZ2 cut-out size; every length below is in its pixels

# render kinds: arm classes 0..5 (gz2.ARM_CLASS_NAMES order) plus the two non-targets
ARM_KINDS = (0, 1, 2, 3, 4, 5)
NON_TARGET_KINDS = ("elliptical", "edgeon")
KINDS = ARM_KINDS + NON_TARGET_KINDS
KIND_LABELS = {0: "1", 1: "2", 2: "3", 3: "4", 4: "5+", 5: "?",
               "elliptical": "elliptical", "edgeon": "edgeon"}
ARM_NUMBERS = {0: (1,), 1: (2,), 2: (3,), 3: (4,), 4: (5, 6, 7)}

# Tighter arms sit closer together; below these pitches the arms of an m-armed spiral merge at
# 64 px (a 7-armed spiral at 10 deg has arms under 2 px apart).
MIN_PITCH_DEG = {1: 10.0, 2: 10.0, 3: 12.0, 4: 15.0, 5: 20.0, 6: 20.0, 7: 20.0}
MAX_PITCH_DEG = 35.0
MAX_ARM_RADIUS = 96.0  # keeps arms inside the central 224 crop (half width 112, centre jitter 8)

# RGB weights of each light component (g, r, i shown as B, G, R like SDSS composites)
COLOURS = {
    "disc": (1.00, 0.90, 0.78),
    "arms": (0.70, 0.83, 1.00),  # arms and their star-forming knots
    "bulge": (1.00, 0.80, 0.55),
}


def check_kind(kind):
    """Return `kind` in canonical form (int arm class or non-target name), else raise."""
    if isinstance(kind, (int, np.integer)) and int(kind) in ARM_KINDS:
        return int(kind)
    if kind in NON_TARGET_KINDS:
        return kind
    raise ValueError(f"unknown galaxy kind {kind!r}; use an arm class 0-5 or one of "
                     f"{list(NON_TARGET_KINDS)}")


def render_galaxy(kind, rng, size=FRAME):
    """One synthetic GZ2-style cut-out of `kind` as a (size, size, 3) uint8 RGB array."""
    return render_from_params(draw_params(kind, rng, size), rng)


# ---------------------------------------------------------------- parameters


def draw_params(kind, rng, size=FRAME):
    """Draw the render parameters of one galaxy of `kind` (lengths in pixels of `size`)."""
    kind = check_kind(kind)
    if size < 64:
        raise ValueError(f"frame size {size} px is too small to render a galaxy; use >= 64 "
                         f"(GZ2 cut-outs are {FRAME})")
    params = _frame_params(rng)
    if kind == "elliptical":
        params.update(_elliptical_params(rng))
    elif kind == "edgeon":
        params.update(_edgeon_params(rng))
    elif kind == 5:
        params.update(_cant_tell_params(rng))
    else:
        params.update(_spiral_params(rng, int(rng.choice(ARM_NUMBERS[kind]))))
    params["kind"] = KIND_LABELS[kind]
    params["size"] = int(size)
    return _scale_lengths(params, size / FRAME)


_LENGTHS = ("h", "h_arm", "r_in", "r_out", "bulge_re", "psf_fwhm", "dx", "dy", "hz")


def _scale_lengths(params, scale):
    for key in _LENGTHS:
        if key in params:
            params[key] = params[key] * scale
    return params


def _frame_params(rng):
    return {
        "dx": rng.uniform(-8, 8), "dy": rng.uniform(-8, 8),
        "pa_deg": rng.uniform(0, 180),
        "tint_r": rng.uniform(0.9, 1.1), "tint_g": rng.uniform(0.93, 1.07),
        "tint_b": rng.uniform(0.9, 1.1),
        "stretch_beta": rng.uniform(0.03, 0.07),  # asinh softening, fraction of the peak
        "peak_level": rng.uniform(1.1, 1.4),      # >1: cores saturate as in SDSS composites
        "n_stars": int(rng.integers(0, 4)),
    }


def _spiral_params(rng, n_arms):
    h = rng.uniform(18, 26)
    return {
        "n_arms": n_arms,
        "h": h,
        "h_arm": h * rng.uniform(1.0, 1.3),  # arms fade slower than the disc, so outer arms show
        "incl_deg": rng.uniform(0, 55),
        "pitch_deg": rng.uniform(MIN_PITCH_DEG[n_arms], MAX_PITCH_DEG + (5 if n_arms > 4 else 0)),
        "chirality": int(rng.choice([-1, 1])),
        "arm_phase": rng.uniform(0, 2 * np.pi),
        "arm_amp": rng.uniform(1.3, 2.3),
        "arm_width": rng.uniform(0.12, 0.18),  # Gaussian sigma as a fraction of the arm spacing
        "r_in": h * rng.uniform(0.6, 1.0),
        "r_out": min(h * rng.uniform(3.5, 4.2), MAX_ARM_RADIUS),
        "n_knots": int(rng.integers(30, 101)),
        "knot_frac": rng.uniform(0.08, 0.2),
        "flocculence": rng.uniform(0.1, 0.3) if n_arms > 4 else 0.0,
        "bt": rng.uniform(0.04, 0.15),
        "bulge_n": rng.uniform(1, 3),
        "bulge_re": rng.uniform(2.5, 5),
        "bulge_q": rng.uniform(0.8, 1.0),
        "psf_fwhm": rng.uniform(3, 6),
        "noise": rng.uniform(0.005, 0.015),  # sky sigma, fraction of the peak
    }


# Ways a spiral's arms become uncountable; each "can't tell" galaxy gets one or two.
CANT_TELL_MODES = ("faint", "blurred", "small", "inclined", "weak")


def _cant_tell_params(rng):
    params = _spiral_params(rng, int(rng.integers(1, 6)))
    params["arm_amp"] = rng.uniform(0.5, 1.2)  # weaker than the countable classes' arms
    n_modes = int(rng.integers(1, 3))
    modes = sorted(rng.choice(len(CANT_TELL_MODES), size=n_modes, replace=False))
    for mode in (CANT_TELL_MODES[m] for m in modes):
        if mode == "faint":
            # sky noise averages down 3.5x in the 64 px model view: needs to be strong
            params["noise"] = rng.uniform(0.12, 0.22)
            params["arm_amp"] *= 0.5
        elif mode == "blurred":
            params["psf_fwhm"] = rng.uniform(16, 26)
        elif mode == "small":
            params["h"] = rng.uniform(4, 7)
            params["h_arm"] = params["h"] * 1.1
            params["r_in"], params["r_out"] = 0.8 * params["h"], 3.5 * params["h"]
        elif mode == "inclined":
            params["incl_deg"] = rng.uniform(70, 80)
        elif mode == "weak":
            params["arm_amp"] = rng.uniform(0.1, 0.35)
            params["flocculence"] = rng.uniform(0.6, 0.9)
    params["degradation"] = "+".join(CANT_TELL_MODES[m] for m in modes)
    return params


def _elliptical_params(rng):
    return {
        "n_arms": 0,
        "bulge_n": rng.uniform(2, 4), "bulge_re": rng.uniform(14, 32),
        "bulge_q": rng.uniform(0.6, 1.0), "bt": 1.0,
        "psf_fwhm": rng.uniform(3, 8), "noise": rng.uniform(0.005, 0.02),
        # a de Vaucouleurs cusp outshines its envelope: saturate the core so the body shows
        "core_boost": rng.uniform(4, 10),
    }


def _edgeon_params(rng):
    h = rng.uniform(15, 28)
    return {
        "n_arms": 0, "h": h, "hz": h * rng.uniform(0.07, 0.14),
        "incl_deg": rng.uniform(82, 90),
        "dust": rng.uniform(0.3, 0.8) if rng.random() < 0.5 else 0.0,
        "bt": rng.uniform(0.05, 0.3), "bulge_n": rng.uniform(1, 4),
        "bulge_re": rng.uniform(3, 7), "bulge_q": rng.uniform(0.6, 0.9),
        "psf_fwhm": rng.uniform(3, 7), "noise": rng.uniform(0.005, 0.02),
    }


# ---------------------------------------------------------------- rendering


class _Light(NamedTuple):
    """One light component: its flux over `extent`, the slice of the box that holds it all."""

    flux: np.ndarray
    extent: tuple
    colour: str
    blurred: bool  # False for light too smooth for the PSF to change (a spiral's disc)


def render_from_params(params, rng, masks=False):
    """Render the galaxy described by `params`; `rng` draws the knots, stars and sky noise.

    With `masks`, returns (image, mask): `mask` is the (size, size) uint8 label image of
    `galaxy_mask` (same draws, so the image is the same as without).
    """
    half = _box_half_size(params)
    grid = _Grid(params, half)
    sigma = params["psf_fwhm"] / 2.3548
    if params["kind"] == "elliptical":
        lights = [_bulge(params, grid, grid.central(half), 1.0)]
    elif params["kind"] == "edgeon":
        lights = _edgeon_lights(params, grid, sigma)
    else:
        lights = _spiral_lights(params, grid, sigma, rng)
    components = {"arms": None, "smooth": None} if masks else None
    bands = _blurred_bands(lights, params, sigma, 2 * half, components)
    scale = np.float32(params.get("core_boost", 1.0) / bands.max())
    bands *= scale
    frame = _sky(params, rng, params["size"])
    _add_stars(frame, params, rng, sigma)
    y0, x0 = grid.origin
    frame[y0:y0 + 2 * half, x0:x0 + 2 * half] += bands
    image = _stretch(frame, params)
    if not masks:
        return image
    label = np.zeros((params["size"], params["size"]), dtype=np.uint8)
    label[y0:y0 + 2 * half, x0:x0 + 2 * half] = galaxy_mask(components, scale, params["noise"])
    return image, label


# ---------------------------------------------------------------- arm and galaxy masks

# Label values of a mask (a 2-bit palette PNG in the dataset's masks.zip): 0 sky, 1 galaxy
# off the arms, 2 arm; galaxy = label >= 1, arms = label == 2.
MASK_SKY, MASK_GALAXY, MASK_ARM = 0, 1, 2
GALAXY_SKY_SIGMAS = 2.0  # galaxy: its light >= 2 sky sigma
ARM_SKY_SIGMAS = 2.0     # arm: the arm light >= 2 sky sigma ...
ARM_CONTRAST = 0.5       # ... and >= half the smooth (disc + bulge) light under it


def galaxy_mask(components, scale, noise):
    """Label image (MASK_SKY / MASK_GALAXY / MASK_ARM) of the galaxy's box from its light.

    The light is what the renderer adds to the sky before the display stretch: each
    component PSF-blurred (the spiral disc as rendered, unblurred), averaged over the three
    bands with its colour and tint, in the units of the sky sigma `noise`. A pixel is
    *galaxy* where all the galaxy's light (disc, bulge, arms and knots) reaches
    GALAXY_SKY_SIGMAS sky sigma, and *arm* where the arm light (arms and their knots) alone
    reaches ARM_SKY_SIGMAS sky sigma and ARM_CONTRAST of the smooth light (disc and bulge)
    under it: where an arm stands out of the sky and of the disc. Arms lie within the galaxy;
    foreground stars and noise are sky; ellipticals and edge-on discs have no arm pixels.
    """
    # thresholds in the unscaled flux: one division instead of scaling the maps
    sky = np.float32(noise / scale)
    smooth = components["smooth"]
    label = (smooth >= GALAXY_SKY_SIGMAS * sky).view(np.uint8)
    if components["arms"] is None:  # ellipticals and edge-on discs
        return label
    extent, arms = components["arms"]
    under = smooth[extent]
    galaxy = label[extent].view(bool)
    galaxy |= arms + under >= GALAXY_SKY_SIGMAS * sky  # in place: label sees it
    arm = arms >= ARM_SKY_SIGMAS * sky
    arm &= arms >= np.float32(ARM_CONTRAST) * under
    arm &= galaxy
    label[extent] += arm.view(np.uint8)
    return label


def _box_half_size(params):
    """Half width of the square that holds all the galaxy's light above the noise."""
    if params["kind"] == "elliptical":
        extent = 6 * params["bulge_re"]
    else:
        extent = 5.2 * params["h"]
    extent += 3 * params["psf_fwhm"]
    return int(min(params["size"] // 2 - 9, np.ceil(extent)))


class _Grid:
    """Pixel coordinates of the galaxy's box, rotated to the major axis and deprojected."""

    def __init__(self, params, half):
        size = params["size"]
        cx, cy = size / 2 + params["dx"], size / 2 + params["dy"]
        self.half = half
        self.origin = (round(cy) - half, round(cx) - half)
        # Python floats keep the grid float32 (NumPy scalars would promote it to float64)
        pixels = np.arange(2 * half, dtype=np.float32)
        y = (pixels + float(self.origin[0] + 0.5 - cy))[:, None]
        x = (pixels + float(self.origin[1] + 0.5 - cx))[None, :]
        self.pa = float(np.deg2rad(params["pa_deg"]))
        cos_pa, sin_pa = float(np.cos(self.pa)), float(np.sin(self.pa))
        self.xr = x * cos_pa + y * sin_pa
        self.yr = y * cos_pa - x * sin_pa
        self.cos_i = max(float(np.cos(np.deg2rad(params.get("incl_deg", 0.0)))), 0.02)
        self.bulge_q = params["bulge_q"]
        self.r = np.hypot(self.xr, self.yr * (1.0 / self.cos_i))

    def central(self, radius):
        """Slice of the box within `radius` px of its centre."""
        inner = min(self.half, int(np.ceil(radius)))
        return np.s_[self.half - inner:self.half + inner, self.half - inner:self.half + inner]

    def theta(self, region):
        """Azimuth in the disc plane over `region` (only the arms need it)."""
        return np.arctan2(self.yr[region] * (1.0 / self.cos_i), self.xr[region])

    def r_bulge(self, region):
        return np.hypot(self.xr[region], self.yr[region] * (1.0 / self.bulge_q))

    def to_pixels(self, r, theta, region):
        """Pixel indices (row, col) within `region` of disc-plane points (r, theta)."""
        xr, yr = r * np.cos(theta), r * np.sin(theta) * self.cos_i
        x = xr * np.cos(self.pa) - yr * np.sin(self.pa)
        y = xr * np.sin(self.pa) + yr * np.cos(self.pa)
        # the box centre is the galaxy centre to within a pixel: good enough for knots
        inner = region[0].stop - self.half
        return np.rint(y + inner - 0.5).astype(int), np.rint(x + inner - 0.5).astype(int)


def _sersic(r, n, re):
    b = 2.0 * n - 1.0 / 3.0
    return np.exp(-b * ((r * (1 / re)) ** (1.0 / n) - 1.0)).astype(np.float32)


def _bulge(params, grid, region, flux):
    """Sersic bulge over `region`, scaled to total `flux`."""
    bulge = _sersic(grid.r_bulge(region), params["bulge_n"], params["bulge_re"])
    bulge *= np.float32(flux / bulge.sum())
    return _Light(bulge, region, "bulge", True)


def _bulge_region(params, grid, sigma):
    return grid.central(8 * params["bulge_re"] + 3 * sigma + 1)


def _spiral_lights(params, grid, sigma, rng):
    h, r = params["h"], grid.r
    taper = expit((4.5 * h - r) * (1 / (0.25 * h)))  # fades the disc out well inside the box
    disc = np.exp(r * (-1 / h)) * taper
    # the arms fall below 0.5 % of their peak 0.8 h beyond r_out: compute them only inside
    region = grid.central(params["r_out"] + 0.8 * h + 3 * sigma)
    r_arms = r[region]
    env = expit((r_arms - params["r_in"]) * (1 / (0.25 * h))) * expit(
        (params["r_out"] - r_arms) * (1 / (0.15 * h))) * taper[region]
    arms = (np.exp(r_arms * (-1 / params["h_arm"])) * env * params["arm_amp"]
            * _arm_pattern(params, r_arms, grid.theta(region), rng))
    _add_knots(arms, params, grid, region, rng)
    flux = float(disc.sum() + arms.sum())
    bulge = _bulge(params, grid, _bulge_region(params, grid, sigma),
                   params["bt"] / (1 - params["bt"]) * flux)
    return [_Light(disc, grid.central(grid.half), "disc", False),
            _Light(arms, region, "arms", True), bulge]


def _arm_geometry(params):
    m = params["n_arms"]
    spacing = 2 * np.pi / m
    winding = params["chirality"] / float(np.tan(np.deg2rad(params["pitch_deg"])))
    sigma = min(params["arm_width"] * spacing, 0.45)  # a lone arm stays an arm, not a lopsided disc
    return m, spacing, winding, sigma


def _arm_pattern(params, r, theta, rng):
    """Sum of m Gaussian-profile log-spiral arms, one amplitude and phase jitter per arm."""
    m, spacing, winding, sigma = _arm_geometry(params)
    amps = rng.uniform(0.75, 1.25, m).astype(np.float32)
    jitter = (rng.normal(0, 0.05, m) * spacing).astype(np.float32)
    psi = theta - winding * np.log(np.maximum(r, 0.5) * (1 / params["r_in"]))
    u = (psi - params["arm_phase"]) / spacing
    k = np.rint(u)
    arm = k.astype(int) % m
    offset = (u - k) * spacing - jitter[arm]
    pattern = amps[arm] * np.exp(-0.5 * (offset / sigma) ** 2)
    if params["flocculence"] > 0:
        pattern *= 1 + params["flocculence"] * _flocculent_field(r.shape, rng)
    return pattern


def _flocculent_field(shape, rng):
    """Patchy unit-variance field with 3-4 px cells, for broken, flocculent arms."""
    coarse = rng.standard_normal((shape[0] // 4 + 1, shape[1] // 4 + 1)).astype(np.float32)
    return np.repeat(np.repeat(coarse, 4, 0), 4, 1)[:shape[0], :shape[1]]


def _add_knots(arms, params, grid, region, rng):
    """Point-like star-forming knots along the arms (the PSF gives them their size)."""
    n = params["n_knots"]
    m, spacing, winding, sigma = _arm_geometry(params)
    r = params["r_in"] + (params["r_out"] - params["r_in"]) * rng.random(n) ** 1.3
    arm = rng.integers(0, m, n)
    theta = (params["arm_phase"] + arm * spacing + winding * np.log(r / params["r_in"])
             + rng.normal(0, 0.5 * sigma, n))
    rows, cols = grid.to_pixels(r, theta, region)
    inside = (rows >= 0) & (rows < arms.shape[0]) & (cols >= 0) & (cols < arms.shape[1])
    flux = np.exp(-r / params["h_arm"]) * rng.lognormal(0, 0.5, n)
    flux *= params["knot_frac"] * float(arms.sum()) / max(float(flux[inside].sum()), 1e-12)
    np.add.at(arms, (rows[inside], cols[inside]), flux[inside].astype(np.float32))


def _edgeon_lights(params, grid, sigma):
    h, hz = params["h"], params["hz"]
    disc = (np.exp(-np.sqrt(grid.xr ** 2 + 1.0) / h) * np.exp(-np.abs(grid.yr) / hz)
            * expit((5.0 * h - np.abs(grid.xr)) / (0.3 * h)))
    if params["dust"] > 0:
        lane = np.exp(-0.5 * (grid.yr / (0.5 * hz)) ** 2) * expit(
            (3.5 * h - np.abs(grid.xr)) / (0.3 * h))
        disc *= 1 - params["dust"] * lane
    bulge = _bulge(params, grid, _bulge_region(params, grid, sigma),
                   params["bt"] / (1 - params["bt"]) * float(disc.sum()))
    return [_Light(disc.astype(np.float32), grid.central(grid.half), "disc", True), bulge]


def _blurred_bands(lights, params, sigma, width, components=None):
    """PSF-blur each light over its extent and mix them into (width, width, 3) RGB flux.

    `components` (a dict with keys "arms" and "smooth", for the masks) receives the band-mean
    flux of the arm light and of the rest, (width, width) each.
    """
    tint = (params["tint_r"], params["tint_g"], params["tint_b"])
    bands = np.zeros((width, width, 3), dtype=np.float32)
    for light in lights:
        flux = light.flux
        if light.blurred:
            # extents leave >= 3 sigma of empty margin, so no light is lost at their edges
            flux = gaussian_filter(flux, sigma, mode="constant", truncate=3.0)
        target = bands[light.extent]
        for band in range(3):
            target[..., band] += np.float32(COLOURS[light.colour][band] * tint[band]) * flux
        if components is not None:
            _add_component(components, light, flux, tint, width)
    return bands


def _add_component(components, light, flux, tint, width):
    """Band-mean flux of one light into components: "smooth" over the box, "arms" as
    (extent, flux) over the arms' own extent (the masks need nothing more)."""
    weight = float(np.mean([COLOURS[light.colour][b] * tint[b] for b in range(3)]))
    weighted = flux * np.float32(weight)
    if light.colour == "arms":
        components["arms"] = (light.extent, weighted)
    elif components["smooth"] is None and weighted.shape == (width, width):
        components["smooth"] = weighted
    else:
        if components["smooth"] is None:
            components["smooth"] = np.zeros((width, width), dtype=np.float32)
        components["smooth"][light.extent] += weighted


# ---------------------------------------------------------------- sky and display


def _noise_bank():
    """A fixed block of unit Gaussian noise; each image reads random windows of it (cheap)."""
    global _NOISE_BANK
    if _NOISE_BANK is None:
        _NOISE_BANK = np.random.default_rng(20_160_424).standard_normal(
            (1024, 1024, 3), dtype=np.float32)
    return _NOISE_BANK


_NOISE_BANK = None


def _sky(params, rng, size):
    """Sky noise, (size, size, 3): a random window of the noise bank (no flips: 8x slower)."""
    bank = _noise_bank()
    if size > bank.shape[0]:
        return params["noise"] * rng.standard_normal((size, size, 3), dtype=np.float32)
    y0, x0 = rng.integers(0, bank.shape[0] - size + 1, 2)
    return bank[y0:y0 + size, x0:x0 + size] * np.float32(params["noise"])


def _add_stars(frame, params, rng, sigma):
    """A few foreground stars away from the centre, as in real SDSS cut-outs."""
    size = frame.shape[0]
    r = int(np.ceil(4 * sigma))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    stamp = np.exp(-0.5 * (xx ** 2 + yy ** 2) / sigma ** 2).astype(np.float32)[..., None]
    for _ in range(params["n_stars"]):
        while True:
            y, x = rng.integers(r, size - r, 2)
            if max(abs(y - size / 2), abs(x - size / 2)) > 0.3 * size:
                break
        colour = rng.uniform(0.7, 1.0, 3).astype(np.float32) * np.float32(rng.uniform(0.05, 0.8))
        frame[y - r:y + r + 1, x - r:x + r + 1] += colour * stamp


def _stretch(frame, params):
    """asinh display stretch (Lupton et al. 2004 style) to uint8 RGB, in place on `frame`."""
    beta = params["stretch_beta"]
    scale = 255.0 * params["peak_level"] / float(np.arcsinh(1.0 / beta))
    np.maximum(frame, 0, out=frame)
    frame *= np.float32(1.0 / beta)
    np.arcsinh(frame, out=frame)
    frame *= np.float32(scale)
    frame += np.float32(0.5)
    np.minimum(frame, 255, out=frame)
    return frame.astype(np.uint8)
