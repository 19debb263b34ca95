"""Errors raised while fetching the pipeline's inputs; each message names what failed and how to fix it."""


class AcquireError(RuntimeError):
    """Base class: an input could not be fetched or unpacked."""


class DownloadError(AcquireError):
    """An HTTP download failed (status, connection or size).

    `resumable` is True when the partial file was kept so that a rerun continues from it.
    """

    def __init__(self, message: str, resumable: bool = False):
        super().__init__(message)
        self.resumable = resumable


class ChecksumError(DownloadError):
    """A downloaded file does not have the expected SHA-256."""


class UnsafeArchiveError(AcquireError):
    """An archive member would land outside the destination, or the archive is too large."""


class KaggleCredentialsError(AcquireError):
    """No Kaggle credentials were found, or Kaggle rejected them."""


class KaggleDownloadError(AcquireError):
    """The Kaggle API failed to deliver a dataset."""


class GDriveError(AcquireError):
    """A Google Drive id or URL could not be parsed or downloaded."""
