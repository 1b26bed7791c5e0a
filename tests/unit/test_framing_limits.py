"""What the poller lets each client hold: bytes of requests still arriving (anonymous ones a small share
per address and half the budget in all; heads bounded per address only) and sockets (a cap per address;
idle ones oldest first; as many as the descriptor limit allows)."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from app.poller_limits import (
    ADDRESS_CONNECTIONS,
    ADDRESS_SHARE,
    ANONYMOUS_BUDGET,
    ANONYMOUS_SHARE,
    FD_RESERVE,
    GATHER_BUDGET,
    Holdings,
    Sockets,
    address_key,
)

MIB = 1024 * 1024


def test_an_anonymous_address_gets_a_small_share() -> None:
    held = Holdings()
    held.add("a", "anonymous", ANONYMOUS_SHARE - 1)
    assert held.room("a", "anonymous") == 1
    held.add("a", "anonymous", 1)
    assert held.room("a", "anonymous") == 0
    assert held.room("a", "credentialed") == ADDRESS_SHARE - ANONYMOUS_SHARE  # with a credential: more
    assert held.room("b", "anonymous") == ANONYMOUS_SHARE
    held.remove("a", "anonymous", 1)
    assert held.room("a", "anonymous") == 1 and held.by_key == {"a": ANONYMOUS_SHARE - 1}
    held.remove("a", "anonymous", ANONYMOUS_SHARE - 1)
    assert held.by_key == {} and held.by_kind["anonymous"] == 0


def test_many_anonymous_addresses_leave_half_the_budget_to_credentials() -> None:
    held = Holdings()
    for address in range(ANONYMOUS_BUDGET // MIB):
        held.add(f"10.0.0.{address}", "anonymous", MIB)
    assert held.room("10.9.9.9", "anonymous") == 0
    assert held.room("10.9.9.9", "credentialed") == ADDRESS_SHARE
    for address in range((GATHER_BUDGET - ANONYMOUS_BUDGET) // MIB - 1):
        held.add(f"10.1.0.{address}", "credentialed", MIB)
    assert held.room("10.9.9.9", "credentialed") == MIB
    held.add("10.2.0.0", "credentialed", MIB)
    assert held.room("10.9.9.9", "credentialed") == 0  # the whole budget: every body waits, in the poller


def test_a_credential_header_buys_a_larger_share_but_no_more() -> None:
    held = Holdings()
    held.add("a", "credentialed", ADDRESS_SHARE)
    assert held.room("a", "credentialed") == 0  # a fake `Authorization: Bearer x` from one address
    assert held.room("a", "anonymous") < 0


def test_heads_are_bounded_per_address_only() -> None:
    held = Holdings()
    for address in range(GATHER_BUDGET // MIB + 1):
        held.add(f"10.0.0.{address}", "head", MIB)
    assert held.room("10.9.9.9", "head") == ADDRESS_SHARE  # a flood of half-sent heads stops no head
    assert held.room("10.9.9.9", "credentialed") == ADDRESS_SHARE  # nor is it counted as bodies
    held.add("a", "head", ADDRESS_SHARE)
    assert held.room("a", "head") == 0


def test_sockets_per_address_and_the_idle_oldest_first() -> None:
    sockets: Sockets[str] = Sockets()
    for i in range(ADDRESS_CONNECTIONS):
        sockets.opened("a")
        sockets.became_idle(f"a{i}", "a")
    sockets.opened("b")
    sockets.became_idle("b0", "b")
    assert sockets.at_cap("a") and not sockets.at_cap("b")
    assert sockets.oldest_idle() == "a0" and sockets.oldest_idle("b") == "b0"
    sockets.busy("a0")  # a request began on it
    assert sockets.oldest_idle() == "a1" and sockets.oldest_idle("a") == "a1"
    sockets.closed("a1", "a")
    assert not sockets.at_cap("a") and sockets.oldest_idle() == "a2"
    sockets.became_idle("a0", "a")  # idle again: now the newest
    assert list(sockets.idle)[-1] == "a0"
    sockets.closed("b0", "b")
    assert sockets.oldest_idle("b") is None and "b" not in sockets.count


def test_address_key() -> None:
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert (
        address_key("2001:db8:1:2:3:4:5:6")
        == address_key("2001:db8:1:2:ffff::1")
        == "2001:0db8:0001:0002::/64"
    )
    assert address_key(b"2001:db8::1") == address_key("[2001:db8::2]:443") == "2001:0db8:0000:0000::/64"
    assert address_key("192.0.2.7:5123") == "192.0.2.7"
    assert address_key("") == "" and address_key("not:an:address") == "not:an:address"


FIT = """
import resource, sys
from types import SimpleNamespace
from app.gunicorn_worker import GuardedThreadWorker
soft, hard = (int(n) for n in sys.argv[1:3])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
warned = []
worker = SimpleNamespace(
    worker_connections=16384,
    cfg=SimpleNamespace(worker_connections=16384, threads=16),
    log=SimpleNamespace(warning=lambda *args: warned.append(args)),
)
GuardedThreadWorker._fit_connections_to_descriptors(worker)
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], worker.worker_connections, len(warned))
"""


@pytest.mark.parametrize(
    ("soft", "hard", "expected"),
    [
        (1024, 20000, "20000 16384 0"),  # the soft limit raised to the hard one
        (1024, 4096, f"4096 {4096 - FD_RESERVE} 1"),  # too low a hard limit: fewer connections, and a warning
        (20000, 20000, "20000 16384 0"),
    ],
)
def test_the_worker_fits_its_connections_to_the_descriptor_limit(soft: int, hard: int, expected: str) -> None:
    _, current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if current_hard != resource.RLIM_INFINITY and current_hard < hard:
        pytest.skip(f"the hard descriptor limit here is {current_hard}")
    done = subprocess.run(
        [sys.executable, "-c", FIT, str(soft), str(hard)], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == expected.split()
