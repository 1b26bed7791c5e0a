"""The installed `data-registry` against the registry under gunicorn: a download into a directory takes the
object's name there (a missing `dir/` is said before anything moves); a Ctrl-C (SIGINT) once bytes are
moving, during an upload and during a download, ends with exit 130 and one line on stderr, and the same
command then finishes the transfer with the right bytes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.harness import BIN, RegistryServer
from tests.conftest import TOKENS

pytestmark = pytest.mark.e2e
SIZE = 256 * 2**20  # big enough that a loopback transfer is still running when the signal comes
INTERRUPTED = "data-registry: interrupted — run the same command to resume\n"


def environ() -> dict[str, str]:
    gone = ("GITLAB_TOKEN", "DATA_REGISTRY_TOKEN", "CI_JOB_TOKEN")
    return {k: v for k, v in os.environ.items() if k not in gone}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "data-registry", *args, "--token", TOKENS["developer"]],
        env=environ(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def interrupted(args: list[str], moving: Callable[[int], bool]) -> subprocess.CompletedProcess[str]:
    """The command, sent one SIGINT as soon as `moving(pid)` says its bytes are on the way."""
    run = subprocess.Popen(
        [BIN / "data-registry", *args, "--token", TOKENS["developer"]],
        env=environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not moving(run.pid):
        assert run.poll() is None and time.monotonic() < deadline, "the transfer never started"
        time.sleep(0.005)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)
    return subprocess.CompletedProcess(run.args, run.returncode, out, err)


def read_bytes_of(pid: int) -> int:
    """What the process has read so far (files and sockets), from /proc/<pid>/io."""
    try:
        fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    except OSError:
        return 0
    return int(fields["rchar"])


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(2**22):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    file = tmp_path_factory.mktemp("big") / "weights.bin"
    with file.open("wb") as f:
        for _ in range(SIZE // 2**24):
            f.write(os.urandom(2**24))
    return file


def test_sigint_during_an_upload_then_the_same_command_finishes(registry: RegistryServer, big: Path) -> None:
    url = f"{registry.url}/ml/vision/-/data/signals/up.bin"
    state = big.parent / "weights.bin.registry-upload"
    # the file is read once to hash it, then again as it is sent: past that, bytes are moving
    stopped = interrupted(["upload", str(big), url], lambda pid: read_bytes_of(pid) > SIZE + 16 * 2**20)
    assert stopped.returncode == 130, stopped.stdout + stopped.stderr
    assert stopped.stderr == INTERRUPTED
    assert state.exists()  # what the next run resumes from
    again = cli("upload", str(big), url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming: 0 parts already sent" in again.stdout and "stored: signals/up.bin" in again.stdout
    assert not state.exists()
    copy = big.parent / "up-copy.bin"
    assert cli("download", url, str(copy)).returncode == 0 and md5(copy) == md5(big)
    copy.unlink()


def test_sigint_during_a_download_then_the_same_command_resumes(
    registry: RegistryServer, big: Path, tmp_path: Path
) -> None:
    url = f"{registry.url}/ml/vision/-/data/signals/down.bin"
    assert cli("upload", str(big), url).returncode == 0
    partial = tmp_path / "down.bin.part"

    def moving(_: int) -> bool:
        return partial.exists() and partial.stat().st_size > 8 * 2**20

    stopped = interrupted(["download", url, f"{tmp_path}/"], moving)
    assert stopped.returncode == 130, stopped.stdout + stopped.stderr
    assert stopped.stderr == INTERRUPTED
    kept = partial.stat().st_size
    assert 0 < kept < SIZE  # the partial file stays for the next run
    again = cli("download", url, str(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming at {kept / 2**20:,.1f} MiB" in again.stdout
    assert "were there before this run" in again.stdout  # the rate counts this run's bytes only
    assert md5(tmp_path / "down.bin") == md5(big) and not partial.exists()


def test_a_download_into_a_directory_takes_the_objects_name(registry: RegistryServer, tmp_path: Path) -> None:
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(100_000))
    url = f"{registry.url}/ml/vision/-/data/signals/into/model.bin"
    assert cli("upload", str(small), url).returncode == 0
    target = tmp_path / "out"
    target.mkdir()
    for given in (str(target), f"{target}/"):
        got = cli("download", url, given)
        assert got.returncode == 0, got.stdout + got.stderr
        assert (target / "model.bin").read_bytes() == small.read_bytes()
        assert "1 file, " in got.stdout and "1 files" not in got.stdout
        (target / "model.bin").unlink()
    missing = cli("download", url, f"{tmp_path}/nowhere/")
    assert missing.returncode == 2
    assert missing.stderr == f"data-registry: no such directory: {tmp_path}/nowhere/\n"
    assert missing.stdout == ""  # nothing was fetched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "small.bin"]
