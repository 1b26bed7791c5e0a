"""What the worker's poller lets each client hold: sockets (a cap per address; idle ones closed oldest
first when a limit is reached; as many in all as the descriptor limit allows) and bytes of requests still
arriving (a budget per worker, shared out per address, and a smaller share for requests without a
credential). Bookkeeping only: the worker does I/O."""

from __future__ import annotations

import contextlib
import ipaddress
import resource
from collections.abc import Hashable, Iterable
from typing import Generic, Literal, TypeVar

ADDRESS_CONNECTIONS = 256  # per worker and client address; a proxy in forwarded_allow_ips has no cap
GATHER_BUDGET = 32 * 1024 * 1024  # per worker: bodies the poller holds until they have all arrived
ANONYMOUS_BUDGET = GATHER_BUDGET // 2  # of which requests without a credential header may hold
ANONYMOUS_SHARE = 2 * 1024 * 1024  # per address without a credential header: two 1 MiB JSON bodies
ADDRESS_SHARE = 8 * 1024 * 1024  # per address in all (partial heads included)
FD_RESERVE = 512  # descriptors beyond client sockets: listeners, database, storage, GitLab, logs

Kind = Literal["head", "anonymous", "credentialed"]  # a head still arriving, then what it carries
Conn = TypeVar("Conn", bound=Hashable)


def address_key(host: str | bytes) -> str:
    """Who the limits count a client as: its IPv4 address, or the /64 of its IPv6 address (one
    subscriber's prefix, which an attacker has many addresses of); without a port; anything unparsable
    as itself."""
    text = host.decode("latin-1") if isinstance(host, bytes) else host
    if text.count(":") == 1:  # IPv4 with a port, as some proxies write X-Forwarded-For
        text = text.partition(":")[0]
    if ":" not in text:
        return text
    if text.startswith("["):  # [IPv6]:port
        text = text[1:].partition("]")[0]
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return text
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return address.exploded[:19] + "::/64"


class Holdings:
    """Bytes of requests not yet complete, by client address and kind. A request reads while its address
    and its kind are within their shares, never past them; then it waits (its deadline still running)."""

    def __init__(self) -> None:
        self.by_key: dict[str, int] = {}
        self.by_kind: dict[Kind, int] = {"head": 0, "anonymous": 0, "credentialed": 0}

    def add(self, key: str, kind: Kind, size: int) -> None:
        self.by_key[key] = self.by_key.get(key, 0) + size
        self.by_kind[kind] += size

    def remove(self, key: str, kind: Kind, size: int) -> None:
        left = self.by_key.get(key, 0) - size
        if left > 0:
            self.by_key[key] = left
        else:
            self.by_key.pop(key, None)
        self.by_kind[kind] -= size

    def room(self, key: str, kind: Kind) -> int:
        """How many more bytes a request of `kind` from `key` may read now (none when 0 or less). Heads
        still arriving are bounded per connection and per address only: a flood of them from many
        addresses never stops anyone's head being read, nor counts as bodies."""
        held = self.by_key.get(key, 0)
        if kind == "head":
            return ADDRESS_SHARE - held
        anonymous = self.by_kind["anonymous"]
        room = min(GATHER_BUDGET - anonymous - self.by_kind["credentialed"], ADDRESS_SHARE - held)
        if kind == "anonymous":
            return min(room, ANONYMOUS_SHARE - held, ANONYMOUS_BUDGET - anonymous)
        return room


class Sockets(Generic[Conn]):
    """Open connections per client address, and the idle ones (no request begun) oldest first."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.idle: dict[Conn, str] = {}  # insertion order: the order they became idle
        self.idle_by_key: dict[str, dict[Conn, None]] = {}

    def opened(self, key: str) -> None:
        self.count[key] = self.count.get(key, 0) + 1

    def closed(self, conn: Conn, key: str) -> None:
        self.busy(conn)
        left = self.count.get(key, 0) - 1
        if left > 0:
            self.count[key] = left
        else:
            self.count.pop(key, None)

    def at_cap(self, key: str) -> bool:
        return self.count.get(key, 0) >= ADDRESS_CONNECTIONS

    def became_idle(self, conn: Conn, key: str) -> None:
        self.idle[conn] = key
        self.idle_by_key.setdefault(key, {})[conn] = None

    def busy(self, conn: Conn) -> None:
        """`conn` is no longer idle (a request began, or it closed)."""
        key = self.idle.pop(conn, None)
        if key is not None:
            mine = self.idle_by_key[key]
            del mine[conn]
            if not mine:
                del self.idle_by_key[key]

    def oldest_idle(self, key: str | None = None) -> Conn | None:
        """The connection idle longest (of address `key`, if given); None when there is none."""
        pool = self.idle if key is None else self.idle_by_key.get(key, {})
        return next(iter(pool), None)


def descriptors_short_of(wanted: int) -> int | None:
    """Raise the soft descriptor limit to the hard one if it is below `wanted`; None when the limit now
    allows `wanted` descriptors, else the (soft) limit that still falls short."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY and soft < wanted else None


class Proxies:
    """The peers in gunicorn's forwarded_allow_ips (addresses or networks; "*": every peer): a proxy has
    no connection cap, and the client it forwards for is counted by its X-Forwarded-For."""

    def __init__(self, allowed: Iterable[str]) -> None:
        allowed = list(allowed)
        self._everyone = "*" in allowed
        self._networks = [] if self._everyone else [ipaddress.ip_network(a, strict=False) for a in allowed]

    def __contains__(self, host: str) -> bool:
        if self._everyone:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)
