"""Progress of the transfer commands with rich: on a terminal one line per file in flight (bytes, rate,
ETA) under a line for the whole run; without one (CI) nothing until a one-line summary. Rates count only
what this run moved, over this run's time: a resumed transfer does not count what was there before."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

Line = TaskID | None  # a file's line on a terminal; None without one


def counted(number: int, thing: str) -> str:
    """ "1 part", "2 parts", "1,024 files": a count with its noun in the right number."""
    return f"{number:,} {thing}" + ("" if number == 1 else "s")


def files_said(done: int, total: int) -> str:
    """ "1 file", "63 files", or "61/63 files" when some are missing."""
    if done == total:
        return counted(total, "file")
    return f"{done:,}/{total:,} files"


class TransferProgress:
    """Files and bytes of one command's run. `done_files`/`done_size` were done before this run (a resume):
    they show in the totals, not in the rate."""

    def __init__(
        self,
        out: TextIO,
        *,
        files: int,
        size: int,
        done_files: int = 0,
        done_size: int = 0,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out, self.clock = out, clock
        self.files, self.size, self.done_files, self.done_size = files, size, done_files, done_size
        self.moved = 0  # bytes this run
        self.started = clock()
        self._lock = threading.Lock()
        console = console or Console(file=out)
        self._bar: Progress | None = None
        self._total: TaskID | None = None
        if console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console,
                get_time=clock,
            )
            if files > 1:
                self._total = self._bar.add_task(
                    files_said(done_files, files), total=size, completed=done_size
                )

    def start(self, name: str, size: int, done: int = 0) -> Line:
        """A line for one file (on a terminal; several files: it goes when the file is done)."""
        if self._bar is None:
            return None
        return self._bar.add_task(name, total=size, completed=done)

    def advance(self, line: Line, size: int) -> None:
        """`size` more bytes of a file moved in this run."""
        with self._lock:
            self.moved += size
        if self._bar is not None:
            if line is not None:
                self._bar.advance(line, size)
            if self._total is not None:
                self._bar.advance(self._total, size)

    def finish(self, line: Line) -> None:
        """One more file done."""
        with self._lock:
            self.done_files += 1
            done = self.done_files
        if self._bar is not None and self._total is not None:
            if line is not None:
                self._bar.remove_task(line)
            self._bar.update(self._total, description=files_said(done, self.files))

    def summary(self) -> str:
        """The run in one line: files, bytes moved in this run, its time and rate."""
        elapsed = max(self.clock() - self.started, 1e-3)
        line = (
            f"{files_said(self.done_files, self.files)}, {decimal(self.moved)} in {elapsed:,.1f} s"
            f" ({decimal(int(self.moved / elapsed))}/s)"
        )
        if self.done_size:
            line += f"; {decimal(self.done_size)} of {decimal(self.size)} were there before this run"
        return line

    def __enter__(self) -> TransferProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        if kind is None:
            print(self.summary(), file=self.out, flush=True)
