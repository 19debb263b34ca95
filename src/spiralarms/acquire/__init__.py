"""Fetch the pipeline's inputs: HTTP downloads, the Kaggle image set, Google Drive files, archives.

Config values (`data.catalog`, `data.mapping`, `data.images`, `data.physical`) are a local path, an
http(s) URL or `kaggle:<owner>/<dataset>`; `planned_path` says where the download rules put them
(`image_folder`: where the images of a Kaggle dataset or a zip URL are unpacked);
`physical_csv` takes the CSV out of the physical-properties archive (`stellar mass_SFR.7z`).
"""

from spiralarms.acquire.archive import safe_extract
from spiralarms.acquire.errors import (
    AcquireError,
    ChecksumError,
    DownloadError,
    GDriveError,
    KaggleCredentialsError,
    KaggleDownloadError,
    UnsafeArchiveError,
)
from spiralarms.acquire.gdrive import fetch_gdrive, gdrive_file_id
from spiralarms.acquire.http import download, manifest_path_for, read_manifest, sha256_of
from spiralarms.acquire.images import (
    check_image_count,
    extract_images,
    find_image_folder,
    run_extract_images,
)
from spiralarms.acquire.kaggle import (
    fetch_kaggle,
    fetch_kaggle_images,
    find_kaggle_credentials,
    parse_kaggle_spec,
    run_fetch_images,
)
from spiralarms.acquire.physical import physical_csv
from spiralarms.acquire.sources import (
    RemoteSource,
    download_name,
    image_folder,
    planned_path,
    remote_sources,
)

__all__ = [
    "AcquireError",
    "ChecksumError",
    "DownloadError",
    "GDriveError",
    "KaggleCredentialsError",
    "KaggleDownloadError",
    "RemoteSource",
    "UnsafeArchiveError",
    "check_image_count",
    "download",
    "download_name",
    "extract_images",
    "fetch_gdrive",
    "fetch_kaggle",
    "fetch_kaggle_images",
    "find_image_folder",
    "find_kaggle_credentials",
    "gdrive_file_id",
    "image_folder",
    "manifest_path_for",
    "parse_kaggle_spec",
    "physical_csv",
    "planned_path",
    "read_manifest",
    "remote_sources",
    "run_extract_images",
    "run_fetch_images",
    "safe_extract",
    "sha256_of",
]
