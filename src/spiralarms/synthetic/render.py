"""Render Galaxy-Zoo-2 cut-outs of synthetic galaxies the way SDSS imaged them.

A galaxy is drawn (`draw_params`) as physical components in arcseconds: an exponential disc, a
Sersic bulge on the Hubble sequence, perhaps a bar and rings, m spiral arms whose pitch, width
and amplitude change along each arm, spurs, dust lanes on the arms' inner edges, blue
star-forming knots, or, for "can't tell", a flocculent disc of many short arm segments; then
companions and foreground stars. Non-targets: ellipticals, edge-on discs, irregulars, mergers.
`render_from_params` models it on a fine grid in g, r and i (nanomaggies), and then
`spiralarms.synthetic.sdss` does what the camera and SkyServer did: PSF, 0.396" pixels, noise,
the 424 px frame at 0.02 R90 "/px, the Lupton colour composite. It also measures, on the
rendered r band, what a volunteer can see: `r90_arcsec`, `arm_snr` and `psf_arm_spacings`
(written into the parameters, for the votes and truth.csv). Sources: docs/synthetic-sky.md.
"""

import numpy as np
from scipy.special import expit, gammaincinv

from spiralarms.gz2 import FRAME  # the GZ2 cut-out size
from spiralarms.synthetic import sdss

# render kinds: arm classes 0..5 (gz2.ARM_CLASS_NAMES order) plus the non-targets
ARM_KINDS = (0, 1, 2, 3, 4, 5)
NON_TARGET_KINDS = ("elliptical", "edgeon", "irregular", "merger")
KINDS = ARM_KINDS + NON_TARGET_KINDS
KIND_LABELS = {0: "1", 1: "2", 2: "3", 3: "4", 4: "5+", 5: "?", **{k: k for k in NON_TARGET_KINDS}}
ARM_NUMBERS = {0: (1,), 1: (2,), 2: (3,), 3: (4,), 4: (5, 6, 7)}

# Hubble stages Sa..Sd: bulge-to-total, bulge Sersic index, pitch (deg) means (docs: sources)
STAGES = ("Sa", "Sab", "Sb", "Sbc", "Sc", "Scd", "Sd")
STAGE_BT = (0.40, 0.30, 0.22, 0.14, 0.08, 0.05, 0.02)
STAGE_BULGE_N = (3.5, 3.0, 2.5, 2.0, 1.5, 1.2, 1.0)
STAGE_PITCH = (11.0, 13.0, 15.0, 18.0, 21.0, 24.0, 27.0)

# colours (g-r, r-i) of each light component: old bulge red, star-forming knots blue
COLOURS = {"bulge": (0.78, 0.40), "disc": (0.58, 0.30), "arms": (0.45, 0.22),
           "knots": (0.15, 0.02), "irregular": (0.35, 0.15)}
DUST_TAU_RATIO = {"g": 1.32, "r": 1.0, "i": 0.77}  # extinction relative to r (Schlegel+98)

# a face-on exponential disc holds 90 % of its light within 3.89 scale lengths
EXP_R90_OVER_H = 3.8897
# galaxies wider than this (native px, R90 >~ 20") are modelled at native resolution: their
# 3.5 px PSF is well sampled, and the frame is coarser than the native pixels anyway
MAX_OVERSAMPLE_PIXELS = 150


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
    """Draw every parameter of one galaxy of `kind` (lengths in arcsec, angles in degrees)."""
    kind = check_kind(kind)
    if size < 64:
        raise ValueError(f"frame size {size} px is too small to render a galaxy; use >= 64 "
                         f"(GZ2 cut-outs are {FRAME})")
    params = {"kind": KIND_LABELS[kind], "size": int(size), "n_arms": 0}
    params.update(sdss.draw_conditions(rng))
    params.update(_photometry(rng, kind))
    params["pa_deg"] = float(rng.uniform(0, 180))
    params["dx_arcsec"], params["dy_arcsec"] = (float(v) for v in rng.uniform(-0.2, 0.2, 2))
    if kind == "elliptical":
        params.update(_elliptical_params(rng))
    elif kind == "irregular":
        params.update(_irregular_params(rng))
    elif kind == "merger":
        params.update(_merger_params(rng))
    else:
        params.update(_disc_params(rng, kind))
    params.update(_field_params(rng, params))
    return params


def _photometry(rng, kind):
    """Magnitude r and intrinsic R90 (arcsec) as in GZ2's main sample (docs: distributions).

    m: number counts of a flux-limited sample, dN/dm ~ 10^(0.6 m) (Euclidean) below r = 17.0,
    5 % of galaxies in the 17.0-17.77 'extra' range. R90: from the mean surface brightness
    within R90, normal around 22.0 mag/arcsec^2 (sigma 0.6), so fainter galaxies are smaller.
    Countable spirals are drawn from the brighter part of the counts (`COUNTABLE_FAINT`)."""
    faint = 17.77 if rng.random() < 0.05 else 17.0
    bright = 12.0
    if isinstance(kind, int) and kind < 5:
        faint = COUNTABLE_FAINT[kind]
    u = rng.random()
    lo, hi = 10 ** (0.6 * bright), 10 ** (0.6 * faint)
    mag = np.log10(lo + u * (hi - lo)) / 0.6
    mag = float(min(mag, faint))
    mu90 = rng.normal(22.0, 0.6)
    r90 = np.sqrt(0.9 * 10 ** (-0.4 * (mag - mu90)) / np.pi)
    return {"mag_r": mag, "mu90_r": float(mu90), "r90_model_arcsec": float(np.clip(r90, 3.0, 65.0))}


# Countable spirals: the bright end of the same counts, where GZ2 volunteers could count arms
# (the clean arm-number samples are brighter and larger than the whole: Hart et al. 2016)
# (many arms need a larger image to be told apart, so the 4- and 5+-armed come brighter)
COUNTABLE_FAINT = {0: 16.0, 1: 16.0, 2: 15.8, 3: 15.5, 4: 15.0}
COUNTABLE_MAX_INCLINATION = 65.0


def _inclination(rng, max_deg):
    """Random orientation: cos i uniform, limited to i <= max_deg."""
    return float(np.degrees(np.arccos(rng.uniform(np.cos(np.radians(max_deg)), 1.0))))


def _disc_params(rng, kind):
    """A disc galaxy: an arm class (0-4), "can't tell" (5, flocculent or weak arms) or edge-on."""
    stage = int(rng.integers(0, len(STAGES)))
    if kind == 5:
        stage = int(rng.integers(3, len(STAGES)))  # flocculent discs are late types
    bt = float(np.clip(STAGE_BT[stage] * np.exp(rng.normal(0, 0.35)), 0.0, 0.6))
    p = {"stage": STAGES[stage], "bt": bt,
         "bulge_n": float(np.clip(STAGE_BULGE_N[stage] + rng.normal(0, 0.4), 0.8, 4.5)),
         "bulge_re_h": float(rng.uniform(0.12, 0.3)),   # Re/h ~ 0.2 (Courteau+96)
         "bulge_q": float(rng.uniform(0.75, 1.0)),
         "disc_q0": float(rng.uniform(0.1, 0.2)),      # intrinsic thickness
         "bar": 0.0, "bar_len_h": 0.0, "bar_q": 1.0, "ring": 0.0, "ring_r_h": 0.0,
         "dust": 0.0, "flocculent": 0, "n_segments": 0, "pitch_deg": 0.0,
         "pitch_slope": 0.0, "arm_amp": 0.0, "arm_width": 0.0, "arm_asym": 0.0,
         "n_spurs": 0, "knot_frac": 0.0, "n_knots": 0, "chirality": int(rng.choice([-1, 1])),
         "arm_phase": float(rng.uniform(0, 2 * np.pi)), "r_in_h": 0.0, "r_out_h": 0.0}
    if kind == "edgeon":
        p["inclination_deg"] = float(rng.uniform(80, 90))
        p["dust"] = float(rng.uniform(0.4, 1.2)) if rng.random() < 0.6 else 0.0
        return p
    p["inclination_deg"] = _inclination(rng, 75.0 if kind == 5 else COUNTABLE_MAX_INCLINATION)
    if rng.random() < 0.3:  # strong bars in about a third of discs (Masters+11)
        p["bar"] = float(rng.uniform(0.3, 1.0))
        p["bar_len_h"] = float(rng.uniform(0.8, 1.6))
        p["bar_q"] = float(rng.uniform(0.22, 0.45))
    if rng.random() < 0.2:
        inner = p["bar"] > 0 and rng.random() < 0.6
        p["ring"] = float(rng.uniform(0.15, 0.5))
        p["ring_r_h"] = p["bar_len_h"] * 1.05 if inner else float(rng.uniform(2.2, 3.2))
    pitch = STAGE_PITCH[stage] + rng.normal(0, 4) + (4 if p["bar"] > 0.6 else 0)  # Hart+17
    p["pitch_deg"] = float(np.clip(pitch, 8, 38))
    p["pitch_slope"] = float(rng.normal(0, 2.5))  # deg per scale length, pitch varies with R
    p["r_in_h"] = max(p["bar_len_h"], float(rng.uniform(0.4, 0.9)))
    p["r_out_h"] = float(rng.uniform(3.2, 4.2))
    p["dust"] = float(rng.uniform(0.2, 0.7)) if rng.random() < 0.5 and stage <= 4 else 0.0
    if kind == 5:
        return {**p, **_flocculent_params(rng)}
    m = int(rng.choice(ARM_NUMBERS[kind]))
    p.update({"n_arms": m, "arm_amp": float(rng.uniform(1.5, 3.0)),
              "arm_width": float(rng.uniform(0.09, 0.14)),  # sigma / arm spacing
              "arm_asym": float(rng.uniform(0.0, 0.35)),
              "n_spurs": int(rng.integers(0, 3 * m + 1)),
              "knot_frac": float(rng.uniform(0.05, 0.18)), "n_knots": int(rng.integers(20, 90))})
    if m >= 5:
        p["pitch_deg"] = max(p["pitch_deg"], float(rng.uniform(16, 30)))
    return p


def _flocculent_params(rng):
    """"Can't tell": a flocculent disc of many short arm segments, or weak blended arms."""
    weak = rng.random() < 0.25
    return {"flocculent": 1 - int(weak), "n_arms": int(rng.integers(1, 5)) if weak else 0,
            "n_segments": 0 if weak else int(rng.integers(18, 45)),
            "arm_amp": float(rng.uniform(0.15, 0.35)) if weak else float(rng.uniform(1.2, 2.2)),
            "arm_width": float(rng.uniform(0.12, 0.2)), "arm_asym": 0.3,
            "n_spurs": 0, "knot_frac": float(rng.uniform(0.08, 0.2)),
            "n_knots": int(rng.integers(30, 120))}


def _elliptical_params(rng):
    return {"bulge_n": float(rng.uniform(3.0, 5.5)), "bulge_q": float(rng.uniform(0.55, 1.0)),
            "bt": 1.0, "inclination_deg": 0.0}


def _irregular_params(rng):
    return {"n_clumps": int(rng.integers(4, 12)), "clump_frac": float(rng.uniform(0.3, 0.6)),
            "disc_q0": 1.0, "inclination_deg": _inclination(rng, 70.0), "bt": 0.0,
            "lopsided": float(rng.uniform(0.2, 0.6))}


def _merger_params(rng):
    return {"flux_ratio": float(rng.uniform(0.3, 1.0)), "sep_r90": float(rng.uniform(0.25, 0.8)),
            "tail_amp": float(rng.uniform(0.3, 0.9)), "bt": float(rng.uniform(0.1, 0.6)),
            "inclination_deg": _inclination(rng, 70.0), "bulge_n": 2.0, "bulge_q": 0.85,
            "sep_angle": float(rng.uniform(0, 2 * np.pi))}


def _field_params(rng, params):
    """Foreground stars (Poisson, ~0.6 per arcmin^2 to r = 21 at high latitude) and a
    companion galaxy in a quarter of the frames."""
    side = sdss.FRAME_R90_SCALE * FRAME * params["r90_model_arcsec"] / 60  # arcmin
    return {"n_stars": int(rng.poisson(0.6 * side ** 2)),
            "companion": int(rng.random() < 0.25)}


# ---------------------------------------------------------------- rendering


def _arm_geometry(params, h):
    """Per-arm phase at radius R (arcsec): psi_j(R) = phi_j + integral dR / (R tan p(R))."""
    radii = np.linspace(1e-3, 6 * h, 400)
    pitch = np.radians(np.clip(params["pitch_deg"] + params["pitch_slope"] * (radii / h - 2),
                               5, 45))
    r_in = params["r_in_h"] * h
    dpsi = 1.0 / (radii * np.tan(pitch))
    psi = np.concatenate([[0], np.cumsum(0.5 * (dpsi[1:] + dpsi[:-1]) * np.diff(radii))])
    psi -= np.interp(r_in, radii, psi)
    return radii, params["chirality"] * psi


class _Grid:
    """Fine-grid coordinates (arcsec) in the sky and in the disc plane."""

    def __init__(self, n, scale, params):
        axis = (np.arange(n, dtype=np.float32) - (n - 1) / 2) * np.float32(scale)
        x = axis[None, :] - np.float32(params["dx_arcsec"])
        y = axis[:, None] - np.float32(params["dy_arcsec"])
        self.x, self.y = x, y
        pa = np.radians(params["pa_deg"])
        self.xr = (x * np.float32(np.cos(pa)) + y * np.float32(np.sin(pa))).astype(np.float32)
        self.yr = (y * np.float32(np.cos(pa)) - x * np.float32(np.sin(pa))).astype(np.float32)
        incl = np.radians(params.get("inclination_deg", 0.0) or 0.0)
        q0 = params.get("disc_q0", 0.15)
        # apparent axis ratio of a disc of intrinsic thickness q0 (Hubble 1926)
        self.q = float(np.sqrt(np.cos(incl) ** 2 * (1 - q0 ** 2) + q0 ** 2))
        self.yd = self.yr * np.float32(1 / self.q)
        self.r = np.hypot(self.xr, self.yd)
        self.scale, self.n = scale, n

    def theta(self):
        return np.arctan2(self.yd, self.xr)

    def to_pixels(self, r, theta, params):
        """Fine-grid (row, col) of disc-plane points."""
        pa = np.radians(params["pa_deg"])
        xr, yr = r * np.cos(theta), r * np.sin(theta) * self.q
        x = xr * np.cos(pa) - yr * np.sin(pa) + params["dx_arcsec"]
        y = xr * np.sin(pa) + yr * np.cos(pa) + params["dy_arcsec"]
        centre = (self.n - 1) / 2
        return np.rint(y / self.scale + centre).astype(int), np.rint(x / self.scale + centre).astype(int)


def _sersic(r, n, re):
    b = gammaincinv(2 * n, 0.5)
    return np.exp(-b * ((r * np.float32(1 / re)) ** np.float32(1 / n) - 1)).astype(np.float32)


def _sersic_r90_over_re(n):
    """R90/Re of a Sersic profile (from the incomplete gamma function)."""
    return (gammaincinv(2 * n, 0.9) / gammaincinv(2 * n, 0.5)) ** n


def _disc_scale(params):
    """Disc scale length h (arcsec) that gives the drawn intrinsic R90 (face-on, bulge+disc)."""
    r = np.linspace(0, 12, 1200)  # in units of h
    bt = params["bt"]
    disc = r * np.exp(-r)
    re = params["bulge_re_h"]
    b = gammaincinv(2 * params["bulge_n"], 0.5)
    bulge = r * np.exp(-b * (np.maximum(r, 1e-6) / re) ** (1 / params["bulge_n"]))
    growth = (1 - bt) * np.cumsum(disc) / disc.sum() + bt * np.cumsum(bulge) / bulge.sum()
    r90_h = float(np.interp(0.9, growth, r))
    return params["r90_model_arcsec"] / r90_h


def _components(params, grid, rng):
    """Light of the galaxy on the fine grid, per component (r-band flux, unnormalised).

    Returns {name: array} with names from COLOURS plus "arms_mask" bookkeeping: "arms" and
    "knots" are the arm light (masks, arm S/N); the rest is smooth light. Also the dust
    optical depth map in r (or None)."""
    kind = params["kind"]
    if kind == "elliptical":
        re = params["r90_model_arcsec"] / _sersic_r90_over_re(params["bulge_n"])
        rb = np.hypot(grid.xr, grid.yr * np.float32(1 / params["bulge_q"]))
        return {"bulge": _sersic(rb, params["bulge_n"], re)}, None
    if kind == "irregular":
        return _irregular(params, grid, rng), None
    if kind == "merger":
        return _merger(params, grid, rng), None
    h = _disc_scale(params)
    params["h_arcsec"] = h
    comps = {}
    r = grid.r
    if kind == "edgeon":
        hz = params["disc_q0"] * h
        z = grid.yr  # height above the plane, seen edge-on
        e = np.exp(-2 * np.abs(z) / np.float32(hz))
        disc = np.exp(-np.abs(grid.xr) / np.float32(h)) * 4 * e / (1 + e) ** 2  # sech^2
        comps["disc"] = disc.astype(np.float32)
    else:
        comps["disc"] = np.exp(-r / np.float32(h))
    disc_flux = float(comps["disc"].sum())
    bt = params["bt"]
    if bt > 0:
        rb = np.hypot(grid.xr, grid.yr * np.float32(1 / (params["bulge_q"] * max(grid.q, 0.5))))
        bulge = _sersic(rb, params["bulge_n"], params["bulge_re_h"] * h)
        comps["bulge"] = bulge * np.float32(bt / (1 - bt) * disc_flux / bulge.sum())
    tau = None
    if kind != "edgeon":
        theta = grid.theta()
        if params["bar"] > 0:
            comps["disc"] = comps["disc"] + _bar(params, grid, h, disc_flux)
        if params["ring"] > 0:
            ring = np.exp(-0.5 * ((r - params["ring_r_h"] * h) / (0.12 * h)) ** 2)
            comps["disc"] += (ring * np.exp(-r / h) * params["ring"] * 3).astype(np.float32)
        arms = _arms(params, r, theta, h, rng)
        comps["arms"] = (arms * np.exp(-r / np.float32(h))).astype(np.float32)
        if params["dust"] > 0:
            tau = _dust_lanes(params, r, theta, h)
        comps["knots"] = _knots(params, grid, h, float(comps["arms"].sum()), rng)
    elif params["dust"] > 0:
        lane = np.exp(-0.5 * (grid.yr / (0.35 * params["disc_q0"] * h)) ** 2) * np.exp(
            -np.abs(grid.xr) / (2 * h))
        tau = (params["dust"] * lane).astype(np.float32)
    return comps, tau


def _bar(params, grid, h, disc_flux):
    """A flat-topped elongated bar (Sersic n 0.5) along a random angle in the disc plane."""
    angle = params["arm_phase"]  # arms start at the bar ends
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    x = grid.xr * c + grid.yd * s
    y = grid.yd * c - grid.xr * s
    a = params["bar_len_h"] * h
    rb = np.hypot(x / np.float32(a), y / np.float32(a * params["bar_q"]))
    bar = np.exp(-np.maximum(rb, 0) ** 4 * np.float32(2.0))
    return bar * np.float32(0.25 * params["bar"] * disc_flux / bar.sum())


def _arms(params, r, theta, h, rng):
    """Arm modulation of the disc: m arms (amplitude and width varying along each), spurs,
    or many short flocculent segments."""
    radii, psi = _arm_geometry(params, h)
    phase = np.interp(r, radii, psi).astype(np.float32)
    r_in, r_out = params["r_in_h"] * h, params["r_out_h"] * h
    env = (expit((r - r_in) / np.float32(0.2 * h)) * expit((r_out - r) / np.float32(0.3 * h))
           ).astype(np.float32)
    out = np.zeros_like(r)
    m = params["n_arms"]
    lnr = np.log(np.maximum(r, 1e-3) / h)
    if m > 0:
        spacing = 2 * np.pi / m
        width = min(params["arm_width"] * spacing, 0.5)
        for j in range(m):
            # amplitude along the arm: a smooth random walk in ln R (asymmetric arms)
            k = rng.normal(0, 1, 3)
            along = 1 + params["arm_asym"] * (k[0] + np.sin(2.2 * lnr + k[1]) * k[2])
            along = np.clip(along, 0.15, 2.5)
            offset = j * spacing + rng.normal(0, 0.08) * spacing
            d = _wrap(theta - phase - np.float32(params["arm_phase"] + offset))
            w = np.float32(width * rng.uniform(0.8, 1.2))
            out += along.astype(np.float32) * np.exp(-0.5 * (d / w) ** 2)
        for _ in range(params["n_spurs"]):
            out += _segment(params, r, theta, phase, h, rng, pitch_factor=2.2, amp=0.45,
                            width=0.5 * width)
    for _ in range(params["n_segments"]):
        out += _segment(params, r, theta, phase, h, rng, pitch_factor=1.0, amp=1.0,
                        width=rng.uniform(0.15, 0.3))
    return out * env * np.float32(params["arm_amp"])


def _wrap(angle):
    """Angle difference folded into [-pi, pi)."""
    return np.remainder(angle + np.float32(np.pi), np.float32(2 * np.pi)) - np.float32(np.pi)


def _segment(params, r, theta, phase, h, rng, pitch_factor, amp, width):
    """A short arm piece: a spur/feather leaving an arm at a larger pitch, or a flocculent
    fragment (random start and length)."""
    r0 = rng.uniform(params["r_in_h"], params["r_out_h"] * 0.9) * h
    length = rng.uniform(0.3, 0.9) * h
    phi0 = rng.uniform(0, 2 * np.pi)
    # a steeper pitch: the phase advances slower with radius than the arm's
    own = phase / np.float32(pitch_factor)
    d = _wrap(theta - own - np.float32(phi0))
    radial = np.exp(-0.5 * ((r - r0) / np.float32(length)) ** 2)
    return np.float32(amp * rng.uniform(0.5, 1.2)) * radial * np.exp(-0.5 * (d / np.float32(width)) ** 2)


def _dust_lanes(params, r, theta, h):
    """Dust on the inner (trailing-concave) edge of each arm: optical depth in r."""
    if params["n_arms"] == 0:
        return None
    radii, psi = _arm_geometry(params, h)
    phase = np.interp(r, radii, psi).astype(np.float32)
    spacing = 2 * np.pi / params["n_arms"]
    d = _wrap(np.float32(params["n_arms"]) * (theta - phase - np.float32(
        params["arm_phase"] - params["chirality"] * 0.12 * spacing)))
    lane = np.exp(-0.5 * (d / 0.35) ** 2) * expit((3.0 * h - r) / (0.4 * h)) * expit(
        (r - 0.5 * h) / (0.2 * h))
    return (params["dust"] * lane).astype(np.float32)


def _knots(params, grid, h, arm_flux, rng):
    """Point-like star-forming knots along the arms (or scattered in a flocculent disc)."""
    knots = np.zeros((grid.n, grid.n), np.float32)
    n = params["n_knots"]
    if n == 0 or arm_flux <= 0:
        return knots
    r = (params["r_in_h"] + (params["r_out_h"] - params["r_in_h"]) * rng.random(n) ** 1.3) * h
    if params["n_arms"] > 0 and not params["flocculent"]:
        radii, psi = _arm_geometry(params, h)
        arm = rng.integers(0, params["n_arms"], n)
        theta = (params["arm_phase"] + arm * 2 * np.pi / params["n_arms"] + np.interp(r, radii, psi)
                 + rng.normal(0, 0.1, n))
    else:
        theta = rng.uniform(0, 2 * np.pi, n)
    rows, cols = grid.to_pixels(r, theta, params)
    inside = (rows >= 0) & (rows < grid.n) & (cols >= 0) & (cols < grid.n)
    flux = np.exp(-r / h) * rng.lognormal(0, 0.6, n)
    flux *= params["knot_frac"] * arm_flux / max(float(flux[inside].sum()), 1e-12)
    np.add.at(knots, (rows[inside], cols[inside]), flux[inside].astype(np.float32))
    return knots


def _irregular(params, grid, rng):
    h = params["r90_model_arcsec"] / EXP_R90_OVER_H
    shift = params["lopsided"] * h
    angle = rng.uniform(0, 2 * np.pi)
    r = np.hypot(grid.xr - np.float32(shift * np.cos(angle)), grid.yd - np.float32(shift * np.sin(angle)))
    body = np.exp(-r / np.float32(h))
    clumps = np.zeros_like(body)
    for _ in range(params["n_clumps"]):
        cx, cy = rng.normal(0, 1.2 * h, 2)
        size = rng.uniform(0.15, 0.45) * h
        clumps += np.float32(rng.lognormal(0, 0.5)) * np.exp(
            -0.5 * ((grid.xr - cx) ** 2 + (grid.yd - cy) ** 2) / np.float32(size ** 2))
    clumps *= np.float32(params["clump_frac"] / (1 - params["clump_frac"]) * body.sum()
                         / max(clumps.sum(), 1e-12))
    return {"irregular": body + clumps}


def _merger(params, grid, rng):
    """Two overlapping galaxies with tidal tails (the second shifted by sep_r90 x R90)."""
    h = params["r90_model_arcsec"] / EXP_R90_OVER_H / 1.3
    sep = params["sep_r90"] * params["r90_model_arcsec"]
    ox, oy = sep * np.cos(params["sep_angle"]), sep * np.sin(params["sep_angle"])
    light = np.zeros_like(grid.r)
    for sign, flux in ((-0.5, 1.0), (0.5, params["flux_ratio"])):
        x, y = grid.xr - np.float32(sign * ox), grid.yr - np.float32(sign * oy)
        r = np.hypot(x, y)
        body = (1 - params["bt"]) * np.exp(-r / np.float32(h)) + params["bt"] * 8 * _sersic(
            r, 3.0, 0.2 * h)
        # a tidal tail: a long arc leaving the far side
        theta = np.arctan2(y, x)
        d = _wrap(theta - np.log(np.maximum(r, 1e-3) / h) * 1.2
                  - params["sep_angle"] - (np.pi if sign > 0 else 0))
        tail = params["tail_amp"] * 0.3 * np.exp(-0.5 * (d / 0.3) ** 2) * np.exp(-r / (2.5 * h)) * expit(
            (r - h) / (0.3 * h))
        part = (body + tail).astype(np.float32)
        light += part * np.float32(flux / part.sum())
    return {"disc": light}


def _colour_factors(name):
    g_r, r_i = COLOURS[name]
    return np.array([10 ** (-0.4 * g_r), 1.0, 10 ** (0.4 * r_i)], np.float32)


def _stars(params, n_native, r90, rng):
    """Foreground stars: (row, col, g, r, i flux in nanomaggies) in the native cut-out, away
    from the galaxy (a star on it would have been deblended or made the target unusable)."""
    stars = []
    half = (n_native - 1) / 2
    for _ in range(params["n_stars"]):
        row, col = rng.uniform(0, n_native - 1, 2)
        mag, g_r = rng.uniform(15.5, 21.0), rng.uniform(0.3, 1.4)
        if np.hypot(row - half, col - half) * sdss.PIXEL_SCALE < 0.8 * r90:
            continue
        flux = sdss.nmgy(mag) * np.array([10 ** (-0.4 * g_r), 1.0, 10 ** (0.18 * g_r)])
        stars.append((row, col, flux))
    return stars


def _companion(params, grid, rng, r90):
    """A smaller neighbouring galaxy in the frame (g, r, i on the fine grid, nanomaggies)."""
    re = rng.uniform(0.06, 0.15) * r90
    light = _sersic(np.hypot(grid.x, grid.y * np.float32(1 / rng.uniform(0.4, 1))),
                    rng.uniform(1, 4), re)
    total = float(light.sum())
    colour = _colour_factors("bulge" if rng.random() < 0.5 else "disc")
    if total <= 0:
        return None
    light *= np.float32(sdss.nmgy(params["mag_r"] + rng.uniform(1.0, 3.0)) / total)
    return colour[:, None, None] * light[None]


def _psf_kernels(params, scale):
    return [sdss.moffat_kernel(sdss.seeing_in_band(params["psf_fwhm_arcsec"], b),
                               params["psf_beta"], scale) for b in sdss.BANDS]


def _odd(x):
    return int(np.ceil(x)) | 1


def _paste(target, stamp, row, col):
    """Add `stamp` centred on integer pixel (row, col) of `target` (..., H, W), clipped."""
    h, w = stamp.shape[-2:]
    r0, c0 = row - h // 2, col - w // 2
    tr0, tc0 = max(r0, 0), max(c0, 0)
    tr1, tc1 = min(r0 + h, target.shape[-2]), min(c0 + w, target.shape[-1])
    if tr0 < tr1 and tc0 < tc1:
        target[..., tr0:tr1, tc0:tc1] += stamp[..., tr0 - r0:tr1 - r0, tc0 - c0:tc1 - c0]


def observe_galaxy(params, rng):
    """The noiseless galaxy in SDSS's native pixels, after the PSF: ((5, N, N) images in
    nanomaggies: g, r, i with companions and stars, then the galaxy's arm and smooth r light;
    the galaxy's centre (row, col)). `expose` adds the noise.

    The galaxy (and a companion) are modelled on a fine grid only where they have light;
    stars are point sources drawn with the native-pixel PSF; the sky covers the cut-out."""
    r90 = params["r90_model_arcsec"]
    fwhm = params["psf_fwhm_arcsec"]
    # the cut-out: the frame (8.48 R90) of the R90 SDSS will measure (PSF-broadened) + margin
    side = sdss.FRAME_R90_SCALE * params["size"] * np.hypot(r90, fwhm) * 1.12 + 6 * fwhm
    n_native = _odd(side / sdss.PIXEL_SCALE)
    extent = 1.7 if params["kind"] == "merger" else 1.3
    n_gal = min(n_native, _odd((2 * extent * r90 + 6 * fwhm) / sdss.PIXEL_SCALE))
    oversample = 2 if n_gal <= MAX_OVERSAMPLE_PIXELS else 1
    scale = sdss.PIXEL_SCALE / oversample
    grid = _Grid(n_gal * oversample, scale, params)
    comps, tau = _components(params, grid, rng)
    total = sum(float(c.sum()) for c in comps.values())
    norm = np.float32(sdss.nmgy(params["mag_r"]) / total)  # the galaxy's magnitude in r
    fine = np.zeros((5, grid.n, grid.n), np.float32)  # g, r, i, arm light r, smooth light r
    for name, light in comps.items():
        light = light * norm
        colour = _colour_factors(name)
        for b, band in enumerate(sdss.BANDS):
            part = light * colour[b]
            if tau is not None:
                part *= np.exp(-tau * np.float32(DUST_TAU_RATIO[band]))
            fine[b] += part
            if band == "r":
                fine[3 if name in ("arms", "knots") else 4] += part
    kernels = _psf_kernels(params, scale)
    galaxy = sdss.observe(fine, kernels + [kernels[1], kernels[1]], oversample)
    native = np.zeros((5, n_native, n_native), np.float32)
    _paste(native, galaxy, n_native // 2, n_native // 2)
    if params["companion"]:
        n_comp = min(n_native, _odd(1.0 * r90 / sdss.PIXEL_SCALE + 6 * fwhm / sdss.PIXEL_SCALE))
        dist, angle = rng.uniform(1.3, 3.2) * r90, rng.uniform(0, 2 * np.pi)
        row = round(n_native // 2 + dist * np.sin(angle) / sdss.PIXEL_SCALE)
        col = round(n_native // 2 + dist * np.cos(angle) / sdss.PIXEL_SCALE)
        cgrid = _Grid(n_comp, sdss.PIXEL_SCALE, {"pa_deg": 0.0, "dx_arcsec": 0.0,
                                                 "dy_arcsec": 0.0})
        light = _companion(params, cgrid, rng, r90)
        if light is not None:
            native_kernels = _psf_kernels(params, sdss.PIXEL_SCALE)
            _paste(native[:3], sdss.observe(light, native_kernels, 1), row, col)
    stars = _stars(params, n_native, r90, rng)
    if stars:
        native_kernels = _psf_kernels(params, sdss.PIXEL_SCALE)
        for row, col, flux in stars:
            for b in range(3):
                _paste(native[b], native_kernels[b] * np.float32(flux[b]), int(row), int(col))
    centre = ((n_native - 1) / 2 + params["dy_arcsec"] / sdss.PIXEL_SCALE,
              (n_native - 1) / 2 + params["dx_arcsec"] / sdss.PIXEL_SCALE)
    return native, centre


def expose(images, params, rng, block=1):
    """Sky and source noise of the 53.9 s exposures on the g, r, i images (the first three of
    `images`, in place), whose pixels are means of block x block native pixels."""
    sky = [params[f"sky_{b}"] for b in sdss.BANDS]
    sdss.add_noise(images[:3], sky, rng, pixels=block * block)
    return images


def measure_r90(image, centre, scale=sdss.PIXEL_SCALE):
    """Radius (arcsec) of the circle about `centre` holding 90 % of `image`'s light (a
    noiseless galaxy image), from its curve of growth in 0.25 px steps."""
    n = image.shape[0]
    rows, cols = np.ogrid[:n, :n]
    radius = np.hypot(rows - centre[0], cols - centre[1])
    bins = (radius * 4).astype(np.int64).ravel()
    growth = np.cumsum(np.bincount(bins, weights=image.ravel()))
    growth /= growth[-1]
    k = int(np.searchsorted(growth, 0.9))
    return (k + 1) / 4 * scale


def _visibility(components, centre, r90, sigma_r):
    """arm_snr: what a volunteer can see of the arms, measured on the rendered r band.

    The arm light above the disc along the arm ridges (the brightest quarter of the arm-light
    pixels between 0.3 and 1.0 R90), per native pixel, over the pixel noise there (sky plus the
    source's own Poisson noise)."""
    arms, smooth = components
    n = arms.shape[0]
    rows, cols = np.ogrid[:n, :n]
    radius = np.hypot(rows - centre[0], cols - centre[1]) * sdss.PIXEL_SCALE
    annulus = (radius > 0.3 * r90) & (radius < r90)
    values = arms[annulus]
    if not annulus.any() or values.max() <= 0:
        return 0.0
    ridge = values >= np.quantile(values, 0.75)
    var = sigma_r ** 2 + (values[ridge] + smooth[annulus][ridge]) / sdss.electrons_per_nmgy("r")
    return float(np.median(values[ridge] / np.sqrt(var)))


def render_from_params(params, rng, masks=False, bands_out=None):
    """Render the galaxy described by `params` to a uint8 RGB frame (`rng`: everything drawn
    while rendering: arm details, knots, stars, noise).

    Adds the measured `r90_arcsec`, `frame_scale_arcsec`, `arm_snr`, `psf_arm_spacings` and
    `sky_sigma_r` to `params`. With `masks`, returns (image, mask): the (size, size) uint8
    labels of `galaxy_mask`. `bands_out` (a dict), if given, receives the linear frame bands
    ("g", "r", "i", nanomaggies per native pixel) and the noiseless "arms" and "smooth" r light.
    """
    native, centre = observe_galaxy(params, rng)
    r90 = measure_r90(native[3] + native[4], centre)
    frame_scale = sdss.FRAME_R90_SCALE * r90
    sigma_r = sdss.sky_sigma_nmgy("r", params["sky_r"])
    params["r90_arcsec"] = r90
    params["frame_scale_arcsec"] = frame_scale
    params["sky_sigma_r"] = sigma_r
    params["arm_snr"] = _visibility(native[3:], centre, r90, sigma_r)
    m = params["n_arms"] if params["n_arms"] else (8 if params.get("flocculent") else 0)
    params["psf_arm_spacings"] = (params["psf_fwhm_arcsec"] / (2 * np.pi * 0.5 * r90 / m)
                                  if m else 0.0)
    # a frame pixel coarser than the camera's: average blocks of native pixels first (and draw
    # the noise of the averages: the same statistics, block^2 fewer draws)
    block = max(1, int(frame_scale / sdss.PIXEL_SCALE))
    native, centre = sdss.bin_blocks(native, centre, block)
    expose(native, params, rng, block)
    keep = 5 if bands_out is not None else 3
    frame = sdss.to_frame(native[:keep], centre, frame_scale, params["size"],
                          pixel_scale=block * sdss.PIXEL_SCALE)
    image = sdss.composite(frame[0], frame[1], frame[2])
    if bands_out is not None:
        bands_out.update(zip(("g", "r", "i", "arms", "smooth"), frame))
    if not masks:
        return image
    # labels in the camera's (binned) pixels, then sampled at the frame's pixels
    label = galaxy_mask(native[3], native[4], sigma_r / block)
    return image, sdss.nearest_frame(label, centre, frame_scale, params["size"],
                                     pixel_scale=block * sdss.PIXEL_SCALE)


# ---------------------------------------------------------------- arm and galaxy masks

# Label values of a mask (a 2-bit palette PNG in the dataset's masks.zip): 0 sky, 1 galaxy
# off the arms, 2 arm; galaxy = label >= 1, arms = label == 2.
MASK_SKY, MASK_GALAXY, MASK_ARM = 0, 1, 2
GALAXY_SKY_SIGMAS = 2.0  # galaxy: its light >= 2 sky sigma (per native pixel)
ARM_SKY_SIGMAS = 2.0     # arm: the arm light >= 2 sky sigma ...
ARM_CONTRAST = 0.5       # ... and >= half the smooth (disc, bulge, bar) light under it


def galaxy_mask(arms, smooth, sky_sigma):
    """Label image (MASK_SKY / MASK_GALAXY / MASK_ARM) of a frame from its noiseless r light.

    `arms` is the arm light (arms, spurs, flocculent segments and knots) and `smooth` the rest
    of the galaxy (disc, bulge, bar, rings), both PSF-blurred, in (block-averaged) native
    pixels;
    `sky_sigma` the sky noise per pixel. A pixel is *galaxy* where all the galaxy's light
    reaches GALAXY_SKY_SIGMAS sky sigma, and *arm* where the arm light alone reaches
    ARM_SKY_SIGMAS sky sigma and ARM_CONTRAST of the smooth light under it: where an arm stands
    out of the sky and of the disc. Bars are smooth light, never arms; stars and companions
    are sky; ellipticals, edge-on discs, irregulars and mergers have no arm pixels.
    """
    sky = np.float32(sky_sigma)
    galaxy = arms + smooth >= GALAXY_SKY_SIGMAS * sky
    arm = (arms >= ARM_SKY_SIGMAS * sky) & (arms >= np.float32(ARM_CONTRAST) * smooth) & galaxy
    return galaxy.view(np.uint8) + arm.view(np.uint8)
