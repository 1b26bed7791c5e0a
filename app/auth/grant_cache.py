"""The grant cache: this process's answers (L1), the answers every process and replica shares through the
index database (L2, with a lease so that one process asks GitLab), and a stale grace for reads while
GitLab is down."""

from __future__ import annotations

import hashlib
import time as clock
from collections.abc import Callable

from app.auth.policy import AuthPolicy
from app.cache import TTLCache
from app.db.grant_codec import decode, encode
from app.db.shared_cache import SharedAuthCache
from app.errors import RegistryError
from app.model.identity import Grant

LEASE_SECONDS = 10  # how long other processes wait for the one asking GitLab
GrantKey = tuple[str | None, str]  # (credential fingerprint or None for anonymous, project lookup key)
Answer = Grant | RegistryError  # a grant, or a denial GitLab gave
Ask = Callable[[], tuple[Answer, float]]  # GitLab's answer and how long to trust it


def shared_key(key: GrantKey) -> str:
    """The L2 key: a hash of the credential's fingerprint and the project."""
    return hashlib.sha256(f"{key[0] or 'anonymous'}\n{key[1]}".encode()).hexdigest()


class GrantCache:
    """L1 over L2 over GitLab; `observe` hears where each answer came from: local, shared or gitlab."""

    def __init__(
        self, policy: AuthPolicy, shared: SharedAuthCache | None, observe: Callable[[str], None]
    ) -> None:
        self._policy = policy
        self._shared = shared
        self._observe = observe
        self._local: TTLCache[Answer] = TTLCache(max_size=policy.max_entries, stale_grace=policy.stale_grace)

    def load(self, key: GrantKey, ask: Ask) -> Answer:
        """The cached answer, or the one `ask` gets from GitLab (GitLabUnavailable is never cached)."""
        answer, hit = self._local.load(key, lambda: self._load_shared(key, ask))
        if hit:
            self._observe("local")
        return answer

    def cached(self, key: GrantKey) -> bool:
        """Whether an answer is at hand without asking GitLab (in this process or the shared cache)."""
        if self._local.get(key) is not None:
            return True
        entry = self._shared.get(shared_key(key)) if self._shared is not None else None
        return entry is not None and entry.expires_at > clock.time()

    def _load_shared(self, key: GrantKey, ask: Ask) -> tuple[Answer, float]:
        """GitLab's answer from the shared cache, or asked by exactly one process and stored there."""

        def asked() -> tuple[Answer, float]:
            self._observe("gitlab")
            return ask()

        shared = self._shared
        if shared is None:
            return asked()
        hashed = shared_key(key)
        deadline = clock.monotonic() + LEASE_SECONDS
        while True:
            entry = shared.get(hashed)
            now = clock.time()
            if entry is not None and entry.expires_at > now:
                self._observe("shared")
                return decode(entry.payload), entry.expires_at - now
            if shared.claim(hashed, LEASE_SECONDS) or clock.monotonic() > deadline:
                break  # ours to ask (or the holder of the lease is stuck)
            clock.sleep(0.02)  # another process is asking GitLab right now
        try:
            value, ttl = asked()
        except BaseException:
            shared.release(hashed)
            raise
        grace = self._policy.stale_grace if isinstance(value, Grant) else 0
        shared.put(hashed, encode(value), ttl=ttl, stale_grace=grace)
        return value, ttl

    def stale(self, key: GrantKey) -> Grant | None:
        """A grant that expired less than the stale grace ago, from this process or the shared cache."""
        stale = self._local.stale(key)
        if stale is None and self._shared is not None:
            entry = self._shared.get(shared_key(key))
            if entry is not None and entry.stale_until > clock.time():
                stale = decode(entry.payload)
        return stale if isinstance(stale, Grant) else None
