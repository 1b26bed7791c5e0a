"""The refused-token limit counts refusals, not look-ups: someone's junk tokens never cost a valid token a
429, from the same address or from behind the same ingress; only the junk is slowed down."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from itertools import count

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scripts.harness import Simulator

PATH = "/ml/vision/-/data/x"  # no such object: a reader is answered 404


@pytest.fixture
def new_valid_token(simulator: Simulator) -> Callable[[], str]:
    """A personal access token of Rita (Reporter of ml/vision) that nobody has used yet."""
    ids = count(1000)

    def make() -> str:
        token = f"glpat-fresh-{uuid.uuid4().hex[:20]}"
        simulator.world.access_tokens[token] = {
            "token": token,
            "user": "rita",
            "scopes": ["api"],
            "id": next(ids),
            "user_id": 4,
        }
        return token

    return make


def junk() -> dict[str, str]:
    return {"Authorization": f"Bearer glpat-{uuid.uuid4().hex}"}


def ten_a_second(seconds: float) -> Iterator[int]:
    start = time.monotonic()
    for i in range(int(seconds * 10)):
        time.sleep(max(0.0, start + i / 10 - time.monotonic()))
        yield i


def flood(
    client: FlaskClient,
    new_valid_token: Callable[[], str],
    *,
    junk_from: dict[str, str],
    valid_from: dict[str, str],
) -> tuple[list[int], list[int]]:
    """Ten junk tokens a second for three seconds, a new valid token after every third: the statuses."""
    junk_statuses, valid_statuses = [], []
    for i in ten_a_second(3):
        junk_statuses.append(client.head(PATH, headers={**junk(), **junk_from}).status_code)
        if i % 3 == 2:
            headers = {"Authorization": f"Bearer {new_valid_token()}", **valid_from}
            valid_statuses.append(client.head(PATH, headers=headers).status_code)
    return junk_statuses, valid_statuses


def test_junk_from_one_address_never_costs_a_new_valid_token_a_429(
    make_app: Callable[..., Flask], new_valid_token: Callable[[], str]
) -> None:
    client = make_app().test_client()
    junk_statuses, valid_statuses = flood(client, new_valid_token, junk_from={}, valid_from={})
    assert valid_statuses == [404] * 10  # answered normally, every time
    assert set(junk_statuses) == {401, 429} and junk_statuses.count(429) >= 15  # the junk is slowed down


@pytest.mark.parametrize(
    "valid_client", ["198.51.100.9", "203.0.113.7"], ids=["another client", "same client"]
)
def test_junk_through_the_ingress_never_costs_a_new_valid_token_a_429(
    make_app: Callable[..., Flask], new_valid_token: Callable[[], str], valid_client: str
) -> None:
    client = make_app(trusted_proxies="127.0.0.0/8").test_client()  # the test client's peer: the ingress
    junk_statuses, valid_statuses = flood(
        client,
        new_valid_token,
        junk_from={"X-Forwarded-For": "203.0.113.7"},
        valid_from={"X-Forwarded-For": valid_client},
    )
    assert valid_statuses == [404] * 10
    assert junk_statuses.count(429) >= 15
    # the limit is the junk sender's alone: another client behind the ingress is not told to slow down
    other = client.head(PATH, headers={**junk(), "X-Forwarded-For": "192.0.2.44"})
    assert other.status_code == 401


def test_a_refused_token_over_the_budget_is_told_why_and_costs_gitlab_nothing_again(
    make_app: Callable[..., Flask], simulator: Simulator
) -> None:
    client = make_app().test_client()
    for _ in range(8):
        client.head(PATH, headers=junk())
    expired = {"Authorization": "Bearer glpat-expired-token-000007"}
    answer = client.head(PATH, headers=expired)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1
    assert answer.status.startswith("429 GitLab token has expired; too many refused GitLab tokens")
    before = simulator.world.total_calls()
    for path in ("/ml/vision/-/data/y", "/ml/open-data/-/data/y", "/other/secret/-/data/y"):
        assert client.head(path, headers=expired).status_code == 429
    assert simulator.world.total_calls() == before  # remembered as refused, on every project
    assert client.head(PATH, headers={"PRIVATE-TOKEN": "glpat-reporter-token-00003"}).status_code == 404
