"""Markdown previews: rendered by markdown-it-py (CommonMark with tables and strikethrough, raw HTML
allowed through) and then sanitised by nh3, so a README's script, event handlers and javascript: links
are gone before the page marks the result safe."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

from app.model.sizes import human_size
from app.previews.base import NotPreviewable, Preview, Read, decode_text, looks_binary, read_bytes

MAX_BYTES = 128 * 1024  # a pathological 128 KiB (all tiny paragraphs) renders in ~0.5 s
LINK_REL = "nofollow noopener noreferrer"
URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(source: str) -> str:
    """Sanitised HTML for Markdown text: no script, style, event handler or unsafe URL survives."""
    html = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(source)
    return nh3.clean(html, link_rel=LINK_REL, url_schemes=URL_SCHEMES)


def preview_markdown(size: int, read: Read) -> Preview:
    """The file rendered, its first MAX_BYTES (cut at a line end) when larger."""
    data = read_bytes(read, 0, min(size, MAX_BYTES))
    if looks_binary(data):
        raise NotPreviewable("It holds binary data (NUL bytes), not Markdown.")
    cut = size > len(data)
    if cut:
        data = data[: data.rfind(b"\n") + 1] or data
    note = f"Its first {human_size(len(data))}, rendered." if cut else ""
    return Preview(
        kind="markdown", note=note, html=render_markdown(decode_text(data, cut=cut)), bytes_read=len(data)
    )
