"""A project's data page for browsers: folders, search with paging, downloads through signed attachment
URLs, the trash (Maintainers restore, Reporters cannot, forged forms refused), set-up snippets, the
badge; and that DVC-shaped requests to the same URLs are answered exactly as before."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from scripts.harness import Simulator
from tests.conftest import bearer

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CLIENT_ID, CLIENT_SECRET = "sim-registry-app", "gloas-sim-registry-secret"


@pytest.fixture
def app(make_app: Callable[..., Flask], simulator: Simulator) -> Flask:
    simulator.world.oauth_apps[CLIENT_ID]["redirect_uri"] = "http://localhost/-/auth/callback"
    return make_app(
        oauth_client_id=CLIENT_ID,
        oauth_client_secret=CLIENT_SECRET,
        oauth_scopes="api",
        trash_retention=3600,
        download_mode="redirect",
    )


def put(client: FlaskClient, project: str, path: str, body: bytes, role: str = "developer") -> None:
    done = client.put(f"/{project}/-/data/{path}", data=body, headers=bearer(role))
    assert done.status_code in (200, 201), done.get_data(as_text=True)


def signed_in(app: Flask, simulator: Simulator, user: str) -> FlaskClient:
    """A browser signed in with GitLab as `user`."""
    simulator.world.signed_in_user = user
    browser = app.test_client()
    begun = browser.get("/-/auth/sign_in")
    back = requests.get(begun.headers["Location"], allow_redirects=False, timeout=10).headers["Location"]
    answer = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    assert browser.get("/-/auth/callback", query_string=answer).status_code == 302
    return browser


def csrf(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_public_project_page_lists_folders_and_downloads_by_name(app: Flask) -> None:
    client = app.test_client()
    put(client, "ml/open-data", "images/cat.png", b"meow" * 10)
    put(client, "ml/open-data", "images/raw/dog.png", b"woof")
    put(client, "ml/open-data", "README.md", b"# data")
    root = client.get("/ml/open-data/-/data/?view=files", headers=HTML)
    assert root.status_code == 200 and root.mimetype == "text/html"
    html = root.get_data(as_text=True)
    assert 'href="/ml/open-data/-/data/images/">images/</a>' in html and ">README.md</a>" in html
    folder = client.get("/ml/open-data/-/data/images/", headers=HTML).get_data(as_text=True)
    assert ">cat.png</a>" in folder and 'href="/ml/open-data/-/data/images/raw/">raw/</a>' in folder
    assert hashlib.md5(b"meow" * 10).hexdigest() in folder and "40 B" in folder

    link = "/-/ui/projects/102/download?path=images/cat.png"
    assert f'href="{link}"' in folder.replace("%2F", "/")
    signed = client.get(link)
    assert signed.status_code == 302
    with client.get(signed.headers["Location"]) as blob:  # the local backend's signed URL
        assert blob.get_data() == b"meow" * 10
        assert (
            blob.headers["Content-Disposition"].startswith("attachment")
            and "cat.png" in blob.headers["Content-Disposition"]
        )


def test_dvc_shaped_requests_are_answered_as_before(app: Flask) -> None:
    client = app.test_client()
    put(client, "ml/vision", "dvc/files/md5/ab/cdef", b"x")
    for accept in ("*/*", "application/json", ""):
        got = client.get("/ml/vision/-/data/", headers={**bearer("developer"), "Accept": accept})
        assert got.status_code == 400 and got.is_json  # as ever: an empty object path
    with_token = client.get("/ml/vision/-/data/dvc/", headers={**bearer("developer"), **HTML})
    assert with_token.status_code == 400 and with_token.is_json  # a token means a client, not a page
    obj = client.get("/ml/vision/-/data/dvc/files/md5/ab/cdef", headers={**bearer("developer"), **HTML})
    assert obj.status_code == 302  # an object path downloads, whoever asks


def test_a_private_project_sends_anonymous_visitors_to_sign_in(
    app: Flask, make_app: Callable[..., Flask]
) -> None:
    answer = app.test_client().get("/ml/vision/-/data/", headers=HTML)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/-/auth/sign_in?return_to=/ml/vision/-/data/"
    missing = app.test_client().get("/no/such-project/-/data/", headers=HTML)
    assert missing.headers["Location"] == "/-/auth/sign_in?return_to=/no/such-project/-/data/"


def test_signed_in_members_see_their_private_project(app: Flask, simulator: Simulator) -> None:
    put(app.test_client(), "ml/vision", "models/m.bin", b"weights")
    dev = signed_in(app, simulator, "dev")
    html = dev.get("/ml/vision/-/data/?view=files", headers=HTML).get_data(as_text=True)
    assert "models/</a>" in html and "1 object, 7 B" in html
    assert dev.get("/-/ui/projects/101/download?path=models/m.bin").status_code == 302
    olive = signed_in(app, simulator, "olive")  # not a member
    refused = olive.get("/ml/vision/-/data/", headers=HTML)
    assert refused.status_code == 404 and "does not exist or you cannot see it" in refused.get_data(
        as_text=True
    )
    assert olive.get("/-/ui/projects/101/download?path=models/m.bin").status_code == 404


def test_search_pages_through_a_large_folder(app: Flask) -> None:
    client = app.test_client()
    for i in range(150):
        put(client, "ml/open-data", f"runs/{i:03d}.json", b"{}")
    first = client.get("/ml/open-data/-/data/runs/?q=.json", headers=HTML).get_data(as_text=True)
    assert first.count(".json</a>") == 100 and "runs/099.json" in first and "runs/100.json" not in first
    after = first.split("after=", 1)[1].split('"', 1)[0]
    second = client.get(f"/ml/open-data/-/data/runs/?q=.json&after={after}", headers=HTML).get_data(
        as_text=True
    )
    assert second.count(".json</a>") == 50 and "runs/149.json" in second and "Next page" not in second


def test_maintainers_restore_from_the_trash_and_reporters_cannot(app: Flask, simulator: Simulator) -> None:
    client = app.test_client()
    put(client, "ml/vision", "old/a.csv", b"a,b")
    assert client.delete("/ml/vision/-/data/old/a.csv", headers=bearer("maintainer")).status_code == 204

    rita = signed_in(app, simulator, "rita")  # Reporter
    trash = rita.get("/ml/vision/-/data/?view=trash", headers=HTML).get_data(as_text=True)
    assert "old/a.csv" in trash and 'type="checkbox"' not in trash and "Restore the checked" not in trash
    home = rita.get("/").get_data(as_text=True)
    forged = rita.post(
        "/-/ui/projects/101/trash/restore", data={"csrf_token": csrf(home), "path": "old/a.csv"}
    )
    assert forged.status_code == 403 and "Maintainer" in forged.get_data(as_text=True)

    maya = signed_in(app, simulator, "maya")  # Maintainer (through the ml group)
    trash = maya.get("/ml/vision/-/data/?view=trash", headers=HTML).get_data(as_text=True)
    assert 'name="path" value="old/a.csv"' in trash
    no_token = maya.post("/-/ui/projects/101/trash/restore", data={"path": "old/a.csv"})
    assert no_token.status_code == 403
    done = maya.post(
        "/-/ui/projects/101/trash/restore", data={"csrf_token": csrf(trash), "path": "old/a.csv"}
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("?view=trash&restored=1")
    assert client.head("/ml/vision/-/data/old/a.csv", headers=bearer("developer")).status_code == 200


def test_setup_view_has_the_commands_for_this_project(app: Flask) -> None:
    html = app.test_client().get("/ml/open-data/-/data/?view=setup", headers=HTML).get_data(as_text=True)
    assert "dvc remote add -d registry http://localhost/ml/open-data/-/data/dvc" in html
    assert "dvc remote add -d registry webdav://localhost/ml/open-data/-/data/dvc" in html
    assert "DATA_REGISTRY_URL: http://localhost\n" in html


def test_badge_tells_usage_only_to_who_may_read(app: Flask) -> None:
    client = app.test_client()
    put(client, "ml/open-data", "x.bin", b"1" * 2048)
    public = client.get("/ml/open-data/-/data/badge.svg")
    assert public.mimetype == "image/svg+xml" and "data: 2.0 KiB" in public.get_data(as_text=True)
    private = client.get("/ml/vision/-/data/badge.svg").get_data()
    missing = client.get("/no/such/-/data/badge.svg").get_data()
    assert private == missing and b"registry" in private  # no existence leak


def test_a_read_api_sign_in_offers_no_restore_even_to_maintainers(
    make_app: Callable[..., Flask], simulator: Simulator
) -> None:
    simulator.world.oauth_apps[CLIENT_ID]["redirect_uri"] = "http://localhost/-/auth/callback"
    app = make_app(oauth_client_id=CLIENT_ID, oauth_client_secret=CLIENT_SECRET, trash_retention=3600)
    put(app.test_client(), "ml/vision", "old/b.csv", b"b")
    app.test_client().delete("/ml/vision/-/data/old/b.csv", headers=bearer("maintainer"))
    maya = signed_in(app, simulator, "maya")
    trash = maya.get("/ml/vision/-/data/?view=trash", headers=HTML).get_data(as_text=True)
    assert "old/b.csv" in trash and 'type="checkbox"' not in trash
    refused = maya.post(
        "/-/ui/projects/101/trash/restore", data={"csrf_token": csrf(trash or ""), "path": "old/b.csv"}
    )
    assert refused.status_code == 403


def test_pages_work_behind_a_path_prefix(app: Flask, simulator: Simulator) -> None:
    """Mounted at /registry (SCRIPT_NAME, as a reverse proxy sets it): every link and redirect keeps it."""
    client = app.test_client()
    put(client, "ml/open-data", "images/cat.png", b"meow")
    prefixed = {"SCRIPT_NAME": "/registry"}
    html = client.get("/ml/open-data/-/data/?view=files", headers=HTML, environ_overrides=prefixed).get_data(
        as_text=True
    )
    assert 'href="/registry/ml/open-data/-/data/images/"' in html
    assert 'href="/registry/-/ui/ui.css"' in html
    assert "http://localhost/registry/ml/open-data/-/data/dvc" in client.get(
        "/ml/open-data/-/data/?view=setup", headers=HTML, environ_overrides=prefixed
    ).get_data(as_text=True)
    to_sign_in = client.get("/ml/vision/-/data/", headers=HTML, environ_overrides=prefixed)
    assert to_sign_in.headers["Location"] == "/registry/-/auth/sign_in?return_to=/ml/vision/-/data/"
    begun = client.get("/-/auth/sign_in", environ_overrides=prefixed)
    assert "Path=/registry/-/auth/" in begun.headers["Set-Cookie"]
    redirect_uri = parse_qs(urlsplit(begun.headers["Location"]).query)["redirect_uri"]
    assert redirect_uri == ["http://localhost/registry/-/auth/callback"]


def test_maintainers_move_objects_to_the_trash_and_never_a_folder(app: Flask, simulator: Simulator) -> None:
    client = app.test_client()
    put(client, "ml/vision", "runs/a.json", b"{}")
    put(client, "ml/vision", "runs/b.json", b"[]")
    rita = signed_in(app, simulator, "rita")
    page = rita.get("/ml/vision/-/data/runs/", headers=HTML).get_data(as_text=True)
    assert 'type="checkbox"' not in page and "Move the checked" not in page
    forged = rita.post("/-/ui/projects/101/delete", data={"csrf_token": csrf(page), "path": "runs/a.json"})
    assert forged.status_code == 403

    maya = signed_in(app, simulator, "maya")
    page = maya.get("/ml/vision/-/data/runs/", headers=HTML).get_data(as_text=True)
    assert 'name="path" value="runs/a.json"' in page
    assert maya.post("/-/ui/projects/101/delete", data={"path": "runs/a.json"}).status_code == 403  # no CSRF
    folder = maya.post("/-/ui/projects/101/delete", data={"csrf_token": csrf(page), "path": "runs"})
    assert folder.status_code == 403  # not an object: nothing under it goes
    done = maya.post(
        "/-/ui/projects/101/delete", data={"csrf_token": csrf(page), "path": "runs/a.json", "folder": "runs"}
    )
    assert done.status_code == 302 and done.headers["Location"] == "/ml/vision/-/data/runs/?view=files"
    assert client.head("/ml/vision/-/data/runs/a.json", headers=bearer("developer")).status_code == 404
    assert client.head("/ml/vision/-/data/runs/b.json", headers=bearer("developer")).status_code == 200
    trash = maya.get("/ml/vision/-/data/?view=trash", headers=HTML).get_data(as_text=True)
    assert 'value="runs/a.json"' in trash


def _commands(html: str) -> list[str]:
    """The set-up page's copy-paste blocks in page order, as a person copies them."""
    import html as markup

    section = html.split('<section class="setup">', 1)[1]
    return [markup.unescape(block.split("</code></pre>", 1)[0]) for block in section.split("<pre><code>")[1:]]


def test_setup_offers_the_s3_remote_first_then_http_and_webdav(app: Flask) -> None:
    """DVC's s3 remote through the project's S3 door comes first (one remote for push, pull, status,
    run-cache and gc -c): on a project with nothing in it yet, the four `dvc remote` commands and no step
    that makes the bucket (the door answers a folder not made yet as an empty bucket); the bucket is the
    first folder, the rest a prefix in it; http and webdav follow as alternatives."""
    client = app.test_client()
    html = client.get("/ml/open-data/-/data/?view=setup", headers=HTML).get_data(as_text=True)
    s3, http, webdav, *_ = _commands(html)
    assert s3.splitlines() == [
        'pip install "dvc[s3]"',
        "dvc remote add -d registry s3://dvc",
        "dvc remote modify registry endpointurl http://localhost/ml/open-data/-/s3",
        'dvc remote modify --local registry access_key_id "$GITLAB_TOKEN"',
        'dvc remote modify --local registry secret_access_key "$GITLAB_TOKEN"',
        "dvc push",
    ]
    assert "MKCOL" not in html
    assert html.index("s3 remote (recommended)") < html.index("http remote") < html.index("webdav remote")
    assert http.startswith("dvc remote add -d registry http://localhost/ml/open-data/-/data/dvc\n")
    assert "webdav://localhost/ml/open-data/-/data/dvc" in webdav
    # a folder's own set-up: its first segment is the bucket, the rest a prefix in it
    html = client.get("/ml/open-data/-/data/team/dvc/?view=setup", headers=HTML).get_data(as_text=True)
    s3, http, _, *_ = _commands(html)
    assert s3.splitlines()[1:3] == [
        "dvc remote add -d registry s3://team/dvc",
        "dvc remote modify registry endpointurl http://localhost/ml/open-data/-/s3",
    ]
    assert "http://localhost/ml/open-data/-/data/team/dvc\n" in http
    prefixed = client.get(
        "/ml/open-data/-/data/?view=setup", headers=HTML, environ_overrides={"SCRIPT_NAME": "/registry"}
    ).get_data(as_text=True)
    assert "endpointurl http://localhost/registry/ml/open-data/-/s3\n" in prefixed


def test_a_warm_datasets_page_asks_gitlab_nothing_its_use_lines_included(
    app: Flask, simulator: Simulator
) -> None:
    """The "use" lines name the remote of `.dvc/config` at the page's ref: read with the repository (cached
    per user, project and ref, the default branch by its name too), not again per view or per dataset."""
    simulator.world.repositories[101] = {
        "main": {
            ".dvc/config": b"[core]\n    remote = registry\n['remote \"registry\"']\n"
            b"    url = http://localhost/ml/vision/-/data/dvc\n",
            "data.dvc": b"outs:\n- md5: " + b"a" * 32 + b".dir\n  nfiles: 2\n  path: data\n",
            "model.pkl.dvc": b"outs:\n- md5: " + b"b" * 32 + b"\n  size: 3\n  path: model.pkl\n",
        }
    }
    dev = signed_in(app, simulator, "dev")
    first = dev.get("/ml/vision/-/data/", headers=HTML).get_data(as_text=True)
    assert f"dvc get {simulator.url}/ml/vision.git model.pkl --rev main" in first.replace("&#39;", "'")
    before = simulator.world.total_calls()
    for url in ("/ml/vision/-/data/", "/ml/vision/-/data/?ref=main"):
        again = dev.get(url, headers=HTML).get_data(as_text=True)
        assert f"dvc get {simulator.url}/ml/vision.git data --rev main" in again
    assert simulator.world.total_calls() == before
