"""JSON and plain-text previews: JSON pretty-printed when small enough to parse, else shown as written;
text as UTF-8 (bad bytes as U+FFFD), its first MAX_BYTES."""

from __future__ import annotations

import json

from app.model.sizes import human_size
from app.previews.base import NotPreviewable, Preview, Read, decode_text, looks_binary, read_bytes

MAX_BYTES = 64 * 1024  # text shown
JSON_PARSE_BYTES = 256 * 1024  # JSON up to this size is parsed and pretty-printed


def preview_text(size: int, read: Read) -> Preview:
    """The first MAX_BYTES as text; NotPreviewable for binary data."""
    data = read_bytes(read, 0, min(size, MAX_BYTES))
    if looks_binary(data):
        raise NotPreviewable("It holds binary data (NUL bytes), not text.")
    cut = size > len(data)
    note = f"Its first {human_size(len(data))} of {human_size(size)}." if cut else ""
    return Preview(kind="text", note=note, text=decode_text(data, cut=cut), bytes_read=len(data))


def preview_json(size: int, read: Read) -> Preview:
    """Pretty-printed (its first MAX_BYTES of that) when at most JSON_PARSE_BYTES; larger, its first
    MAX_BYTES as written; NotPreviewable when it does not parse."""
    if size > JSON_PARSE_BYTES:
        shown = preview_text(size, read)
        note = f"Too large to pretty-print here (over {human_size(JSON_PARSE_BYTES)}); as written. "
        return Preview(kind="json", note=note + shown.note, text=shown.text, bytes_read=shown.bytes_read)
    data = read_bytes(read, 0, size)
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise NotPreviewable("It is not UTF-8 text, so not JSON.") from e
    except json.JSONDecodeError as e:
        raise NotPreviewable(f"It is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}).") from e
    except RecursionError as e:
        raise NotPreviewable("It nests too deeply to show.") from e
    pretty = json.dumps(value, indent=2, ensure_ascii=False)
    cut = len(pretty) > MAX_BYTES
    note = f"Its first {human_size(MAX_BYTES)}, pretty-printed." if cut else ""
    return Preview(kind="json", note=note, text=pretty[:MAX_BYTES], bytes_read=len(data))
