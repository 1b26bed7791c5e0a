"""Blob storage behind one Protocol; the backend is chosen by the scheme of REGISTRY_STORAGE_URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from app.errors import ConfigurationError
from app.settings import Settings
from app.storage.base import StagedObject, StorageBackend

__all__ = ["StagedObject", "StorageBackend", "build_storage"]


def build_storage(settings: Settings) -> StorageBackend:
    """Build the backend named by the storage URL's scheme."""
    scheme = urlsplit(settings.storage_url).scheme
    if scheme == "file":
        from app.storage.local import LocalBackend

        root = settings.local_storage_root
        assert root is not None
        return LocalBackend(
            root=root, secret_key=settings.effective_secret_key(), public_url=settings.public_url
        )
    if scheme == "gs":
        from app.storage.gcs import build_gcs_backend

        parts = urlsplit(settings.storage_url)
        if not parts.netloc:
            raise ConfigurationError("REGISTRY_STORAGE_URL: gs:// needs a bucket (gs://bucket/prefix)")
        return build_gcs_backend(
            bucket=parts.netloc, prefix=parts.path, emulator_host=settings.gcs_emulator_host, public_url=None
        )
    if scheme == "s3":
        from app.storage.s3 import S3Backend

        parts = urlsplit(settings.storage_url)
        if not parts.netloc:
            raise ConfigurationError("REGISTRY_STORAGE_URL: s3:// needs a bucket (s3://bucket/prefix)")
        return S3Backend(
            bucket=parts.netloc,
            prefix=parts.path,
            endpoint_url=settings.s3_endpoint_url,
            public_endpoint_url=settings.s3_public_endpoint_url,
            region=settings.s3_region,
            addressing_style=settings.effective_s3_addressing_style,
        )
    raise ConfigurationError(f"REGISTRY_STORAGE_URL: unsupported scheme {scheme!r}")
