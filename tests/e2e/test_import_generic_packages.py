"""Coming over from the hack: the real `dvc` pushes a repository into the simulated GitLab's generic
packages (DVC's http remote with `method PUT`, exactly as users did), `data-registry
import-generic-packages` copies it into the registry, and `dvc pull` from the registry is byte-identical.
Also: a second run copies nothing, a run killed half-way and run again completes, GitLab's 429s slow it
down but it completes, `--dry-run` writes nothing, and a token without access is told so. Against a
hostile GitLab: its redirects to object storage and its next-page links reach no other origin with the
token, and a file whose bytes are not GitLab's md5 is named, taken out of the registry, and fails the run."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Request, Response

from scripts.harness import BIN, RegistryServer, Simulator, serve_in_thread, start_registry
from tests.conftest import TOKENS
from tests.e2e.dvc import Dvc, same_tree

pytestmark = pytest.mark.e2e
DEV = TOKENS["developer"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry"), gitlab.url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hack(gitlab: Simulator, tmp_path_factory: pytest.TempPathFactory) -> tuple[Dvc, str]:
    """A DVC repository pushed into ml/vision's generic packages: 60 small files in a directory, one
    30 MB file, and a lone small file."""
    root = tmp_path_factory.mktemp("hack") / "repo"
    (root / "data" / "nested").mkdir(parents=True)
    for i in range(60):
        (root / "data" / ("nested" if i % 2 else "") / f"{i}.txt").write_bytes(os.urandom(50 + i * 13))
    (root / "weights.bin").write_bytes(os.urandom(30 * 1024 * 1024))
    (root / "notes.md").write_text("# notes\n")
    dvc = Dvc(root)
    dvc.run("init", "--no-scm")
    dvc.run("add", "data", "weights.bin", "notes.md")
    source = f"{gitlab.url}/api/v4/projects/101/packages/generic/dvc"
    dvc.run("remote", "add", "-d", "gitlab", source)
    dvc.run("remote", "modify", "gitlab", "method", "PUT")
    dvc.run("remote", "modify", "gitlab", "auth", "custom")
    dvc.run("remote", "modify", "gitlab", "custom_auth_header", "PRIVATE-TOKEN")
    dvc.run("remote", "modify", "--local", "gitlab", "password", DEV)
    assert "63 files pushed" in dvc.run("push").stdout  # 61 files, the .dir, and the rest
    return dvc, source


def importer(source: str, dest: str, *args: str, token: str = DEV) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "data-registry", "import-generic-packages", source, dest, "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k != "GITLAB_TOKEN"},
    )


def stored(registry: RegistryServer, prefix: str) -> list[str]:
    return registry.stored_keys(f"projects/101/{prefix}/")


def test_import_then_pull_from_the_registry(
    registry: RegistryServer, gitlab: Simulator, hack: tuple[Dvc, str], tmp_path: Path
) -> None:
    dvc, source = hack
    dest = f"{registry.url}/ml/vision/-/data/imported"
    dry = importer(source, dest, "--dry-run")
    assert dry.returncode == 0 and "63 files under" in dry.stdout and "would copy files/md5/" in dry.stdout
    assert stored(registry, "imported") == []  # a dry run writes nothing

    started = time.monotonic()
    done = importer(source, dest, "--jobs", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "copied 63 files, skipped 0 already there, 0 failed, 0 missing" in done.stdout
    assert f"dvc remote modify <remote> url {dest}" in done.stdout
    assert len(stored(registry, "imported")) == 63
    assert time.monotonic() - started < 300

    again = importer(source, dest)
    assert again.returncode == 0 and "63 already in the registry, 0 to copy" in again.stdout  # nothing moves

    clone = tmp_path / "clone"
    shutil.copytree(
        dvc.root, clone, ignore=shutil.ignore_patterns("cache", "data", "weights.bin", "notes.md")
    )
    pulled = Dvc(clone)
    pulled.add_remote("registry", dest, auth="bearer", token=DEV)
    pulled.run("pull", "-r", "registry")
    assert same_tree(dvc.root / "data", clone / "data")
    assert filecmp.cmp(dvc.root / "weights.bin", clone / "weights.bin", shallow=False)
    assert (clone / "notes.md").read_text() == "# notes\n"


def test_a_killed_import_completes_when_run_again(
    registry: RegistryServer, gitlab: Simulator, hack: tuple[Dvc, str]
) -> None:
    _, source = hack
    dest = f"{registry.url}/ml/vision/-/data/killed"
    run = subprocess.Popen(
        [BIN / "data-registry", "import-generic-packages", source, dest, "--token", DEV, "--jobs", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(stored(registry, "killed")) < 10:
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    partial = len(stored(registry, "killed"))
    assert 10 <= partial < 63
    done = importer(source, dest)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{partial} already in the registry" in done.stdout or "already in the registry" in done.stdout
    assert len(stored(registry, "killed")) == 63


def test_gitlab_rate_limiting_slows_it_but_it_completes(
    registry: RegistryServer, gitlab: Simulator, hack: tuple[Dvc, str]
) -> None:
    _, source = hack
    dest = f"{registry.url}/ml/vision/-/data/throttled"
    world = gitlab.world
    world.fault, world.fault_count, world.fault_retry_after = 429, 6, 1  # "slow down" 6 times, 1 s each
    try:
        started = time.monotonic()
        done = importer(source, dest, "--jobs", "8")
        took = time.monotonic() - started
    finally:
        world.fault, world.fault_count, world.fault_retry_after = None, None, 7
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GitLab asked to slow down or failed 6 times (retried)" in done.stdout
    assert took >= 6 / 8  # it waited as asked (eight copies at a time share the six seconds)
    assert len(stored(registry, "throttled")) == 63


def test_memory_stays_bounded_with_a_large_file(registry: RegistryServer, hack: tuple[Dvc, str]) -> None:
    """The 30 MB file streams through: the importer's resident memory stays far below it."""
    _, source = hack
    run = subprocess.Popen(
        [
            BIN / "data-registry",
            "import-generic-packages",
            source,
            f"{registry.url}/ml/vision/-/data/rss",
            "--token",
            DEV,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process, peak = psutil.Process(run.pid), 0
    while run.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    assert run.returncode == 0
    assert peak < 100 * 1024 * 1024, peak  # Python, requests and 8 × 1 MiB chunks in flight


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (TOKENS["outsider"], "GitLab knows no such project, or the token cannot see it (404)"),
        ("glpat-not-a-real-token", "GitLab refused the token (401)"),
    ],
)
def test_a_token_without_access_is_told_so(
    registry: RegistryServer, hack: tuple[Dvc, str], token: str, problem: str
) -> None:
    _, source = hack
    done = importer(source, f"{registry.url}/ml/vision/-/data/refused", token=token)
    assert done.returncode == 1 and problem in done.stderr, done.stderr


def test_wrong_urls_are_named(registry: RegistryServer) -> None:
    done = importer("https://gitlab.example.com/ml/vision", f"{registry.url}/ml/vision/-/data/x")
    assert done.returncode == 2 and "Not a generic packages URL" in done.stderr


CREDENTIALS = ("Private-Token", "Authorization", "Job-Token", "Deploy-Token", "Cookie")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass
class Hostile:
    """A GitLab that is not to be trusted, serving generic package files (`version/file_name` → (the bytes
    it sends, the md5 it lists)). It redirects downloads to a bucket on another origin (`bucket`, the
    base URL of another Hostile), names a next page on another origin (`next_page`), sets a session
    cookie, and records every request: (host, path, headers)."""

    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    bucket: str | None = None
    next_page: str | None = None
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        self.seen.append((request.host, request.full_path, dict(request.headers)))
        return self.answer(request)(environ, start_response)

    def answer(self, request: Request) -> Response:
        path = request.path
        prefix = "/api/v4/projects/101/packages"
        versions = sorted({key.split("/", 1)[0] for key in self.files})
        if path == prefix:
            listed = [{"id": i + 1, "name": "dvc", "version": v} for i, v in enumerate(versions)]
            if not self.next_page:
                return self.json(listed)
            if request.args.get("page") == "2":
                return self.json(listed[1:])
            response = self.json(listed[:1])
            response.headers["Link"] = f'<{self.next_page}{prefix}?page=2&per_page=100>; rel="next"'
            return response
        if path.startswith(prefix + "/") and path.endswith("/package_files"):
            version = versions[int(path.split("/")[-2]) - 1]
            listed = [
                {"id": i + 1, "file_name": key.split("/", 1)[1], "size": len(sent), "file_md5": listed_md5}
                for i, (key, (sent, listed_md5)) in enumerate(sorted(self.files.items()))
                if key.startswith(version + "/")
            ]
            return self.json(listed)
        if path.startswith(prefix + "/generic/dvc/"):
            key = path.removeprefix(prefix + "/generic/dvc/")
            if self.bucket:  # GitLab sends package files from object storage with a signed URL
                return Response(
                    status=302, headers={"Location": f"{self.bucket}/b/{key}?X-Amz-Signature=f00"}
                )
            return Response(self.files[key][0])
        if path.startswith("/b/"):  # the bucket
            return Response(self.files[path.removeprefix("/b/")][0])
        return Response(status=404)

    @staticmethod
    def json(value: Any) -> Response:
        response = Response(json.dumps(value), mimetype="application/json")
        response.set_cookie("_gitlab_session", "s3cret-session")
        return response

    def credentials_outside(self, origin: str) -> list[tuple[str, str, str]]:
        """Every credential header this server received under another host than `origin`'s."""
        host = origin.removeprefix("http://")
        return [
            (seen_host, path, name)
            for seen_host, path, headers in self.seen
            if seen_host != host
            for name in CREDENTIALS
            if name in headers
        ]


@pytest.fixture
def serve() -> Iterator[Callable[[Hostile], str]]:
    """Start a Hostile on 127.0.0.1 (a free port: its own origin); its base URL."""
    started: list[BaseWSGIServer] = []

    def start(app: Hostile) -> str:
        started.append(serve_in_thread(app))
        return f"http://127.0.0.1:{started[-1].server_port}"

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def dvc_file(seed: int) -> tuple[str, bytes]:
    body = f"file {seed}\n".encode() * (seed + 1)
    digest = md5(body)
    return f"files/md5/{digest[:2]}/{digest[2:]}", body


def in_registry(registry: RegistryServer, url: str) -> int:
    return requests.head(
        url, headers={"Authorization": f"Bearer {TOKENS['maintainer']}"}, timeout=30
    ).status_code


def test_downloads_redirected_to_object_storage_get_no_token(
    registry: RegistryServer, serve: Callable[[Hostile], str]
) -> None:
    """GitLab answers package downloads with a redirect to a signed URL on another origin (another port,
    and the same port under another host name): the files come, the token and cookies do not."""
    files = dict(dvc_file(i) for i in range(3))
    bucket = Hostile({key: (body, md5(body)) for key, body in files.items()})
    bucket_url = serve(bucket)
    gitlab = Hostile(bucket.files, bucket=bucket_url)
    gitlab_url = serve(gitlab)
    source = f"{gitlab_url}/api/v4/projects/101/packages/generic/dvc"
    dest = f"{registry.url}/ml/vision/-/data/redirected"
    for token in (DEV, "glcbt-a-job-token-00001"):  # Private-Token, then Job-Token to GitLab
        done = importer(source, dest, "--dest-token", DEV, token=token)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "Everything is in the registry" in done.stdout
    assert all(in_registry(registry, f"{dest}/{key}") == 200 for key in files)
    assert len([path for _, path, _ in bucket.seen if path.startswith("/b/")]) == 3
    assert bucket.credentials_outside("") == []  # nothing at all on the bucket's origin
    gitlab.bucket = f"http://localhost:{gitlab_url.rsplit(':', 1)[1]}"  # the same port, another host
    done = importer(source, f"{registry.url}/ml/vision/-/data/redirected-by-name")
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(host.startswith("localhost:") for host, _, _ in gitlab.seen)
    assert gitlab.credentials_outside(gitlab_url) == []


def test_a_next_page_on_another_origin_is_refused(
    registry: RegistryServer, serve: Callable[[Hostile], str]
) -> None:
    """A package list whose `Link: rel="next"` names another origin: the import stops there and says so;
    the token never goes to that origin."""
    (first, one), (second, two) = dvc_file(10), dvc_file(11)
    gitlab = Hostile({first: (one, md5(one)), "other/" + second: (two, md5(two))})
    gitlab_url = serve(gitlab)
    gitlab.next_page = f"http://localhost:{gitlab_url.rsplit(':', 1)[1]}"
    done = importer(
        f"{gitlab_url}/api/v4/projects/101/packages/generic/dvc",
        f"{registry.url}/ml/vision/-/data/paged",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "names its next page on another origin (http://localhost:" in done.stderr
    assert "Everything is in the registry" not in done.stdout
    assert gitlab.credentials_outside(gitlab_url) == []


@pytest.mark.parametrize(
    ("role", "outcome"),
    [
        ("maintainer", "it was removed from the registry again"),
        ("developer", "the registry refused to remove it (403: "),
    ],
)
def test_a_file_whose_bytes_differ_is_named_and_not_kept(
    registry: RegistryServer, serve: Callable[[Hostile], str], role: str, outcome: str
) -> None:
    """GitLab sends other bytes than the md5 it lists for a file outside DVC's content-addressed layout
    (the registry cannot tell): the run names the file, removes it from the registry (a Maintainer's
    token may; a Developer's is told it may not), never says everything is there, and exits 1."""
    key, body = dvc_file(20)
    run_cache, listed = "runs/ab/cdef0123/4567", md5(b"the bytes GitLab stored")
    gitlab = Hostile({key: (body, md5(body)), run_cache: (b"other bytes", listed)})
    source = f"{serve(gitlab)}/api/v4/projects/101/packages/generic/dvc"
    dest = f"{registry.url}/ml/vision/-/data/mismatch-{role}"
    done = importer(source, dest, "--dest-token", TOKENS[role])
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert (
        f"failed: {run_cache}: md5 differs (GitLab lists {listed}, GitLab sent {md5(b'other bytes')}" in said
    )
    assert outcome in said
    assert "Everything is in the registry" not in said
    assert in_registry(registry, f"{dest}/{key}") == 200
    if role == "maintainer":
        assert in_registry(registry, f"{dest}/{run_cache}") == 404
    else:
        assert "Maintainer" in said and f"delete {dest}/{run_cache} yourself" in said
