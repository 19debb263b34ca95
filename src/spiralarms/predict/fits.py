"""FITS cut-outs as model input: astropy reads them, a stretch maps the data to [0, 1].

What happens to a FITS file, in order (every choice is a key of `FitsOptions`, set in the config's
`predict.<name>.fits` or with the `--fits-*` flags of `spiralarms predict`):

1. **HDU**: `hdu` (an index or an EXTNAME); by default the first HDU holding image data, so both
   Zoobot's layout (data in the primary HDU) and survey files with an empty primary HDU work.
2. **Bands**: a 2-D image is one band; a cube is (band, y, x). `bands` lists the planes to use:
   one plane gives a greyscale image, three give RGB in the order listed (R, G, B), e.g.
   `[2, 1, 0]` for a g, r, z cube. By default a cube of 1 or 3 planes is used as it is; any other
   plane count needs `bands`. Leading axes of length 1 are dropped.
3. **NaN and inf** (masked or missing pixels) take the interval's low value, i.e. black sky;
   they play no part in the interval. A file with no finite pixel is skipped.
4. **Interval** (data values mapped to 0 and 1), over the chosen bands together so colours keep
   their ratios: `low`/`high` when given (data units), else the `percentiles` of the finite
   pixels (default 0.5 and 99.5); `stretch: zscale` uses IRAF's zscale interval instead
   (astropy `ZScaleInterval`). x = clip((value - low) / (high - low), 0, 1).
5. **Stretch**: `asinh` (default): y = asinh(x / a) / asinh(1 / a) (astropy `AsinhStretch`; `a`,
   default 0.1, is where the stretch turns from linear to logarithmic: smaller brings out fainter
   outskirts, i.e. spiral arms, at the cost of a brighter noise floor); `linear` and `zscale`: y = x.
6. **Orientation**: FITS row 0 is the bottom of the image; rows are flipped so the array is the
   picture as DS9 shows it (and as a JPEG cut-out of the same sky is stored).

The result (float32 height x width x 3, equal channels for one band) then gets exactly the
training preprocessing (`images.preprocess`), framing included (see `predict`).
Galaxy Zoo's own loader (galaxy-datasets) reads HDU 0 as float32 with no stretch and leaves the
arcsinh stretch and the scaling to [0, 1] to the user: this module is that step.
"""

from dataclasses import asdict, dataclass, fields

import numpy as np

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz")
STRETCHES = ("asinh", "linear", "zscale")


class SkipImage(Exception):
    """An input that cannot become a model input: `code` (a short key for counting) and a
    plain-words `reason`."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class FitsOptions:
    hdu: int | str | None = None
    bands: tuple | None = None
    stretch: str = "asinh"
    asinh_a: float = 0.1
    percentiles: tuple = (0.5, 99.5)
    low: float | None = None
    high: float | None = None

    def __post_init__(self):
        if self.stretch not in STRETCHES:
            raise ValueError(f"fits stretch {self.stretch!r} is not one of {list(STRETCHES)}")
        if self.bands is not None:
            object.__setattr__(self, "bands", tuple(int(b) for b in self.bands))
            if len(self.bands) not in (1, 3) or min(self.bands) < 0:
                raise ValueError(f"fits bands {list(self.bands)}: give 1 plane (greyscale) or 3 "
                                 "(R, G, B), as 0-based plane numbers of the cube")
        object.__setattr__(self, "percentiles", tuple(float(p) for p in self.percentiles))
        low_p, high_p = self.percentiles
        if not 0 <= low_p < high_p <= 100:
            raise ValueError(f"fits percentiles {list(self.percentiles)}: need 0 <= low < high "
                             "<= 100")
        if not self.asinh_a > 0:
            raise ValueError(f"fits asinh_a must be > 0, got {self.asinh_a}")
        if self.low is not None and self.high is not None and not self.high > self.low:
            raise ValueError(f"fits high ({self.high}) must be above low ({self.low})")

    @classmethod
    def from_dict(cls, settings: dict | None) -> "FitsOptions":
        settings = dict(settings or {})
        unknown = set(settings) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fits options {sorted(unknown)}; known: "
                             f"{[f.name for f in fields(cls)]}")
        return cls(**{k: v for k, v in settings.items() if v is not None})

    def as_dict(self) -> dict:
        out = asdict(self)
        out["bands"] = None if self.bands is None else list(self.bands)
        out["percentiles"] = list(self.percentiles)
        return out


def is_fits(path) -> bool:
    return str(path).lower().endswith(FITS_SUFFIXES)


def read_fits(path, options: FitsOptions = FitsOptions()) -> tuple[np.ndarray, str]:
    """float32 (height, width, 3) in [0, 1] and a mode such as 'FITS 1 band' or
    'FITS bands 2,1,0'. Raises SkipImage with a plain reason for files it cannot use."""
    planes, label = read_planes(path, options)
    return to_rgb(stretch(planes, options)), label


def read_planes(path, options: FitsOptions = FitsOptions()) -> tuple[np.ndarray, str]:
    """The chosen bands as float32 (bands, height, width), flipped to display orientation."""
    from astropy.io import fits

    try:
        hdus = fits.open(path, memmap=False, lazy_load_hdus=False)
    except FileNotFoundError as error:
        raise SkipImage("missing_file", f"file not found: {path}") from error
    except Exception as error:
        raise SkipImage("unreadable", f"not a readable FITS file ({_message(error)})") from error
    with hdus:
        try:
            data, where = _image_data(hdus, options.hdu, path)
            data = np.asarray(data, dtype=np.float32)  # native order, BZERO/BSCALE applied
        except SkipImage:
            raise
        except Exception as error:
            raise SkipImage("unreadable", f"FITS data could not be read ({_message(error)})") \
                from error
    while data.ndim > 2 and data.shape[0] == 1 and options.bands is None:
        data = data[0]
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise SkipImage("bad_bands", f"{where} holds a {data.ndim}-D array {data.shape}; "
                                     "expected an image (y, x) or a cube (band, y, x)")
    bands = options.bands
    if bands is None:
        if data.shape[0] not in (1, 3):
            raise SkipImage("bad_bands", f"{where} has {data.shape[0]} bands; choose 1 or 3 of "
                                         "them with fits.bands (--fits-bands), e.g. 2,1,0")
        bands = tuple(range(data.shape[0]))
    elif max(bands) >= data.shape[0]:
        raise SkipImage("bad_bands", f"fits.bands {list(bands)} asks for plane {max(bands)} but "
                                     f"{where} has {data.shape[0]} plane(s)")
    planes = data[list(bands), ::-1, :]  # FITS row 0 is the bottom row
    if len(bands) == 1:
        label = "FITS 1 band"
    else:
        label = "FITS bands " + ",".join(map(str, bands))
    return planes, label


def _image_data(hdus, hdu, path):
    names = ", ".join(f"{i}:{h.name}" for i, h in enumerate(hdus))
    if hdu is None:
        for i, item in enumerate(hdus):
            if _has_image(item):
                return item.data, f"HDU {i}"
        raise SkipImage("no_image_data", f"no HDU of this FITS file holds image data "
                                         f"(HDUs {names}); is it a table or a header only?")
    try:
        item = hdus[hdu]
    except (KeyError, IndexError) as error:
        raise SkipImage("no_image_data", f"FITS file has no HDU {hdu!r} (HDUs {names})") \
            from error
    if not _has_image(item):
        others = [i for i, h in enumerate(hdus) if _has_image(h)]
        hint = f"; HDU {others[0]} holds an image" if others else ""
        raise SkipImage("no_image_data", f"HDU {hdu!r} holds no image data{hint}")
    return item.data, f"HDU {hdu!r}"


def _has_image(item) -> bool:
    from astropy.io import fits

    if not isinstance(item, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
        return False
    shape = item.shape if hasattr(item, "shape") else ()
    return item.header.get("NAXIS", 0) >= 2 and len(shape) >= 2 and min(shape) > 0


def interval(finite: np.ndarray, options: FitsOptions) -> tuple[float, float]:
    """(low, high) in data units, from the finite pixels of all bands together."""
    if not finite.size:
        raise SkipImage("no_finite_pixels", "every pixel is NaN or infinite")
    if options.stretch == "zscale" and (options.low is None or options.high is None):
        from astropy.visualization import ZScaleInterval

        low, high = ZScaleInterval().get_limits(finite)
    elif options.low is None or options.high is None:
        low, high = np.percentile(finite, options.percentiles)
    else:
        low, high = options.low, options.high
    low = low if options.low is None else options.low
    high = high if options.high is None else options.high
    if not high > low:
        low, high = finite.min(), finite.max()  # fall back to the full range
    if not high > low:
        raise SkipImage("blank", f"blank image: every finite pixel is {low:g}")
    return float(low), float(high)


def stretch(planes: np.ndarray, options: FitsOptions = FitsOptions()) -> np.ndarray:
    """float32 (bands, y, x) in [0, 1]: interval, NaN/inf to low, then the stretch."""
    from astropy.visualization import AsinhStretch

    planes = np.asarray(planes, np.float32)
    good = np.isfinite(planes)
    every = bool(good.all())
    low, high = interval(planes.ravel() if every else planes[good], options)
    values = planes - np.float32(low) if every else np.where(good, planes - np.float32(low), 0)
    values *= np.float32(1.0 / (high - low))
    np.clip(values, 0.0, 1.0, out=values)
    if options.stretch == "asinh":
        values = AsinhStretch(a=options.asinh_a)(values, clip=False, out=values)
    return values.astype(np.float32, copy=False)


def to_rgb(planes: np.ndarray) -> np.ndarray:
    """(1 or 3, y, x) -> (y, x, 3): one band becomes three equal channels."""
    image = np.moveaxis(planes, 0, -1)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image, dtype=np.float32)


def _message(error) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]
