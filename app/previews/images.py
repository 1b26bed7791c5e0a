"""Image previews: PNG, JPEG, GIF, WebP and SVG inline as a data: URL. The page's CSP already allows
data: images, nothing new is served from this origin (an SVG opened as a document could run script;
inside <img> it cannot), and a bucket on another origin never needs allowing; hence a size cap."""

from __future__ import annotations

import base64

from app.model.sizes import human_size
from app.previews.base import NotPreviewable, Preview, Read, read_bytes

MAX_BYTES = 2 * 1024 * 1024  # a data: URL adds a third to the page
TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
}


def preview_image(extension: str, size: int, read: Read) -> Preview:
    """The whole image as a data: URL when it is at most MAX_BYTES and its bytes are of its type."""
    if size > MAX_BYTES:
        raise NotPreviewable(f"Images over {human_size(MAX_BYTES)} are not shown here; download it.")
    data = read_bytes(read, 0, size)
    if not _is(extension, data):
        raise NotPreviewable(f"Its bytes are not a {extension.upper()} image.")
    encoded = base64.b64encode(data).decode("ascii")
    return Preview(kind="image", image_url=f"data:{TYPES[extension]};base64,{encoded}", bytes_read=len(data))


def _is(extension: str, data: bytes) -> bool:
    """The file's signature matches its extension (SVG: an <svg element in it)."""
    if extension == "png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if extension in ("jpg", "jpeg"):
        return data.startswith(b"\xff\xd8\xff")
    if extension == "gif":
        return data.startswith((b"GIF87a", b"GIF89a"))
    if extension == "webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return b"<svg" in data.lower()
