"""Settings: REGISTRY_* variables validated once, errors naming the variable, secrets kept out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ConfigurationError
from app.settings import load_settings


def test_embedded_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.gitlab_url == "https://gitlab.com"
    assert settings.storage_url == "file:///var/lib/data-registry"
    assert settings.effective_database_url == "sqlite:////var/lib/data-registry/registry.db"
    assert settings.signed_url_ttl == 600
    assert settings.download_mode == "auto"


def test_values_are_parsed_and_normalised() -> None:
    settings = load_settings(
        environ={
            "REGISTRY_GITLAB_URL": "https://gitlab.example.com/",
            "REGISTRY_SIGNED_URL_TTL": "120",
            "REGISTRY_DOWNLOAD_MODE": "proxy",
            "REGISTRY_ANONYMOUS_READS": "false",
            "REGISTRY_DATABASE_URL": "postgresql+psycopg://u@db/registry",
        }
    )
    assert settings.gitlab_url == "https://gitlab.example.com"
    assert (settings.signed_url_ttl, settings.download_mode, settings.anonymous_reads) == (
        120,
        "proxy",
        False,
    )
    assert settings.effective_database_url == "postgresql+psycopg://u@db/registry"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REGISTRY_DOWNLOAD_MODE", "sometimes"),
        ("REGISTRY_SIGNED_URL_TTL", "ten minutes"),
        ("REGISTRY_GITLAB_URL", "gitlab.example.com"),
        ("REGISTRY_STORAGE_URL", "ftp://host/x"),
        ("REGISTRY_DATABASE_URL", "mysql://x"),
        ("REGISTRY_SECRET_KEY", "short"),
        ("REGISTRY_JOB_TOKEN_CACHE_TTL", "120"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        load_settings(environ={name: value})


def test_secrets_from_files_and_never_in_repr(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("glpat-service-token-value\n")
    settings = load_settings(
        environ={
            "REGISTRY_GITLAB_SERVICE_TOKEN_FILE": str(secret_file),
            "REGISTRY_SECRET_KEY": "k" * 32,
        }
    )
    assert settings.gitlab_service_token == "glpat-service-token-value"
    assert "glpat-service-token-value" not in repr(settings)
    assert "k" * 32 not in repr(settings)


def test_unreadable_secret_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="REGISTRY_SECRET_KEY_FILE"):
        load_settings(environ={"REGISTRY_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_embedded_secret_key_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = load_settings(environ={"REGISTRY_STORAGE_URL": f"file://{tmp_path}"})
    first = settings.effective_secret_key()
    assert first == settings.effective_secret_key()
    assert len(first) >= 32
    assert (tmp_path / ".secret_key").stat().st_mode & 0o777 == 0o600


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    """gunicorn boots its workers at once: all of them must end up with the same complete key."""
    from concurrent.futures import ThreadPoolExecutor

    settings = load_settings(environ={"REGISTRY_STORAGE_URL": f"file://{tmp_path}"})
    with ThreadPoolExecutor(16) as pool:
        keys = set(pool.map(lambda _: settings.effective_secret_key(), range(64)))
    assert len(keys) == 1 and len(keys.pop()) >= 32
    assert sorted(p.name for p in tmp_path.iterdir()) == [".secret_key"]
