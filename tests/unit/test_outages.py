"""Riding out a short outage: a call is tried again while it fails in a way that says "not now", for a
bounded time, and an error that says anything else is raised at once."""

from __future__ import annotations

import pytest

from app.outages import ride_out


def flaky(failures: int, error: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "answer"

    return calls, call


def test_a_transient_failure_is_waited_out() -> None:
    calls, call = flaky(3, ConnectionRefusedError())
    pauses: list[float] = []
    assert ride_out(call, lambda e: isinstance(e, ConnectionError), 15, sleep=pauses.append) == "answer"  # type: ignore[arg-type]
    assert len(calls) == 4 and pauses == [0.1, 0.2, 0.4]


def test_other_errors_are_raised_at_once() -> None:
    calls, call = flaky(3, PermissionError("wrong password"))
    with pytest.raises(PermissionError):
        ride_out(call, lambda e: isinstance(e, ConnectionError), 15, sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_patience_runs_out() -> None:
    calls, call = flaky(1000, ConnectionRefusedError())
    with pytest.raises(ConnectionRefusedError):
        ride_out(call, lambda e: True, 0.05, sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(calls) >= 1
    calls, call = flaky(1000, ConnectionRefusedError())
    with pytest.raises(ConnectionRefusedError):
        ride_out(call, lambda e: True, 0, sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(calls) == 1  # no patience: one try


def test_patience_counts_from_the_first_try(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first try that took all the patience (a connect timeout) is not tried again."""
    clock = [100.0]

    def slow_then_refused() -> str:
        clock[0] += 20
        raise ConnectionRefusedError()

    monkeypatch.setattr("app.outages.time.monotonic", lambda: clock[0])
    with pytest.raises(ConnectionRefusedError):
        ride_out(slow_then_refused, lambda e: True, 15, sleep=lambda _: None)
    assert clock[0] == 120.0
