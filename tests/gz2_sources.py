"""Every remote source of the real pipeline, in its real format, for a small synthetic sample.

`build_gz2_sources(folder)` renders a few galaxies with the project's synthetic generator
(src/spiralarms/synthetic/generate.py, the `synthesize` rule's code) and packs them the way they are
published:
- `zoo2MainSpecz.csv.gz` (Zooniverse S3) and `gz2_filename_mapping.csv` (Zenodo), as rendered;
- `galaxy-zoo-2-images.zip`: the Kaggle dataset jaimetrickz/galaxy-zoo-2-images, members
  `images_gz2/images/<asset_id>.jpg` (serve it with tests/kaggle_server.py);
- `stellar mass_SFR.7z` holding `stellar mass_SFR.csv` (specObjID, LGM_TOT_P50, sfr_tot_p50), as in
  the original repository, served under GitHub's raw path with the `%20` in its name.

    sources = build_gz2_sources(tmp_path / "gz2")
    with FileServer(sources.http_files()) as web:
        kaggle_server.add_dataset(KAGGLE_DATASET, sources.images_zip)
        data = sources.data_config(web)      # config `data:` for these URLs, with sha256s
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import py7zr
from kaggle_server import images_zip

from spiralarms.synthetic import generate
from spiralarms.synthetic.physical import write_physical

KAGGLE_DATASET = "jaimetrickz/galaxy-zoo-2-images"
CATALOG_NAME = generate.CATALOG_FILE  # zoo2MainSpecz.csv.gz
MAPPING_NAME = generate.MAPPING_FILE  # gz2_filename_mapping.csv
IMAGES_ZIP_NAME = "galaxy-zoo-2-images.zip"
PHYSICAL_ARCHIVE_NAME = "stellar mass_SFR.7z"
PHYSICAL_MEMBER = "stellar mass_SFR.csv"
# URL paths as a client sends them (the real hosts' paths, on the test server)
CATALOG_URL_PATH = f"galaxy-zoo-2/{CATALOG_NAME}"
MAPPING_URL_PATH = f"record/3565489/files/{MAPPING_NAME}"
PHYSICAL_URL_PATH = "mmmmmmwei/galaxy-spiralarm-classifier/raw/main/stellar%20mass_SFR.7z"


@dataclass(frozen=True)
class GZ2Sources:
    folder: Path  # sources/ (what is served) and synthetic/ (the rendering, truth.csv)
    catalog: Path
    mapping: Path
    images_zip: Path
    physical_archive: Path
    physical_csv: Path  # the CSV that went into the archive, for comparisons
    truth: Path  # per galaxy: asset_id, dr7objid, kind, arm_class, has_image, ...
    n_galaxies: int
    n_images: int  # JPEGs in the zip (the mapping lists n_galaxies; some images are missing)

    def http_files(self) -> dict[str, bytes]:
        """Catalogue, mapping and 7z for tests/httpserver.FileServer, keyed by URL path."""
        return {
            CATALOG_URL_PATH: self.catalog.read_bytes(),
            MAPPING_URL_PATH: self.mapping.read_bytes(),
            PHYSICAL_URL_PATH: self.physical_archive.read_bytes(),
        }

    def data_config(self, web, images: str = f"kaggle:{KAGGLE_DATASET}") -> dict:
        """The config's `data:` entries for these sources served by `web` (a FileServer)."""
        return {
            "catalog": web.url(CATALOG_URL_PATH),
            "catalog_sha256": sha256_of(self.catalog),
            "mapping": web.url(MAPPING_URL_PATH),
            "mapping_sha256": sha256_of(self.mapping),
            "images": images,
            "physical": web.url(PHYSICAL_URL_PATH),
            "physical_sha256": sha256_of(self.physical_archive),
        }


def build_gz2_sources(
    folder: str | os.PathLike,
    # the paper's cuts keep ~50-80 % of each class of the SDSS-like sky: >= 3 per class left
    per_class: tuple[int, ...] = (7, 7, 7, 8, 9, 6),
    ellipticals: int = 2,
    edgeon: int = 2,
    missing_images: int = 1,
    seed: int = 7,
    size: int = 424,
    workers: int = 1,
) -> GZ2Sources:
    """Render `per_class` galaxies per arm class (plus cut-out ellipticals and edge-ons) and
    write the published files for them under `folder/sources` (about 3 s for the default 48)."""
    folder = Path(folder)
    rendered, sources = folder / "synthetic", folder / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    summary = generate.synthesize(rendered, list(per_class), ellipticals, edgeon, seed=seed,
                                   n_missing_images=missing_images, workers=workers,
                                   progress=False, size=size)
    catalog = Path(shutil.copyfile(rendered / CATALOG_NAME, sources / CATALOG_NAME))
    mapping = Path(shutil.copyfile(rendered / MAPPING_NAME, sources / MAPPING_NAME))
    zipped = sources / IMAGES_ZIP_NAME
    zipped.write_bytes(images_zip(rendered / generate.IMAGE_DIR))
    physical_csv = rendered / PHYSICAL_MEMBER
    write_physical(rendered, physical_csv, seed=seed)
    archive = sources / PHYSICAL_ARCHIVE_NAME
    write_7z(archive, {PHYSICAL_MEMBER: physical_csv.read_bytes()})
    return GZ2Sources(folder, catalog, mapping, zipped, archive, physical_csv,
                      rendered / generate.TRUTH_FILE, summary["n_galaxies"], summary["n_images"])


def write_7z(path: str | os.PathLike, members: dict[str, bytes]) -> Path:
    """A 7z archive (py7zr's default LZMA2) with `members` (name -> bytes)."""
    with py7zr.SevenZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return Path(path)


def sha256_of(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
