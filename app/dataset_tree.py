"""A directory dataset's `.dir` manifest as a tree, built once per manifest: each folder's sub-folders and
files, a file's path by its md5, and a search by part of a path across the whole dataset. No I/O here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ManifestTree:
    """The files a manifest lists, sorted by relpath, and what each folder ("" the top) holds."""

    entries: list[tuple[str, str]]  # (relpath, md5), sorted by relpath
    folders: dict[str, list[str]] = field(default_factory=dict)  # folder -> its sub-folders' names, sorted
    files: dict[str, list[int]] = field(default_factory=dict)  # folder -> its files (indexes into entries)
    by_md5: dict[str, str] = field(default_factory=dict)  # md5 -> the first relpath listing it
    folded: list[str] = field(default_factory=list)  # each relpath casefolded, for search

    @classmethod
    def of(cls, entries: list[tuple[str, str]]) -> ManifestTree:
        """The tree of (relpath, md5) pairs."""
        entries = sorted(entries)
        subfolders: dict[str, set[str]] = {}
        files: dict[str, list[int]] = {}
        by_md5: dict[str, str] = {}
        linked: set[str] = set()  # folders already named in their parent
        for i, (relpath, md5) in enumerate(entries):
            folder, _, _ = relpath.rpartition("/")
            files.setdefault(folder, []).append(i)
            by_md5.setdefault(md5, relpath)
            while folder and folder not in linked:  # up to the first folder already named
                linked.add(folder)
                parent, _, name = folder.rpartition("/")
                subfolders.setdefault(parent, set()).add(name)
                folder = parent
        folders = {folder: sorted(names) for folder, names in subfolders.items()}
        return cls(entries, folders, files, by_md5, [relpath.casefold() for relpath, _ in entries])

    @classmethod
    def parse(cls, raw: bytes) -> ManifestTree:
        """The tree of a manifest's bytes (`[{"md5": ..., "relpath": ...}, ...]`); empty when unreadable."""
        try:
            listed = json.loads(raw)
        except (ValueError, RecursionError):
            return cls([])
        if not isinstance(listed, list):
            return cls([])
        return cls.of(
            [
                (e["relpath"], e["md5"])
                for e in listed
                if isinstance(e, dict) and isinstance(e.get("relpath"), str) and isinstance(e.get("md5"), str)
            ]
        )

    def subfolders(self, folder: str) -> list[str]:
        """The names of a folder's sub-folders."""
        return self.folders.get(folder.strip("/"), [])

    def files_in(self, folder: str, offset: int, limit: int) -> tuple[list[tuple[str, str]], int]:
        """A page of the (relpath, md5) of the files directly in a folder, and how many it has."""
        listed = self.files.get(folder.strip("/"), [])
        return [self.entries[i] for i in listed[offset : offset + limit]], len(listed)

    def search(self, text: str, offset: int, limit: int) -> tuple[list[tuple[str, str]], int]:
        """A page of the files whose relpath contains the text (case-insensitive), in relpath order, and
        how many do."""
        needle = text.casefold()
        found = [i for i, relpath in enumerate(self.folded) if needle in relpath]
        return [self.entries[i] for i in found[offset : offset + limit]], len(found)
