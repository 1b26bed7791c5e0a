"""The transfer commands' progress as it is rendered: on a terminal (rich, a fake clock) and without one
(CI: one summary line). A resumed transfer's rate counts only this run's bytes over this run's time; one
file is "1 file"."""

from __future__ import annotations

import io
import re

from rich.console import Console

from app.client.progress import TransferProgress

MiB = 2**20


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def terminal() -> tuple[io.StringIO, Console]:
    out = io.StringIO()
    return out, Console(file=out, force_terminal=True, width=110, color_system=None)


def last_frame(rendered: str) -> str:
    """What a terminal shows at the end: rich's last redraw (after its last line erase), then the rest."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", rendered.rsplit("\r\x1b[2K", 1)[-1])


def resumed_upload(out: io.StringIO, console: Console | None = None) -> None:
    """15 of 20 MiB sent before; this run sends the other 5 MiB in 2 s."""
    clock = Clock()
    with TransferProgress(
        out, files=1, size=20 * MiB, done_size=15 * MiB, console=console, clock=clock
    ) as progress:
        line = progress.start("weights.bin", 20 * MiB, done=15 * MiB)
        for _ in range(5):
            clock.now += 0.4
            progress.advance(line, MiB)
        progress.finish(line)


def test_a_resumed_transfer_reports_this_runs_rate() -> None:
    out = io.StringIO()
    resumed_upload(out)
    assert out.getvalue() == (
        "1 file, 5.2 MB in 2.0 s (2.6 MB/s); 15.7 MB of 21.0 MB were there before this run\n"
    )


def test_a_resumed_transfer_on_a_terminal() -> None:
    out, console = terminal()
    resumed_upload(out, console)
    shown = last_frame(out.getvalue()).splitlines()
    assert re.fullmatch(r"weights\.bin ━+ 21\.0/21\.0 MB 2\.6 MB/s 0:00:00", shown[0].rstrip()), shown
    assert shown[1].startswith("1 file, 5.2 MB in 2.0 s (2.6 MB/s)")
    assert "1/1" not in out.getvalue()


def test_several_files_on_a_terminal_and_in_ci() -> None:
    for out, console in (terminal(), (io.StringIO(), None)):
        clock = Clock()
        with TransferProgress(out, files=3, size=3 * MiB, console=console, clock=clock) as progress:
            for name in ("a", "b", "c"):
                line = progress.start(name, MiB)
                clock.now += 1
                progress.advance(line, MiB)
                progress.finish(line)
        said = last_frame(out.getvalue()).splitlines()
        assert said[-1] == "3 files, 3.1 MB in 3.0 s (1.0 MB/s)"
        if console is None:
            assert len(said) == 1  # CI: no redrawn lines, the summary only
        else:
            assert said[0].startswith("3 files ━")  # the whole run's line; the files' lines went
            assert len(said) == 2


def test_a_run_with_missing_files_says_how_many() -> None:
    out = io.StringIO()
    with TransferProgress(out, files=3, size=3, clock=Clock()) as progress:
        progress.finish(progress.start("a", 1))
    assert out.getvalue().startswith("1/3 files, 0 bytes in")
