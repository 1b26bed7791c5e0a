"""The `data-registry` commands that read and change the index: quota, usage, objects ls."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.cli import main
from app.db import build_engine, upgrade
from app.db.index import ObjectIndex
from app.model.projects import Project, Visibility
from scripts.harness import fresh_database_url


def quota_of(index: ObjectIndex, project_id: int) -> tuple[int, int | None]:
    """(bytes used, the project's own quota or None for the default), as the project's record says."""
    record = index.project(project_id)
    assert record is not None
    return record.used_bytes, record.own_quota


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ObjectIndex:
    monkeypatch.setenv("REGISTRY_STORAGE_URL", f"file://{tmp_path}")
    monkeypatch.setenv("REGISTRY_DEFAULT_QUOTA", "1GiB")
    url = fresh_database_url(tmp_path)
    monkeypatch.setenv("REGISTRY_DATABASE_URL", url)
    upgrade(url)
    index = ObjectIndex(build_engine(url))
    with index.writing(Project(101, "ml/vision", Visibility.PRIVATE)) as tx:
        tx.put("dvc/a", size=2048, md5="a" * 32, uploader_id=1)
        tx.put("dvc/b", size=1024, md5="b" * 32, uploader_id=1)
    with index.writing(Project(102, "ml/open-data", Visibility.PUBLIC)) as tx:
        tx.put("x", size=10, md5="c" * 32, uploader_id=1)
    return index


def test_quota_get_and_set(index: ObjectIndex, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quota", "get", "101"]) == 0
    assert "ml/vision (id 101): 3.0 KiB in 2 objects; quota 1.0 GiB (default" in capsys.readouterr().out
    assert main(["quota", "set", "101", "5GiB"]) == 0
    assert "quota 5.0 GiB (set for this project)" in capsys.readouterr().out
    assert quota_of(index, 101) == (3072, 5 * 2**30)
    assert main(["quota", "set", "101", "default"]) == 0
    assert quota_of(index, 101) == (3072, None)
    assert main(["quota", "set", "101", "lots"]) == 2
    assert "not a size" in capsys.readouterr().err
    assert main(["quota", "set", "999", "0"]) == 0  # a project with no data yet
    assert "quota unlimited (set for this project)" in capsys.readouterr().out


def test_usage_lists_projects_by_size(index: ObjectIndex, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["101", "3.0", "KiB", "2", "1.0", "GiB", "ml/vision"]
    assert lines[2].split()[0] == "102"


def test_objects_ls(index: ObjectIndex, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["objects", "ls", "101", "dvc/"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines] == ["dvc/a", "dvc/b"]
    assert lines[0].split()[:2] == ["a" * 32, "2048"]


def test_trash_ls_and_restore(index: ObjectIndex, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name, body in (("dvc/a", b"a" * 2048), ("dvc/b", b"b" * 1024)):  # the blobs the fixture indexed
        (tmp_path / "projects/101" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "projects/101" / name).write_bytes(body)
    with index.writing(Project(101, "ml/vision", Visibility.PRIVATE)) as tx:
        tx.trash_many(["dvc/a"], datetime.now(UTC))
    assert main(["trash", "ls", "101"]) == 0
    listed = capsys.readouterr().out
    assert "dvc/a" in listed and "dvc/b" not in listed and "purged" in listed
    assert main(["trash", "restore", "101", "dvc/zzz"]) == 1
    assert "Not in the trash: dvc/zzz" in capsys.readouterr().err
    assert main(["trash", "restore", "101", "dvc/a"]) == 0
    assert "restored dvc/a" in capsys.readouterr().out
    assert quota_of(index, 101)[0] == 3072
    assert main(["trash", "ls", "999"]) == 1


def test_version_and_help_name_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.startswith("data-registry 0.")
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = capsys.readouterr().out
    for option in ("--bind", "--workers", "--threads", "--worker-class", "--access-log"):
        assert option in help_text
    assert "(default: 0.0.0.0:8080)" in help_text and "(default: 16)" in help_text


def test_json_output(index: ObjectIndex, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["usage", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(p["path"], p["used_bytes"], p["quota_bytes"]) for p in listed] == [
        ("ml/vision", 3072, 2**30),
        ("ml/open-data", 10, 2**30),
    ]
    assert main(["quota", "get", "101", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["id"], got["object_count"], got["quota_origin"]) == (101, 2, "default")
    assert main(["objects", "ls", "101", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(o["path"], o["size"], o["md5"]) for o in lines] == [
        ("dvc/a", 2048, "a" * 32),
        ("dvc/b", 1024, "b" * 32),
    ]


def test_quota_of_an_unknown_project_says_so(index: ObjectIndex, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quota", "get", "999"]) == 1
    assert capsys.readouterr().err == "data-registry: project 999 has no data here\n"


def test_piping_into_head_ends_quietly(index: ObjectIndex, tmp_path: Path) -> None:
    import os
    import subprocess

    from scripts.harness import BIN

    with index.writing(Project(101, "ml/vision", Visibility.PRIVATE)) as tx:
        for i in range(3_000):  # ~300 KB of lines: more than a pipe holds
            tx.put(f"many/{i:05d}", size=1, md5="d" * 32, uploader_id=1)
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; '{BIN / 'data-registry'}' objects ls 101 | head -1"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.count("\n") == 1


@pytest.mark.parametrize(
    ("trusted", "forwarded"), [("10.0.0.0/8,fd00::/8", "10.0.0.0/8,fd00::/8"), ("", None)]
)
def test_serve_trusts_the_same_proxies_in_gunicorn_as_in_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted: str, forwarded: str | None
) -> None:
    """One setting: REGISTRY_TRUSTED_PROXIES is also gunicorn's forwarded_allow_ips, which the worker uses
    to count a proxy's requests by the client they forward for."""
    monkeypatch.setenv("REGISTRY_STORAGE_URL", f"file://{tmp_path}")
    monkeypatch.setenv("REGISTRY_TRUSTED_PROXIES", trusted)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    for name, value in {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "MALLOC_ARENA_MAX": "1"}.items():
        monkeypatch.setenv(name, value)  # what serve sets: restored after the test
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4194304")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "16777216")
    started: list[list[str]] = []
    monkeypatch.setattr("os.execvp", lambda _file, argv: started.append(argv))
    main(["serve", "--bind", "127.0.0.1:0"])
    (argv,) = started
    given = argv[argv.index("--forwarded-allow-ips") + 1] if "--forwarded-allow-ips" in argv else None
    assert given == forwarded


def test_help_lists_the_server_and_the_client_commands_apart(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    server, client = shown.index("server commands"), shown.index("client commands")
    for command in ("serve", "worker", "db", "quota", "usage", "objects", "trash"):
        assert server < shown.index(f"\n  {command} ") < client
    for command in ("doctor", "upload", "download", "import-generic-packages"):
        assert client < shown.index(f"\n  {command} ")


@pytest.fixture
def laptop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine with no server settings: no REGISTRY_* variables, an empty HOME and working directory."""
    for name in list(os.environ):
        if name.startswith("REGISTRY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


DEFAULT_ROOT = Path("/var/lib/data-registry")


@pytest.mark.skipif(DEFAULT_ROOT.exists(), reason="this machine keeps a registry in the default place")
@pytest.mark.parametrize(
    "command",
    [["objects", "ls", "101"], ["usage"], ["quota", "get", "101"], ["quota", "set", "101", "1GiB"],
     ["trash", "ls", "101"], ["trash", "restore", "101", "a"], ["db", "upgrade"], ["worker", "--once"],
     ["serve"]],
)  # fmt: skip
def test_a_server_command_without_settings_says_what_is_missing_and_creates_nothing(
    laptop: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 2
    said = capsys.readouterr()
    assert said.out == "" and said.err.count("\n") == 1
    if command[0] in ("db", "worker", "serve"):  # the commands that set a registry up
        assert said.err.startswith("data-registry: no storage directory /var/lib/data-registry")
        assert "set REGISTRY_STORAGE_URL" in said.err
    else:
        assert said.err == (
            "data-registry: no index at /var/lib/data-registry/registry.db — run this on the registry's"
            " host, or set REGISTRY_DATABASE_URL/REGISTRY_STORAGE_URL\n"
        )
    assert not DEFAULT_ROOT.exists() and list(laptop.iterdir()) == []


def test_a_configured_storage_directory_without_an_index(
    laptop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read commands never create the index, even where the registry would keep it; `db upgrade` does."""
    monkeypatch.setenv("REGISTRY_STORAGE_URL", f"file://{laptop / 'data'}")
    assert main(["objects", "ls", "101"]) == 2
    assert f"no index at {laptop / 'data' / 'registry.db'} — " in capsys.readouterr().err
    assert not (laptop / "data").exists()
    assert main(["db", "upgrade"]) == 0
    assert (laptop / "data" / "registry.db").is_file()
    assert main(["objects", "ls", "101"]) == 0


@pytest.mark.parametrize(
    "command",
    [[], ["doctor"], ["upload"], ["download"], ["import-generic-packages"], ["serve"], ["worker"],
     ["quota", "get"], ["usage"], ["objects", "ls"], ["trash", "ls"], ["db", "upgrade"]],
)  # fmt: skip
def test_help_names_each_default_once(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    shown = capsys.readouterr().out
    assert "(default: None)" not in shown and "(default: False)" not in shown
    for option in re.split(r"\n  (?=-)", shown):  # each option with its help text
        assert option.count("(default:") <= 1, option
