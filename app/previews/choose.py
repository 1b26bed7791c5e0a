"""Which preview a file gets, by the extension of its name (a dataset file's name in the repository, not
its content address), and the no-preview answer (with the reason) for everything else."""

from __future__ import annotations

from app.errors import NotFound, StorageUnavailable
from app.model.sizes import human_size
from app.previews.base import NotPreviewable, Preview, Read
from app.previews.delimited import preview_delimited
from app.previews.images import TYPES as IMAGE_TYPES
from app.previews.images import preview_image
from app.previews.markdown import preview_markdown
from app.previews.parquet import preview_parquet
from app.previews.text import preview_json, preview_text

DELIMITED = {"csv": None, "tsv": "\t", "tab": "\t"}
MARKDOWN = {"md", "markdown"}
TEXT = {
    "txt", "text", "log", "jsonl", "ndjson", "yaml", "yml", "toml", "ini", "cfg", "conf", "xml", "html",
    "py", "r", "sh", "sql", "rst", "tex", "dvc", "lock", "gitignore", "dvcignore", "env",
}  # fmt: skip


def extension(name: str) -> str:
    """The lower-case extension of a file name ("" for README, and for .bashrc-like names: "bashrc")."""
    base = name.rpartition("/")[2]
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and (stem or ext) else ""


def preview(name: str, size: int, read: Read) -> Preview:
    """The preview of a file named `name` of `size` bytes; kind none with the reason when there is none."""
    ext = extension(name)
    if size == 0:
        return Preview(kind="none", note="The file is empty.")
    try:
        return _preview(ext, size, read)
    except NotPreviewable as e:
        return Preview(kind="none", note=str(e))
    except (StorageUnavailable, NotFound):
        return Preview(kind="none", note="Its bytes could not be read from storage just now.")


def _preview(ext: str, size: int, read: Read) -> Preview:
    if ext in DELIMITED:
        return preview_delimited(size, read, delimiter=DELIMITED[ext])
    if ext in ("parquet", "pq"):
        return preview_parquet(size, read)
    if ext in IMAGE_TYPES:
        return preview_image(ext, size, read)
    if ext in MARKDOWN:
        return preview_markdown(size, read)
    if ext == "json":
        return preview_json(size, read)
    if ext in TEXT or not ext:
        return preview_text(size, read)  # a name without extension (README, LICENSE): text unless binary
    raise NotPreviewable(f"There is no preview for .{ext} files ({human_size(size)}).")
