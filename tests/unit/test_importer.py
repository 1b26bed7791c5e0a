"""The importer's pieces that need no GitLab: reading SOURCE_URL, the token's header, and how long it
keeps retrying (GitLab's 429s as long as it asks, within patience; other failures a few times)."""

from __future__ import annotations

import io
from typing import Any

import pytest
import requests

from app.importer import ImportError_, Retrying, Source, gitlab_headers, parse_source


@pytest.mark.parametrize(
    ("url", "source"),
    [
        (
            "https://gitlab.example.com/api/v4/projects/42/packages/generic/dvc",
            Source("https://gitlab.example.com/api/v4", "42", "dvc"),
        ),
        (
            "https://gitlab.example.com/gitlab/api/v4/projects/ml%2Fvision/packages/generic/dvc/v1/",
            Source("https://gitlab.example.com/gitlab/api/v4", "ml%2Fvision", "dvc/v1"),
        ),
        ("http://g/api/v4/projects/7/packages/generic", Source("http://g/api/v4", "7", "")),
    ],
)
def test_source_urls(url: str, source: Source) -> None:
    assert parse_source(url) == source


@pytest.mark.parametrize(
    "url", ["https://g/ml/vision/-/data/dvc", "ftp://g/api/v4/projects/1/packages/generic/x"]
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ImportError_, match="Not a generic packages URL"):
        parse_source(url)


def test_headers_by_token_kind() -> None:
    assert gitlab_headers("gldt-abc") == {"Deploy-Token": "gldt-abc"}
    assert gitlab_headers("glcbt-abc") == {"Job-Token": "glcbt-abc"}
    assert gitlab_headers("glpat-abc") == {"Private-Token": "glpat-abc"}
    assert gitlab_headers(None) == {}


class Answers(requests.Session):
    """A session that answers with the given statuses in turn (a fake, not a mock)."""

    def __init__(self, statuses: list[int | None], retry_after: str = "") -> None:
        super().__init__()
        self.statuses, self.retry_after, self.calls = statuses, retry_after, 0

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        status = self.statuses[min(self.calls, len(self.statuses) - 1)]
        self.calls += 1
        if status is None:
            raise requests.ConnectionError("gone")
        response = requests.Response()
        response.status_code, response.raw = status, io.BytesIO()
        response.headers["Retry-After"] = self.retry_after
        return response


def test_429_is_retried_as_long_as_gitlab_asks_within_patience() -> None:
    slept: list[float] = []
    session = Answers([429] * 30 + [200], retry_after="7")
    answer = Retrying(session, sleep=slept.append).request("GET", "http://g/x")
    assert answer.status_code == 200 and slept == [7.0] * 30  # more than `attempts`: GitLab asked
    slept.clear()
    impatient = Retrying(Answers([429] * 30, retry_after="7"), patience=20, sleep=slept.append)
    assert impatient.request("GET", "http://g/x").status_code == 429 and slept == [7.0, 7.0]


def test_other_failures_are_retried_a_few_times_with_growing_pauses() -> None:
    slept: list[float] = []
    assert (
        Retrying(Answers([502, None, 503, 200]), sleep=slept.append).request("GET", "http://g/x").status_code
        == 200
    )
    assert slept == [2.0, 4.0, 8.0]
    with pytest.raises(ImportError_, match="does not answer"):
        Retrying(Answers([None]), attempts=3, sleep=lambda _: None).request("GET", "http://g/x")
