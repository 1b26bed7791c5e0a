"""What the fuzzers send and the rule every answer keeps: hostile strings (Unicode edge cases, control
characters, very long values), numbers JSON allows and databases do not, and the check of one answer
(a 4xx with the one-line message in the status line and the JSON envelope, never a 5xx, never a secret)."""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterable, Mapping

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from app.web.errors import reason_phrase
from tests.conftest import TOKENS

HOOK_SECRET = "hook-secret-for-fuzzing-0001"  # a test's own
OAUTH_SECRET = "gloas-sim-registry-secret"  # the simulator's seeded OAuth application
SECRETS = (*TOKENS.values(), HOOK_SECRET, OAUTH_SECRET)

CAFE_NFC, CAFE_NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
# Text a client can put in JSON ("\ud800" is how JSON writes a lone surrogate) or, as UTF-8, in a URL.
EDGE_STRINGS = [
    "",
    " ",
    "\ud800",  # lone high surrogate
    "\udfff",  # lone low surrogate
    "a\ud83dz",  # half of an emoji's surrogate pair
    "\x00",
    "a\x00b",
    "\uffff",
    "\ufffe",
    "\ufeffbom",
    "\u202eevil\u202c",  # right-to-left override
    "a\u200bb",  # zero-width space
    "\u2028",
    "\x85",
    "\U0010ffff",
    "\U0001f600",
    CAFE_NFC,
    CAFE_NFD,
    "..",
    "a/../b",
    "/abs",
    "a//b",
    "a\\b",
    "%ff",
    "%00",
    "\r\nSet-Cookie: x=1",
    "x" * 1025,
    "é" * 513,  # 1,026 bytes in 1,026 characters' worth of UTF-8
    "x" * 100_000,
]
# Numbers as JSON carries them, and as strings: what a BIGINT, a float or a strict integer field refuses
EDGE_NUMBERS: list[object] = [
    0,
    -1,
    1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**30,
    1.5,
    1e308,
    -0.0,
    True,
    False,
    None,
    "1",
    "1e3",
    "0x10",
    "NaN",
    "Infinity",
    "١٢",  # Arabic-Indic digits
    "²",
]


def fuzzing(examples: int) -> settings:
    """A fuzzer's hypothesis settings: `examples` fixed examples in CI; REGISTRY_FUZZ_EXAMPLES=N runs N
    random ones instead (a longer hunt on a workstation)."""
    hunt = os.environ.get("REGISTRY_FUZZ_EXAMPLES")
    return settings(
        max_examples=int(hunt) if hunt else examples,
        derandomize=not hunt,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def edge_text() -> st.SearchStrategy[str]:
    """The edge strings, and short strings of surrogates, controls, format and combining characters."""
    odd = st.characters(categories=["Cs", "Cc", "Cf", "Mn", "Zl", "Zp", "Co", "Cn"])
    return st.one_of(
        st.sampled_from(EDGE_STRINGS), st.text(odd, max_size=6), st.text(max_size=12), st.just("ml/vision")
    )


def json_values() -> st.SearchStrategy[object]:
    """Any JSON value, its leaves drawn from the edge cases."""
    leaves = st.one_of(edge_text(), st.sampled_from(EDGE_NUMBERS), st.integers(), st.floats(allow_nan=False))
    return st.recursive(
        leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(edge_text(), inner, max_size=3)
    )


def encoded(value: object, how: str) -> tuple[bytes, str]:
    """`value` as a body and its Content-Type, written `how`: as JSON should be, or in a way strict JSON
    refuses (a duplicate key, NaN, a BOM, UTF-16, nesting past Python's stack, another Content-Type)."""
    text = json.dumps(value)
    if how == "duplicate key" and isinstance(value, dict) and value:
        key = json.dumps(next(iter(value)))
        text = text[:-1] + f", {key}: null}}"
    elif how == "NaN":
        text = json.dumps([value, float("nan")])
    elif how == "deep":
        text = "[" * 100_000 + text + "]" * 100_000
    body = text.encode("utf-8", "surrogatepass")
    if how == "BOM":
        body = b"\xef\xbb\xbf" + body
    elif how == "UTF-16":
        body = text.encode("utf-16", "surrogatepass")
    return body, "text/plain" if how == "text/plain" else "application/json"


ENCODINGS = ["JSON", "JSON", "JSON", "duplicate key", "NaN", "BOM", "UTF-16", "deep", "text/plain"]


def check_answer(
    status: int,
    reason: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    sent: Iterable[str] = (),
    what: str = "",
) -> None:
    """The rule: no 5xx; an error in JSON is the envelope
    {"error": {"code", "message"}} whose message is the status line's reason; no secret of ours, and no
    credential the request carried, in the body or a header."""
    assert status < 500, f"{what}: {status} {reason} {body[:300]!r}"
    if status >= 400 and headers.get("Content-Type", "").startswith("application/json") and body:
        error = json.loads(body)["error"]
        assert set(error) == {"code", "message"}, f"{what}: {body[:300]!r}"
        assert reason == reason_phrase(str(error["message"])), f"{what}: {reason!r} {error}"
    leaks(body.decode("utf-8", "replace") + " ".join(f"{k}: {v}" for k, v in headers.items()), sent, what)


def leaks(text: str, sent: Iterable[str] = (), what: str = "") -> None:
    """No secret of ours, and no credential a request carried (six characters or more), in `text`."""
    for secret in (*SECRETS, *sent):
        assert len(secret) < 6 or secret not in text, f"{what}: a secret ({secret[:8]}…) is in {text[:300]!r}"
