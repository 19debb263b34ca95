"""The SDSS imaging camera as the Galaxy Zoo 2 cut-outs saw it: bands, PSF, photometry, noise,
the SkyServer frame and its colour composite. Every number's source is in docs/synthetic-sky.md.

Fluxes are in nanomaggies (SDSS's linear unit: m = 22.5 - 2.5 log10 f). A cut-out goes
`observe` (PSF convolution on the fine model grid, then integration into 0.396" pixels, then sky
and source Poisson noise in electrons of a 53.9 s exposure) -> `to_frame` (the 424 px GZ2
frame at 0.02 R90 arcsec/px) -> `composite` (Lupton et al. 2004 asinh colour, i r g as R G B).
"""

import numpy as np
from scipy.signal import fftconvolve

PIXEL_SCALE = 0.396          # arcsec per native pixel (Stoughton et al. 2002)
EXPOSURE_S = 53.907456       # effective exposure per band (drift scan)
BANDS = ("g", "r", "i")
WAVELENGTH_NM = {"g": 477.0, "r": 623.1, "i": 762.5}  # effective wavelengths (Fukugita+96)
# Photometric zero point aa, extinction kk per airmass and gain (e-/DN): typical tsField values
# (SDSS DR7 flux calibration page; gains: camcol-averaged, SDSS DR7 camera documentation).
ZERO_POINT_AA = {"g": -24.4, "r": -24.0, "i": -23.6}
EXTINCTION_KK = {"g": 0.17, "r": 0.10, "i": 0.06}
AIRMASS = 1.2
GAIN = {"g": 3.85, "r": 4.72, "i": 5.15}
READ_NOISE_E = 5.0           # per pixel (Gunn et al. 1998: ~5 e- for most chips)
# Dark-sky surface brightness, mag/arcsec^2 (SDSS imaging documentation; r 20.9 in the brief)
SKY_MAG = {"g": 21.9, "r": 20.9, "i": 20.3}
SEEING_MEDIAN_R = 1.4        # PSF FWHM in r, arcsec; fields span about 1.0-2.0
SEEING_RANGE = (1.0, 2.0)
MOFFAT_BETA = (2.5, 4.5)

# The GZ2 frame: 424 px at 0.02 x petroR90_r arcsec/px (Willett et al. 2013)
FRAME_PX = 424
FRAME_R90_SCALE = 0.02
# Lupton et al. (2004) composite of SDSS frames in nanomaggies (astropy's SDSS example)
LUPTON_Q = 10.0
LUPTON_STRETCH = 0.5
# per-band weights before the stretch, as the SDSS layer of the Legacy Surveys viewer does
# (legacysurvey/imagine `sdss_rgb`): g brightened against i so discs are not all orange
BAND_WEIGHTS = {"g": 2.5, "r": 1.5, "i": 1.0}
# the band images are per native pixel; the composite takes them per 0.396" pixel
JPEG_QUALITY = 75  # ImgCutout's .NET encoder default (an assumption: see docs)


def counts_per_nmgy(band):
    """DN per nanomaggy in one 53.9 s exposure (photometric solution aa, kk at AIRMASS)."""
    return EXPOSURE_S * 1e-9 / 10 ** (0.4 * (ZERO_POINT_AA[band] + EXTINCTION_KK[band] * AIRMASS))


def electrons_per_nmgy(band):
    return counts_per_nmgy(band) * GAIN[band]


def nmgy(mag):
    return 10 ** (-0.4 * (np.asarray(mag, dtype=float) - 22.5))


def sky_nmgy_per_pixel(sky_mag):
    """Sky flux of one native pixel for a sky of `sky_mag` mag/arcsec^2."""
    return nmgy(sky_mag) * PIXEL_SCALE ** 2


def sky_sigma_nmgy(band, sky_mag):
    """Noise of an empty native pixel, nanomaggies (sky Poisson noise plus read noise)."""
    e_per = electrons_per_nmgy(band)
    sky_e = sky_nmgy_per_pixel(sky_mag) * e_per
    return float(np.sqrt(sky_e + READ_NOISE_E ** 2) / e_per)


def seeing_in_band(fwhm_r, band):
    """Kolmogorov seeing scales as wavelength^-1/5: slightly wider in g, narrower in i."""
    return fwhm_r * (WAVELENGTH_NM[band] / WAVELENGTH_NM["r"]) ** -0.2


def draw_conditions(rng):
    """Seeing (r FWHM, Moffat beta) and sky brightness of the field that imaged the galaxy."""
    fwhm = float(np.clip(SEEING_MEDIAN_R * np.exp(rng.normal(0, 0.16)), *SEEING_RANGE))
    sky_offset = rng.normal(0, 0.15)  # moon, airglow and zodiacal light move all bands
    return {"psf_fwhm_arcsec": fwhm, "psf_beta": float(rng.uniform(*MOFFAT_BETA)),
            **{f"sky_{b}": SKY_MAG[b] + sky_offset for b in BANDS}}


# ---------------------------------------------------------------- PSF

def moffat_kernel(fwhm, beta, scale):
    """Moffat PSF sampled on the fine model grid of `scale` arcsec (normalised, odd size, to
    2.5 FWHM each side): GalSim's `Moffat.drawImage` (~0.5 ms). Sampled, not pixel-integrated:
    `observe` integrates into the native pixels itself."""
    import galsim

    n = 2 * int(np.ceil(2.5 * fwhm / scale)) + 1
    kernel = galsim.Moffat(beta=beta, fwhm=fwhm).drawImage(nx=n, ny=n, scale=scale,
                                                          method="no_pixel").array
    return (kernel / kernel.sum()).astype(np.float32)


def observe(fine, kernels, oversample):
    """PSF-convolve (C, N, N) fine-grid images (each with its kernel), then integrate them
    into native pixels (sum of oversample x oversample fine pixels): (C, N/o, N/o)."""
    blurred = np.stack([fftconvolve(image, kernel, mode="same")
                        for image, kernel in zip(fine, kernels)]).astype(np.float32)
    c, n, _ = blurred.shape
    o = oversample
    return blurred.reshape(c, n // o, o, n // o, o).sum(axis=(2, 4))


def add_noise(bands_nmgy, sky_mags, rng, pixels=1):
    """Sky-subtracted images with sky and source Poisson noise and read noise (in place).

    Counts are electrons of one 53.9 s exposure; with >= ~600 sky electrons in every pixel
    the Poisson distribution is Gaussian with variance = mean to well under 1 %, so it is
    drawn as such (faster). Each image pixel is the mean of `pixels` native pixels (variance
    / pixels). The result is back in nanomaggies."""
    for k, band in enumerate(BANDS):
        e_per = electrons_per_nmgy(band)
        sky_e = sky_nmgy_per_pixel(sky_mags[k]) * e_per
        variance = (np.maximum(bands_nmgy[k], 0) * np.float32(e_per) + np.float32(
            sky_e + READ_NOISE_E ** 2)) * np.float32(1 / pixels)
        noise = _unit_noise(variance.shape, rng)
        noise *= np.sqrt(variance) * np.float32(1 / e_per)
        bands_nmgy[k] += noise
    return bands_nmgy


_NOISE_BANK = None


def _unit_noise(shape, rng):
    """Unit Gaussian noise of `shape`: a random window (and sign) of a fixed 1024^2 block drawn
    once per process, ~5x cheaper than fresh draws; fresh draws for larger shapes."""
    global _NOISE_BANK
    if shape[0] > 1024 or shape[1] > 1024:
        return rng.standard_normal(shape, dtype=np.float32)
    if _NOISE_BANK is None:
        _NOISE_BANK = np.random.default_rng(20_161_015).standard_normal((1024, 1024),
                                                                        dtype=np.float32)
    y0, x0 = rng.integers(0, 1025 - shape[0]), rng.integers(0, 1025 - shape[1])
    window = _NOISE_BANK[y0:y0 + shape[0], x0:x0 + shape[1]]
    return window * np.float32(rng.choice([-1.0, 1.0]))


# ---------------------------------------------------------------- the GZ2 frame

def _interpolation(n_out, n_in, centre, step):
    """Bilinear sampling along one axis: output pixel k reads input coordinate
    centre + (k - (n_out - 1) / 2) * step (clamped to the edge) from pixels low and low + 1
    with weights 1 - frac and frac."""
    coord = np.clip(centre + (np.arange(n_out) - (n_out - 1) / 2) * step, 0, n_in - 1)
    low = np.minimum(np.floor(coord).astype(int), n_in - 2)
    return low, (coord - low).astype(np.float32)


def bin_blocks(native, centre, block):
    """Means of block x block native pixels of (C, N, N) images, and the centre (row, col) in
    the binned pixels (block 1: unchanged)."""
    if block <= 1:
        return native, centre
    c, n, _ = native.shape
    m = n // block
    binned = native[:, :m * block, :m * block].reshape(c, m, block, m, block).mean(axis=(2, 4))
    return binned, ((centre[0] + 0.5) / block - 0.5, (centre[1] + 0.5) / block - 0.5)


def to_frame(native, centre, frame_scale, size=FRAME_PX, pixel_scale=PIXEL_SCALE):
    """Resample (C, N, N) images of `pixel_scale` arcsec/px (per-pixel values) to
    (C, size, size) at `frame_scale` arcsec/px around pixel coordinate `centre` (row, col):
    bilinear interpolation (separable: rows, then columns), after averaging blocks of pixels when a
    frame pixel is coarser (large galaxies), as the SkyServer cut-outs interpolate between
    zoom levels of binned images."""
    native, centre = bin_blocks(native, centre, max(1, int(frame_scale / pixel_scale)))
    step = frame_scale / pixel_scale / max(1, int(frame_scale / pixel_scale))
    n = native.shape[1]
    low, frac = _interpolation(size, n, centre[0], step)
    frac = frac[:, None]
    rows = native[:, low] * (1 - frac) + native[:, low + 1] * frac
    low, frac = _interpolation(size, n, centre[1], step)
    return rows[:, :, low] * (1 - frac) + rows[:, :, low + 1] * frac


def nearest_frame(labels, centre, frame_scale, size=FRAME_PX, pixel_scale=PIXEL_SCALE):
    """A (N, N) label image sampled at the frame's pixel centres (nearest pixel; the frame
    geometry of `to_frame` without its block averaging)."""
    step = frame_scale / pixel_scale
    n = labels.shape[0]
    axis = np.arange(size) - (size - 1) / 2
    rows = np.clip(np.rint(centre[0] + axis * step), 0, n - 1).astype(int)
    cols = np.clip(np.rint(centre[1] + axis * step), 0, n - 1).astype(int)
    return labels[np.ix_(rows, cols)]


def composite(g, r, i):
    """Lupton et al. (2004) asinh colour composite of the bands weighted by BAND_WEIGHTS,
    i r g -> R G B, uint8: astropy's `make_lupton_rgb` (~11 ms for a 424 frame)."""
    from astropy.visualization import make_lupton_rgb

    w = BAND_WEIGHTS
    with np.errstate(invalid="ignore", divide="ignore"):  # its f(I)/I where I = 0 (masked)
        return make_lupton_rgb(i * np.float32(w["i"]), r * np.float32(w["r"]),
                               g * np.float32(w["g"]), minimum=0, stretch=LUPTON_STRETCH,
                               Q=LUPTON_Q)
