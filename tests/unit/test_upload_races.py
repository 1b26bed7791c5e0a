"""Writes racing the trash and a database that fails at the worst moment: the index never points to
bytes that are gone, and a version the index may point to is never deleted."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.db import _not_now
from app.errors import DatabaseUnavailable
from app.model.projects import Project, Visibility
from app.trash import purge_trash
from tests.conftest import bearer

DATA = "/ml/vision/-/data"


def ca(body: bytes) -> str:
    md5 = hashlib.md5(body).hexdigest()
    return f"dvc/files/md5/{md5[:2]}/{md5[2:]}"


def test_a_push_of_a_trashed_object_racing_its_purge_keeps_its_bytes(make_app: Callable[..., Flask]) -> None:
    """dvc gc -c moved an object to the trash; a colleague's dvc push sends it again while the trash is
    purged. The bytes used to be written before the project's lock, the purge then deleted them with the
    trashed row, and the push indexed an object with no bytes behind it."""
    app = make_app()
    svc, client = app.extensions["data_registry"], app.test_client()
    body = b"model weights" * 100
    assert client.put(f"{DATA}/{ca(body)}", data=body, headers=bearer("developer")).status_code == 201
    assert client.delete(f"{DATA}/{ca(body)}", headers=bearer("maintainer")).status_code == 204
    real_commit = svc.storage.commit
    project = Project(101, "ml/vision", Visibility.PRIVATE)

    def commit_then_purge(staged: Any) -> None:
        real_commit(staged)
        purge = threading.Thread(
            target=purge_trash,
            args=(svc.index, svc.storage, [project]),
            kwargs={"retention": 0, "now": datetime.now(UTC) + timedelta(seconds=1)},
        )
        purge.start()
        purge.join(timeout=1.0)  # it runs now unless the project's lock holds it until the index write

    svc.storage.commit = commit_then_purge
    again = client.put(f"{DATA}/{ca(body)}", data=body, headers=bearer("developer"))
    assert again.status_code in (200, 201)
    head = client.head(f"{DATA}/{ca(body)}", headers=bearer("developer"))
    assert head.status_code == 200
    got = client.get(f"{DATA}/{ca(body)}", headers=bearer("developer"), follow_redirects=True)
    assert got.status_code == 200 and got.data == body


def test_a_commit_whose_answer_is_lost_never_deletes_the_version(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database commits the new version's row, but its answer is lost (a restart): the upload fails,
    and it must not delete the bytes that the row may now point to."""
    app = make_app()
    svc, client = app.extensions["data_registry"], app.test_client()
    real_writing = svc.index.writing

    @contextlib.contextmanager
    def writing_then_lost(project: Project) -> Iterator[Any]:
        with real_writing(project) as tx:
            yield tx
        raise DatabaseUnavailable()  # committed, but the registry never heard

    monkeypatch.setattr(svc.uploads._index, "writing", writing_then_lost)
    answer = client.put(f"{DATA}/notes.txt", data=b"the only copy", headers=bearer("developer"))
    assert answer.status_code == 503
    monkeypatch.undo()
    info = svc.index.get(101, "notes.txt")
    assert info is not None
    assert (Path(svc.storage.root) / info.key).read_bytes() == b"the only copy"


def test_re_pushing_a_trashed_object_near_the_quota_is_no_growth(make_app: Callable[..., Flask]) -> None:
    """The trash counts toward the quota, and a push of an object that is in the trash replaces it: the
    bytes the project stores do not grow, so it must not be refused."""
    client = make_app(default_quota="10KiB").test_client()
    body = bytes(range(256)) * 32  # 8 KiB
    assert client.put(f"{DATA}/{ca(body)}", data=body, headers=bearer("developer")).status_code == 201
    assert client.delete(f"{DATA}/{ca(body)}", headers=bearer("maintainer")).status_code == 204
    again = client.put(f"{DATA}/{ca(body)}", data=body, headers=bearer("developer"))
    assert again.status_code == 201, again.status


class OperationalError(Exception):
    """libpq's connection failures as psycopg raises them: no SQLSTATE, the message says why."""

    sqlstate = None


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        (
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused',
            True,
        ),
        ("connection failed: the database system is starting up", True),
        ("consuming input failed: server closed the connection unexpectedly", True),
        ('connection failed: FATAL:  password authentication failed for user "registry"', False),
        ('connection failed: FATAL:  database "registry" does not exist', False),
        ('connection failed: FATAL:  no pg_hba.conf entry for host "10.0.0.1"', False),
    ],
)
def test_only_a_database_that_is_not_there_yet_is_waited_for(message: str, transient: bool) -> None:
    assert _not_now(OperationalError(message)) is transient
