"""How pages say counts, dates, sizes and page numbers: the filters and globals every template gets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask, render_template_string

from app.web.formatting import ago, page_numbers, plural, size, utc, when

NOW = datetime(2026, 12, 5, 17, 23, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("count", "word", "said"),
    [
        (0, "file", "0 files"),
        (1, "file", "1 file"),
        (2, "folder", "2 folders"),
        (1, "object", "1 object"),
        (12_345, "object", "12,345 objects"),
        (3, "entry", "3 entries"),
        (2, "day", "2 days"),
        (2, "match", "2 matches"),
        (2, "box", "2 boxes"),
    ],
)
def test_plural(count: int, word: str, said: str) -> None:
    assert plural(count, word) == said


def test_plural_takes_an_irregular_plural() -> None:
    assert plural(2, "child", "children") == "2 children" and plural(1, "child", "children") == "1 child"


def test_utc_says_its_zone_whatever_zone_it_was_given() -> None:
    assert utc(NOW) == "2026-12-05 17:23 UTC"
    assert utc(NOW.astimezone(timezone(timedelta(hours=-5)))) == "2026-12-05 17:23 UTC"
    assert utc(NOW.replace(tzinfo=None)) == "2026-12-05 17:23 UTC"  # naive: the index's UTC


@pytest.mark.parametrize(
    ("delta", "said"),
    [
        (timedelta(seconds=20), "just now"),
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(minutes=45), "45 minutes ago"),
        (timedelta(hours=3, minutes=10), "3 hours ago"),
        (timedelta(minutes=59, seconds=50), "1 hour ago"),
        (timedelta(days=1, hours=2), "1 day ago"),
        (-timedelta(days=6, hours=23, minutes=59), "in 7 days"),
        (-timedelta(seconds=3599), "in 1 hour"),
        (timedelta(days=400), "1 year ago"),
    ],
)
def test_ago(delta: timedelta, said: str) -> None:
    assert ago(NOW - delta, now=NOW) == said


def test_when_is_a_time_element_relative_when_near_and_dated_when_far() -> None:
    near = when(NOW - timedelta(hours=3), now=NOW)
    assert near == '<time datetime="2026-12-05T14:23:10Z" title="2026-12-05 14:23 UTC">3 hours ago</time>'
    far = when(NOW - timedelta(days=90), now=NOW)
    assert (
        far
        == '<time datetime="2026-09-06T17:23:10Z" title="2026-09-06 17:23 UTC">2026-09-06 17:23 UTC</time>'
    )
    assert when(None) == ""


def test_size() -> None:
    assert size(0) == "0 B" and size(1536) == "1.5 KiB" and size(None) == ""


@pytest.mark.parametrize(
    ("current", "last", "shown"),
    [
        (1, 1, [1]),
        (1, 3, [1, 2, 3]),
        (1, 25, [1, 2, 3, None, 25]),
        (6, 25, [1, None, 4, 5, 6, 7, 8, None, 25]),
        (4, 25, [1, 2, 3, 4, 5, 6, None, 25]),  # a gap of one number shows it
        (25, 25, [1, None, 23, 24, 25]),
        (1000, 1000, [1, None, 998, 999, 1000]),
    ],
)
def test_page_numbers(current: int, last: int, shown: list[int | None]) -> None:
    assert page_numbers(current, last) == shown


def test_every_template_of_the_app_has_them(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    with app.test_request_context():
        said = render_template_string(
            '{{ 1|plural("file") }}; {{ 2|plural("folder") }}; {{ moment|when }}; {{ 2048|size }}; '
            "{{ human_size(10) }}; {{ page_numbers(1, 2) }}; {{ moment|utc }}",
            moment=NOW,
        )
    assert said.startswith(
        '1 file; 2 folders; <time datetime="2026-12-05T17:23:10Z" title="2026-12-05 17:23 UTC">'
    )
    assert said.endswith("</time>; 2.0 KiB; 10 B; [1, 2]; 2026-12-05 17:23 UTC")
