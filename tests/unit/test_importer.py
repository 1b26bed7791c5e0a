"""The importer's pieces that need no GitLab: reading SOURCE_URL, the token's header, and how long the
client's sessions keep retrying (GitLab's 429s as long as it asks, within patience; other failures a few
times), against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Request, Response

from app.client.credentials import gitlab_headers
from app.client.errors import BadURL, NoAnswer
from app.client.retry import patient_retry
from app.client.session import ask, client_session
from app.client.urls import Source, parse_source
from scripts.harness import free_port, serve_in_thread


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
    with pytest.raises(BadURL, match="Not a generic packages URL"):
        parse_source(url)


def test_headers_by_token_kind() -> None:
    assert gitlab_headers("gldt-abc") == {"Deploy-Token": "gldt-abc"}
    assert gitlab_headers("glcbt-abc") == {"Job-Token": "glcbt-abc"}
    assert gitlab_headers("glpat-abc") == {"Private-Token": "glpat-abc"}
    assert gitlab_headers(None) == {}


class Answers:
    """A server that answers with the given statuses in turn (Retry-After on each), and counts the asks."""

    def __init__(self, statuses: list[int], retry_after: str = "") -> None:
        self.statuses, self.retry_after, self.calls = statuses, retry_after, 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        Request(environ).get_data()
        status = self.statuses[min(self.calls, len(self.statuses) - 1)]
        self.calls += 1
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return Response("", status, headers=headers)(environ, start_response)


@pytest.fixture
def answering() -> Iterator[Callable[[Answers], str]]:
    started: list[BaseWSGIServer] = []

    def start(app: Answers) -> str:
        started.append(serve_in_thread(app))
        return f"http://127.0.0.1:{started[-1].server_port}/x"

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def test_429_is_retried_as_long_as_gitlab_asks_within_patience(
    answering: Callable[[Answers], str],
) -> None:
    slept: list[float] = []
    url = answering(Answers([429] * 30 + [200], retry_after="7"))
    retry = patient_retry(nap=slept.append)
    assert ask(client_session(retry), "GET", url).status_code == 200
    assert slept == [7.0] * 30 and retry.tally.count == 30  # more than `attempts`: GitLab asked
    slept.clear()
    impatient = client_session(patient_retry(patience=20, nap=slept.append))
    assert ask(impatient, "GET", answering(Answers([429] * 30, retry_after="7"))).status_code == 429
    assert slept == [7.0, 7.0]


def test_other_failures_are_retried_a_few_times_with_growing_pauses(
    answering: Callable[[Answers], str],
) -> None:
    slept: list[float] = []
    failing = Answers([502, 503, 500, 504, 200])
    got = ask(client_session(patient_retry(nap=slept.append)), "POST", answering(failing), data=b"x")
    assert got.status_code == 200 and failing.calls == 5
    assert slept == [2.0, 4.0, 8.0]  # urllib3's backoff: the first retry at once, then doubling
    slept.clear()
    down = Answers([503])
    assert (
        ask(client_session(patient_retry(attempts=3, nap=slept.append)), "GET", answering(down)).status_code
        == 503
    )
    assert down.calls == 3 and slept == [2.0]
    with pytest.raises(NoAnswer, match="does not answer"):
        ask(
            client_session(patient_retry(attempts=3, nap=lambda _: None)),
            "GET",
            f"http://127.0.0.1:{free_port()}/",
        )
