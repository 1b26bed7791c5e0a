"""What ships, as the Dockerfile installs it (no Docker daemon here): the sdist and the wheel carry every file
of app/ (templates, static files, migrations); the wheel, installed with [server,postgresql] at the pins of
requirements.txt into a clean venv, runs `data-registry db upgrade` and serves health, readiness, the
badge, the pages, the static files and the API description. And the Dockerfile names what exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from scripts.harness import Simulator, free_port, stop_process
from tests.e2e.distributions import Distributions, built_distributions, source_files, unrequired_distributions

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        bool(os.environ.get("REGISTRY_TEST_POSTGRES_URL")),
        reason="independent of the index: SQLite pass only",
    ),
]
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    return built_distributions(tmp_path_factory)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, dists: Distributions) -> Path:
    """A clean venv with the built wheel and its server extras, as the Dockerfile installs them."""
    venv = tmp_path_factory.mktemp("installed") / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pins, wheel = ROOT / "requirements.txt", f"{dists.wheel}[server,postgresql]"
    pip = subprocess.run(
        [venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", "-r", pins, wheel],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    return venv


@pytest.fixture(scope="module")
def served(venv: Path, gitlab: Simulator) -> Iterator[tuple[str, Path]]:
    """`data-registry db upgrade`, then `data-registry serve`, both from the venv, run outside the tree."""
    home = venv.parent
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "REGISTRY_STORAGE_URL": f"file://{home / 'data'}",
        "REGISTRY_GITLAB_URL": gitlab.url,
    }
    upgrade = subprocess.run(
        [venv / "bin" / "data-registry", "db", "upgrade"], env=env, capture_output=True, text=True, cwd=home
    )
    assert upgrade.returncode == 0, upgrade.stderr
    port = free_port()
    with (home / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [venv / "bin" / "data-registry", "serve", f"--bind=127.0.0.1:{port}", "--workers=1"],
            env=env,
            stdout=log,
            stderr=log,
            cwd=home,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{url}/-/health", timeout=2)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        yield url, home / "serve.log"
    finally:
        stop_process(server, timeout=30)


def test_dockerfile_builds_and_installs_the_wheel() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for name in source.split():
            assert (ROOT / name).exists(), name
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert 'ENTRYPOINT ["data-registry"]' in dockerfile and "data-registry" in scripts
    assert re.search(r"^USER 10001", dockerfile, re.M)  # non-root, the chart's runAsUser
    assert 'CMD ["serve"' in dockerfile
    build = dockerfile.split(" AS build\n", 1)[1].split("\nFROM ", 1)[0]
    assert re.search(r"pip wheel .*--no-deps .*--wheel-dir /dist \.", build)  # the wheel, as in `dists`
    # that wheel with the server (the plain install is the client only), at the pins, as in `venv`
    assert re.search(r'pip install .*-r requirements\.txt "\$\{wheel\}\[server,postgresql\]"', build)
    assert not re.search(r"pip install [^\n]*[\"' ]\.(\[|[\"' ]|$)", build, re.M)  # never from the tree


def test_the_wheel_and_the_sdist_carry_every_file_of_the_package(dists: Distributions) -> None:
    tree = source_files("app")
    assert (
        "app/web/templates/badge.svg" in tree
        and "app/db/migrations/versions/0001_projects_and_objects.py" in tree
    )
    assert sorted(tree - dists.wheel_files()) == []
    assert sorted(tree - dists.sdist_files()) == []
    assert not [name for name in dists.wheel_files() if "__pycache__" in name or name.endswith(".pyc")]


def test_the_venv_runs_the_installed_package_with_only_its_dependencies(venv: Path) -> None:
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import app; print(app.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=venv.parent,
    ).stdout
    assert where.startswith(str(venv / "lib")), where  # not the tree, not an editable link
    # requirements.txt pins nothing the package does not require (else the image would hide a missing extra)
    assert unrequired_distributions(venv, "server", "postgresql") == set()


def test_the_installed_wheel_serves_health_pages_badge_static_files_and_the_api(
    served: tuple[str, Path],
) -> None:
    url, log = served
    ready = requests.get(f"{url}/-/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "storage": "ok"}
    assert requests.get(f"{url}/-/health", timeout=10).json() == {"status": "ok"}
    badge = requests.get(f"{url}/ml/open-data/-/data/badge.svg", timeout=10)  # a public project, anonymous
    assert badge.status_code == 200, log.read_text(errors="replace")[-3000:]
    assert badge.headers["Content-Type"].startswith("image/svg+xml") and "<svg" in badge.text
    for path, marker in [
        ("/", "<html"),
        ("/ml/open-data/-/data/", "ml/open-data"),
        ("/api/v1/docs", "<html"),
    ]:
        page = requests.get(f"{url}{path}", headers=HTML, timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), path
        assert marker in page.text, path
    for static in ("/-/ui/ui.css", "/api/v1/docs/static/api_docs.css"):
        css = requests.get(f"{url}{static}", timeout=10)
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css"), static
    api = requests.get(f"{url}/api/v1/openapi.json", timeout=10)
    assert api.status_code == 200 and api.json()["openapi"].startswith("3.")
