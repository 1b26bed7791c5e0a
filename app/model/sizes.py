"""Byte sizes as people write and read them: "50GiB" in, "10.0 GiB" out."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "B": 1,
    "K": 10**3,
    "KB": 10**3,
    "KIB": 2**10,
    "M": 10**6,
    "MB": 10**6,
    "MIB": 2**20,
    "G": 10**9,
    "GB": 10**9,
    "GIB": 2**30,
    "T": 10**12,
    "TB": 10**12,
    "TIB": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes from "50GiB", "10 GB", "512MiB", "1048576"; ValueError otherwise."""
    match = _SIZE.match(text)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 50GiB, 500MB, 0 for unlimited)")
    size = float(match.group(1)) * _UNITS[unit]
    if size >= 2**63:
        raise ValueError(f"too large: {text!r}")
    return int(size)


def human_size(size: int) -> str:
    """1 decimal, binary units: 10737418240 -> "10.0 GiB"."""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            break
        value /= 1024
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
