"""Which client address the current request comes from, for the Authorizer's per-address budgets: the web
layer binds it at the start of every request (a ContextVar: each request thread sees its own)."""

from __future__ import annotations

from contextvars import ContextVar

_ADDRESS: ContextVar[str | None] = ContextVar("registry_client_address", default=None)


def bind_client_address(address: str | None) -> None:
    """The address the rest of this request (or None: none) is counted under."""
    _ADDRESS.set(address)


def client_address() -> str | None:
    """The bound address; None outside a request (jobs, the CLI), where nothing is counted."""
    return _ADDRESS.get()
