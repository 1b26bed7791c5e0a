"""The CommonMark subset the API's descriptions are written in (paragraphs, `-` lists, `code`, **bold**,
[links](url)) rendered to HTML on the server; everything else is escaped, so the text is shown as written."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_INLINE = re.compile(r"`([^`\n]+)`|\*\*(?=\S)(.+?)(?<=\S)\*\*|\[([^\]\n]+)\]\(([^()\s]+)\)")
_LIST_ITEM = re.compile(r"^\s*[-*]\s+")
# what a link may point to: the web, or a place in this registry (no javascript:, data:, //other-host)
_SAFE_URL = re.compile(r"^(?:https?://|/(?!/)|#)", re.IGNORECASE)


def inline(text: str) -> Markup:
    """One line's `code`, **bold** and [links](url), the rest escaped."""
    out, at = [], 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[at : match.start()]))
        code, bold, label, url = match.groups()
        if code is not None:
            out.append(Markup("<code>%s</code>") % code)
        elif bold is not None:
            out.append(Markup("<strong>%s</strong>") % inline(bold))
        elif _SAFE_URL.match(url):
            out.append(Markup('<a href="%s">%s</a>') % (url, inline(label)))
        else:  # an unsafe target: the words stay, the link goes
            out.append(inline(label))
        at = match.end()
    out.append(escape(text[at:]))
    return Markup("").join(out)


def render(text: str) -> Markup:
    """Blocks separated by blank lines: paragraphs, and lists whose items start with `- ` (a list may
    follow a paragraph's lines directly, as in CommonMark; an item goes on until the next one starts)."""
    html = []
    for block in re.split(r"\n\s*\n", text.strip()):
        paragraph: list[str] = []
        items: list[str] = []
        for line in (line.strip() for line in block.splitlines()):
            if _LIST_ITEM.match(line):
                items.append(_LIST_ITEM.sub("", line))
            elif items:
                items[-1] += " " + line
            elif line:
                paragraph.append(line)
        if paragraph:
            html.append(Markup("<p>%s</p>") % inline(" ".join(paragraph)))
        if items:
            html.append(
                Markup("<ul>%s</ul>") % Markup("").join(Markup("<li>%s</li>") % inline(x) for x in items)
            )
    return Markup("\n").join(html)
