"""Server time of the browser UI's heaviest pages, in-process (the Flask app on SQLite and local disk, the
GitLab simulator on a socket, a signed-in session): a project's datasets page and the first page of a
directory dataset of N files (default 100,000, one folder), and the landing page of a user in 200
projects with data; and GitLab API calls per page view once warm (goal < 300 ms, <= 1 call)."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from flask.testing import FlaskClient

from app import create_app
from app.db import upgrade
from app.settings import load_settings
from scripts.harness import fresh_database_url, start_simulator
from scripts.seed import seed_project

HTML = {"Accept": "text/html"}
DEV = {"Authorization": "Bearer glpat-developer-token-0002"}


def timed(client: FlaskClient, url: str, rounds: int) -> tuple[float, float]:
    """(first view, median of the next `rounds`) in milliseconds."""
    times = []
    for _ in range(rounds + 1):
        started = time.perf_counter()
        answer = client.get(url, headers=HTML)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (url, answer.status_code, answer.get_data(as_text=True)[:300])
    return times[0], statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    gitlab = start_simulator()
    world = gitlab.world
    try:
        world.oauth_apps["sim-registry-app"]["redirect_uri"] = "http://localhost/-/auth/callback"
        settings = {
            "storage_url": f"file://{root / 'storage'}",
            "database_url": fresh_database_url(root),
            "gitlab_url": gitlab.url,
            "oauth_client_id": "sim-registry-app",
            "oauth_client_secret": "gloas-sim-registry-secret",
            "access_log": "false",
        }
        upgrade(load_settings(environ={}, overrides=settings).effective_database_url)
        app = create_app(settings)
        loaded = load_settings(environ={}, overrides=settings)

        objects = seed_project(loaded, 101, "ml/vision", args.files)
        manifest = json.dumps(
            [{"md5": md5, "relpath": f"f{i:06d}.bin"} for i, md5 in enumerate(sorted(objects.values()))]
        ).encode()
        manifest_md5 = hashlib.md5(manifest).hexdigest()
        client = app.test_client()
        stored = client.put(
            f"/ml/vision/-/data/files/md5/{manifest_md5[:2]}/{manifest_md5[2:]}.dir",
            data=manifest,
            headers=DEV,
        )
        assert stored.status_code == 201, stored.get_data(as_text=True)
        world.repositories[101] = {
            "main": {
                ".dvc/config": b"[core]\n    remote = r\n['remote \"r\"']\n    url = http://localhost/ml/vision/-/data\n",
                "data.dvc": (
                    f"outs:\n- md5: {manifest_md5}.dir\n  nfiles: {args.files}\n  hash: md5\n  path: data\n"
                ).encode(),
            }
        }
        for n in range(args.projects - 1):  # dev is a member of these too, each with some data
            project_id = 10_000 + n
            world.projects[project_id] = {
                "id": project_id,
                "path_with_namespace": f"bench/p{n:03d}",
                "visibility": "private",
                "members": {3: 30},
            }
            seed_project(loaded, project_id, f"bench/p{n:03d}", 1)

        begun = client.get("/-/auth/sign_in")
        back = requests.get(begun.headers["Location"], allow_redirects=False, timeout=10).headers["Location"]
        client.get(
            "/-/auth/callback", query_string={k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
        )

        pages = {
            f"landing, {args.projects} projects with data": "/",
            "datasets page": "/ml/vision/-/data/",
            f"directory of {args.files:,} files, first page": (
                f"/ml/vision/-/data/?dataset=files/md5/{manifest_md5[:2]}/{manifest_md5[2:]}.dir&name=data"
            ),
        }
        print(f"in-process, SQLite, local disk; median of {args.rounds} warm views after the first")
        for name, url in pages.items():
            calls = world.total_calls()
            first, warm = timed(client, url, 1)
            first_calls = world.total_calls() - calls
            calls = world.total_calls()
            _, warm = timed(client, url, args.rounds)
            per_view = (world.total_calls() - calls) / (args.rounds + 1)
            print(
                f"  {name:>40}: first {first:7.1f} ms ({first_calls} GitLab calls), warm {warm:6.1f} ms"
                f" ({per_view:.1f} GitLab calls per view)"
            )
    finally:
        gitlab.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
