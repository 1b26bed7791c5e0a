"""The per-credential rate limit, applied before every data-plane and API request."""

from __future__ import annotations

import hashlib
import math

from flask import request

from app.errors import RateLimited
from app.web.context import services
from app.web.credentials import client_address

_CREDENTIAL_HEADERS = ("Authorization", "Private-Token", "Job-Token", "Deploy-Token")


def limit_rate() -> None:
    """One token bucket per credential (its sha256), or per client address without one (as a trusted proxy
    reports it); 429 past it."""
    secret = next((request.headers[h] for h in _CREDENTIAL_HEADERS if h in request.headers), None)
    key = hashlib.sha256(secret.encode()).hexdigest() if secret else f"addr:{client_address()}"
    wait = services().limiter.take(key)
    if wait:
        raise RateLimited("Too many requests for this credential; slow down", retry_after=math.ceil(wait))
