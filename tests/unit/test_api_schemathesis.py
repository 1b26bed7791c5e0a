"""schemathesis against the OpenAPI document: no 5xx, and every response matches its schema."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from app.db import upgrade
from app.settings import load_settings
from scripts.harness import fresh_database_url, start_simulator
from tests.conftest import TOKENS

_simulator = None


def _app() -> object:
    """One app for the whole module (schemathesis parametrizes at collection time)."""
    global _simulator
    if _simulator is None:
        _simulator = start_simulator()
    root = Path(tempfile.mkdtemp(prefix="schemathesis-"))
    overrides = {
        "storage_url": f"file://{root}",
        "database_url": fresh_database_url(root),
        "gitlab_url": _simulator.url,
    }
    upgrade(load_settings(environ={}, overrides=overrides).effective_database_url)
    app = create_app(overrides)
    client = app.test_client()
    body = b"an object"
    md5 = hashlib.md5(body).hexdigest()
    client.put(
        f"/-/projects/101/data/dvc/files/md5/{md5[:2]}/{md5[2:]}",
        data=body,
        headers={"Authorization": f"Bearer {TOKENS['developer']}"},
    )
    return app


schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case: schemathesis.Case) -> None:
    check(case, "reporter")


@schema.include(method="POST").parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_writes(case: schemathesis.Case) -> None:
    """The writing operations with a credential allowed to write, so requests get past the 403."""
    check(case, "developer")


@schema.include(path_regex="/admin/").parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_admin(case: schemathesis.Case) -> None:
    """The admin operations as a GitLab administrator."""
    check(case, "admin")


@schema.include(method="POST").include(method="PUT").parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_bodies(case: schemathesis.Case) -> None:
    """Every JSON body the document describes, valid and not (schemathesis' negative mode: wrong types,
    missing and unknown fields, out-of-range numbers, too long strings, NUL characters): what the
    document refuses is a 4xx, what it allows passes the checks above."""
    body_is_invalid = case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY)
    response = check(case, "admin" if "/admin/" in case.path else "maintainer")
    if body_is_invalid:
        assert 400 <= response.status_code < 500, (case.body, response.status_code, response.text)


def check(case: schemathesis.Case, role: str) -> Any:
    case.path_parameters = {**(case.path_parameters or {}), "project_id": 101}
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKENS[role]}"}
    response = case.call()
    assert response.status_code < 500, response.text
    # The bar: no 5xx, and every response (errors too) as the document describes it.
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    return response


@pytest.fixture(scope="module", autouse=True)
def _stop_simulator() -> object:
    yield None
    if _simulator is not None:
        _simulator.stop()
