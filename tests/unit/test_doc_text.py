"""The API reference's Markdown subset: what it formats, and that everything else reaches the page as text."""

from __future__ import annotations

import pytest

from app.web.doc_text import inline, render


def test_code_bold_and_links_are_formatted() -> None:
    html = render("Pass `next_cursor` as **cursor**; see [the reference](/api/v1/docs#schemas).")
    assert html == (
        "<p>Pass <code>next_cursor</code> as <strong>cursor</strong>; see "
        '<a href="/api/v1/docs#schemas">the reference</a>.</p>'
    )


def test_paragraphs_and_lists() -> None:
    html = render("First line\nwraps.\n\nThen:\n- `PUT` the bytes,\n  all of them;\n- **complete**.")
    assert html == (
        "<p>First line wraps.</p>\n<p>Then:</p>\n"
        "<ul><li><code>PUT</code> the bytes, all of them;</li><li><strong>complete</strong>.</li></ul>"
    )
    listed = render("- one `a`\n  goes on\n- two")
    assert listed == "<ul><li>one <code>a</code> goes on</li><li>two</li></ul>"


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
        ("`<b>` & co", "<p><code>&lt;b&gt;</code> &amp; co</p>"),
        (
            '[x](https://a.example/?q="><img src=x>)',
            "<p>[x](https://a.example/?q=&#34;&gt;&lt;img src=x&gt;)</p>",
        ),
        (
            '[x](https://a.example/?a=1&b="2")',
            '<p><a href="https://a.example/?a=1&amp;b=&#34;2&#34;">x</a></p>',
        ),
        ("[click](javascript:alert)", "<p>click</p>"),
        ("[click](data:text/html,hi)", "<p>click</p>"),
        ("[click](//elsewhere.example/)", "<p>click</p>"),
        ("**[bold link](#schemas)**", '<p><strong><a href="#schemas">bold link</a></strong></p>'),
        ("a * b and a lone ` stay as written", "<p>a * b and a lone ` stay as written</p>"),
    ],
)
def test_everything_else_is_escaped_and_only_safe_links_are_links(text: str, html: str) -> None:
    assert render(text) == html


def test_inline_has_no_paragraph() -> None:
    assert inline("a `b`") == "a <code>b</code>"
    assert render("") == ""
