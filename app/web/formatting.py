"""How pages say numbers, dates and sizes: the Jinja filters and globals every template gets
(`{{ n|plural("file") }}`, `{{ dt|when }}`, `{{ n|size }}`, `page_numbers(...)`), registered once per app."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from markupsafe import Markup, escape

from app.model.sizes import human_size

_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60))
RELATIVE_WITHIN = 30 * 86400  # seconds: closer than this a relative time helps, past it the date does


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 file`, `2 folders`, `1,234 entries`: the count with thousands separators and the word agreeing."""
    return f"{count:,} {word if count == 1 else many or plural_of(word)}"


def plural_of(word: str) -> str:
    """The English plural of a regular noun (`entry` → `entries`, `match` → `matches`)."""
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def _aware(moment: datetime) -> datetime:
    """The moment in UTC (the index keeps naive UTC on some databases)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else _aware(now)


def utc(moment: datetime) -> str:
    """`2026-12-05 17:23 UTC`."""
    return _aware(moment).strftime("%Y-%m-%d %H:%M UTC")


def ago(moment: datetime, now: datetime | None = None) -> str:
    """`3 hours ago`, `in 7 days`, `just now`: the largest whole unit between the moment and now."""
    delta = (_now(now) - _aware(moment)).total_seconds()
    span = round(abs(delta) / 60) * 60  # to the minute: 59 min 59 s is an hour
    for unit, length in _UNITS:
        if span >= length:
            said = plural(round(span / length), unit)
            return f"{said} ago" if delta > 0 else f"in {said}"
    return "just now"


def when(moment: datetime | None, now: datetime | None = None) -> Markup:
    """A `<time>` element: a relative time for moments within RELATIVE_WITHIN of now, the UTC date and
    time past it; the exact UTC time is always its title and machine-readable `datetime`."""
    if moment is None:
        return Markup("")
    aware = _aware(moment)
    exact = utc(aware)
    near = abs((_now(now) - aware).total_seconds()) < RELATIVE_WITHIN
    shown = ago(aware, now) if near else exact
    stamp = aware.isoformat().replace("+00:00", "Z")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(stamp, exact, escape(shown))


def size(count: int | None) -> str:
    """`1.2 MiB` (binary units, as the quota), empty for an unknown size."""
    return "" if count is None else human_size(count)


def page_numbers(current: int, last: int, window: int = 2) -> list[int | None]:
    """The page numbers a pager shows: the first, the last, `window` either side of the current one, and
    None where numbers are left out (`1 … 4 5 [6] 7 8 … 25`)."""
    shown = sorted({1, last, *range(max(1, current - window), min(last, current + window) + 1)})
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number - (numbers[-1] or 0) == 2:
            numbers.append(number - 1)  # a gap of one number: show it rather than "…"
        elif numbers and number - (numbers[-1] or 0) > 2:
            numbers.append(None)
        numbers.append(number)
    return numbers


def register(app: Flask) -> None:
    """Give every template of the app these filters and globals."""
    app.add_template_filter(plural)
    app.add_template_filter(when)
    app.add_template_filter(utc)
    app.add_template_filter(ago)
    app.add_template_filter(size)
    app.add_template_global(human_size)
    app.add_template_global(page_numbers)
