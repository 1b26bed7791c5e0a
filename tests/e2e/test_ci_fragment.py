"""The CI templates users include: the plain file (scripts/gitlab-ci/data-registry.gitlab-ci.yml) and the
CI/CD component (scripts/gitlab-ci/templates/data-registry.yml, spec:inputs). Built into jobs the way GitLab
builds them (tests/e2e/gitlab_ci.py) and run with the real dvc against the real registry, in a job of
ml/vision, with each credential kind; a job's own before_script keeps the set-up; the set-up page's
snippet is a pipeline that runs; and no secret lands in anything Git tracks."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from scripts.harness import BIN, RegistryServer, Simulator, free_port, fresh_database_url
from tests.conftest import TOKENS
from tests.e2e import gitlab_ci
from tests.e2e.dav_clients import access_lines, methods
from tests.e2e.dvc import same_tree

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
COMPONENT_PROJECT = ROOT / "scripts" / "gitlab-ci"
FRAGMENT = COMPONENT_PROJECT / "data-registry.gitlab-ci.yml"
COMPONENT = COMPONENT_PROJECT / "templates" / "data-registry.yml"
SERVED = ROOT / "app" / "web" / "static"
JOB_TOKEN = "glcbt-vision-running-job-5001"  # a running job of ml/vision in the simulated GitLab
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    """No service token (a job reaches its own project's path-style URL without one); its public URL is
    its real address, the audience CI ID tokens name (the templates use the registry's address)."""
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "REGISTRY_STORAGE_URL": f"file://{root / 'storage'}",
        "REGISTRY_DATABASE_URL": fresh_database_url(root),
        "REGISTRY_GITLAB_URL": gitlab.url,
        "REGISTRY_PUBLIC_URL": url,
    }
    subprocess.run([BIN / "data-registry", "db", "upgrade"], env=env, check=True, capture_output=True)
    log = root / "registry.log"
    with log.open("ab") as out:
        serve = [BIN / "data-registry", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
        process = subprocess.Popen(serve, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = RegistryServer(url=url, storage=root / "storage", log=log, process=process, env=env)
    for _ in range(300):
        try:
            if requests.get(f"{url}/-/health", timeout=1).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):  # a slow start under load is no failure
            pass
        time.sleep(0.1)
    else:
        server.stop()
        raise RuntimeError(server.log_text())
    yield server
    server.stop()


def fetch(kind: str, location: str) -> str:
    """What GitLab reads for an include: remote URLs over HTTP (no credentials), components from the
    component project in this repository (`<host>/<project>/<name>@<version>`)."""
    if kind == "remote":
        answer = requests.get(location, timeout=10)
        if answer.status_code != 200:
            raise gitlab_ci.ConfigError(
                f"Remote file `{location}` could not be fetched: {answer.status_code}"
            )
        return answer.text
    if kind == "component":
        name = location.rsplit("/", 1)[1].split("@", 1)[0]
        for path in (
            COMPONENT_PROJECT / "templates" / f"{name}.yml",
            COMPONENT_PROJECT / "templates" / name / "template.yml",
        ):
            if path.is_file():
                return path.read_text()
    raise gitlab_ci.ConfigError(f"cannot include {kind} {location}")


def checkout(tmp_path: Path) -> Path:
    """A Git repository with DVC-tracked data, committed, as a CI job's checkout has it."""
    repo = tmp_path / "checkout"
    (repo / "data").mkdir(parents=True)
    for i in range(20):
        (repo / "data" / f"{i}.csv").write_text(f"row,{i}\n" * (i + 1))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **git_identity()}
    for command in ("git init -q", "dvc init -q", "dvc add -q data", "git add -A", "git commit -qm data"):
        subprocess.run(["bash", "-ec", command], cwd=repo, env=env, check=True, capture_output=True)
    return repo


def git_identity() -> dict[str, str]:
    return {
        f"GIT_{who}_{what}": value
        for who in ("AUTHOR", "COMMITTER")
        for what, value in (("NAME", "ci"), ("EMAIL", "ci@example.com"))
    }


def predefined(
    repo: Path, tmp_path: Path, *, path: str = f"{BIN}{os.pathsep}/usr/bin:/bin"
) -> dict[str, str]:
    """GitLab's predefined variables for a job of ml/vision, and the image's own environment."""
    return {
        "PATH": path,
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(repo),
        "CI_PROJECT_PATH": "ml/vision",
        "CI_SERVER_FQDN": "gitlab.example.com",
        "CI_JOB_TOKEN": JOB_TOKEN,
        "DVC_SITE_CACHE_DIR": str(tmp_path / "site-cache"),
        **git_identity(),
    }


def run_job(
    pipeline_text: str,
    name: str,
    repo: Path,
    tmp_path: Path,
    gitlab: Simulator,
    settings: dict[str, str] | None = None,
    path: str | None = None,
) -> tuple[gitlab_ci.Job, subprocess.CompletedProcess[str]]:
    """Build the job as GitLab does, mint its ID tokens, run it as the runner does."""
    pipeline = gitlab_ci.load_pipeline(pipeline_text, fetch)
    job = gitlab_ci.job(
        pipeline, name, predefined(repo, tmp_path, **({"path": path} if path else {})), settings or {}
    )
    tokens = {
        var: gitlab.world.mint_id_token(JOB_TOKEN, aud) for var, aud in job.id_token_audiences().items()
    }
    done = gitlab_ci.run(job, repo, tmp_path / "runner-cache", tokens)
    return job, done


def assert_pushed_pulled_and_private(repo: Path, done: subprocess.CompletedProcess[str], secret: str) -> None:
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "21 files pushed" in done.stdout, done.stdout  # 20 files and the .dir
    original = repo.parent / "original"
    (original / "data").mkdir(parents=True, exist_ok=True)
    for i in range(20):
        (original / "data" / f"{i}.csv").write_text(f"row,{i}\n" * (i + 1))
    assert same_tree(original / "data", repo / "data")
    assert secret in (repo / ".dvc" / "config.local").read_text()  # where it went: ignored by Git
    git = ["git", "-C", str(repo)]
    status = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=all"], capture_output=True, text=True
    )
    changed = [line[3:] for line in status.stdout.splitlines()]
    tracked = subprocess.run([*git, "ls-files"], capture_output=True, text=True).stdout.split()
    for path in [*changed, *tracked]:
        assert secret not in (repo / path).read_text(errors="replace"), f"the token is in {path}"
    assert ".dvc/config" not in changed  # the committed config is untouched


def bearer_in(repo: Path) -> str:
    """The ID token the set-up wrote into the remote's Authorization header."""
    return (repo / ".dvc" / "config.local").read_text().split("Bearer ", 1)[1].split()[0]


PUSH_THEN_PULL = ["dvc push", "rm -rf .dvc/cache data", "dvc pull"]


# --- the component: its layout and its inputs -------------------------------------------------------


def test_the_component_is_a_spec_header_then_the_configuration() -> None:
    spec, config = gitlab_ci.documents(COMPONENT.read_text())
    assert spec is not None and set(spec) == {"inputs"}
    inputs = spec["inputs"]
    assert {"url", "remote", "credential", "token-variable"} <= set(inputs)
    assert "default" not in inputs["url"]  # required
    assert inputs["credential"]["options"] == ["job-token", "id-token", "variable"]
    assert (
        inputs["remote-type"]["options"] == ["auto", "s3", "http"]
        and inputs["remote-type"]["default"] == "auto"
    )
    assert set(config) == {".data-registry"}
    used = set(re.findall(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]", COMPONENT.read_text()))
    assert used == set(inputs), f"used but not declared: {used - set(inputs)}; unused: {set(inputs) - used}"
    assert not re.search(r"\$\[\[(?!\s*inputs\.[A-Za-z0-9_-]+\s*\]\])", COMPONENT.read_text())
    url = re.compile(inputs["url"]["regex"])
    assert url.search("https://data.example.com") and url.search("http://127.0.0.1:8080/registry")
    assert not url.search("https://data.example.com/") and not url.search("data.example.com")
    for name in ("README.md", ".gitlab-ci.yml"):  # the catalog shows the README; a release publishes
        assert (COMPONENT_PROJECT / name).is_file()
    releases = [
        j
        for j in yaml.load(
            (COMPONENT_PROJECT / ".gitlab-ci.yml").read_text(), Loader=gitlab_ci.CILoader
        ).values()
        if isinstance(j, dict) and "release" in j
    ]
    assert releases and releases[0]["release"]["tag_name"] == "$CI_COMMIT_TAG"


def test_rendering_checks_inputs_as_gitlab_does() -> None:
    text = COMPONENT.read_text()
    spec, config = gitlab_ci.documents(text)
    with pytest.raises(gitlab_ci.ConfigError, match="`url` input: required"):
        gitlab_ci.input_values(spec, {})
    with pytest.raises(gitlab_ci.ConfigError, match="not in the list of options"):
        gitlab_ci.input_values(spec, {"url": "https://d.example.com", "credential": "password"})
    with pytest.raises(gitlab_ci.ConfigError, match="unknown input"):
        gitlab_ci.input_values(spec, {"url": "https://d.example.com", "audience": "x"})
    job = gitlab_ci.interpolate(config, gitlab_ci.input_values(spec, {"url": "https://d.example.com"}))[
        ".data-registry"
    ]
    assert job["variables"]["DATA_REGISTRY_URL"] == "https://d.example.com"
    assert job["variables"]["DATA_REGISTRY_PROJECT"] == "$CI_PROJECT_PATH"  # expanded when the job runs
    assert job["id_tokens"]["REGISTRY_ID_TOKEN"]["aud"] == "https://d.example.com"
    assert "$[[" not in yaml.safe_dump(job)


def test_component_plain_include_and_served_copies_are_one_setup(registry: RegistryServer) -> None:
    """One set-up script, so the two ways to include it cannot drift; the registry serves both files."""
    plain = yaml.safe_load(FRAGMENT.read_text())[".data-registry"]
    _, component = gitlab_ci.documents(COMPONENT.read_text())
    assert plain["before_script"] == component[".data-registry"]["before_script"]
    for url_name, source in (("data-registry.gitlab-ci.yml", FRAGMENT), ("data-registry.yml", COMPONENT)):
        served = requests.get(f"{registry.url}/-/ci/{url_name}", timeout=10)
        assert served.status_code == 200 and served.text == source.read_text(), url_name
    assert (SERVED / "data-registry.gitlab-ci.yml").read_bytes() == FRAGMENT.read_bytes()
    assert (SERVED / "data-registry.component.yml").read_bytes() == COMPONENT.read_bytes()
    assert requests.get(f"{registry.url}/-/ci/other.yml", timeout=10).status_code == 404


# --- jobs built from the templates, run against the registry --------------------------------------


@pytest.mark.parametrize("credential", ["job-token", "id-token", "variable"])
def test_a_job_from_the_component_pushes_and_pulls(
    credential: str, registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    repo = checkout(tmp_path)
    inputs = {
        "url": registry.url,
        "prefix": f"component-{credential}",
        "remote": "store",
        "credential": credential,
    }
    settings = {}
    if credential == "variable":
        inputs["token-variable"] = "VISION_DATA_TOKEN"
        settings["VISION_DATA_TOKEN"] = TOKENS["developer"]  # a project CI/CD variable, masked
    pipeline = yaml.safe_dump(
        {
            "include": [
                {"component": "$CI_SERVER_FQDN/data-registry/ci/data-registry@1.0.0", "inputs": inputs}
            ],
            "train": {"extends": ".data-registry", "script": PUSH_THEN_PULL},
        }
    )
    job, done = run_job(pipeline, "train", repo, tmp_path, gitlab, settings)
    assert job.env["PIP_CACHE_DIR"] == f"{repo}/.cache/pip"
    assert job.cache_entries() == [("data-registry-dvc-3.67.1", [".cache/pip"])]
    secret = {"job-token": JOB_TOKEN, "variable": TOKENS["developer"]}.get(credential) or bearer_in(repo)
    assert_pushed_pulled_and_private(repo, done, secret)
    assert "['remote \"store\"']" in (repo / ".dvc" / "config.local").read_text()


def test_an_image_without_dvc_gets_it_from_pip_into_the_cached_directory(
    registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    """The image has Python and no dvc: the set-up pip-installs the pinned dvc with its cache in the
    project directory, which the job's `cache:` (keyed on the DVC version) keeps for the next job."""
    image = tmp_path / "image"
    subprocess.run([sys.executable, "-m", "venv", str(image)], check=True)
    repo = checkout(tmp_path)
    pipeline = yaml.safe_dump(
        {
            "include": [
                {
                    "component": "gitlab.example.com/data-registry/ci/data-registry@1.0.0",
                    "inputs": {"url": registry.url, "prefix": "fresh-image"},
                }
            ],
            "train": {"extends": ".data-registry", "script": ["command -v dvc", "dvc --version", "dvc push"]},
        }
    )
    _, done = run_job(pipeline, "train", repo, tmp_path, gitlab, path=f"{image / 'bin'}:/usr/bin:/bin")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    lines = done.stdout.splitlines()
    assert str(image / "bin" / "dvc") in lines and "3.67.1" in lines, done.stdout
    assert "21 files pushed" in done.stdout
    cached = tmp_path / "runner-cache" / "data-registry-dvc-3.67.1" / ".cache" / "pip"
    assert any(cached.rglob("*")), "pip wrote nothing into the cached directory"


def test_a_job_with_its_own_before_script_keeps_the_setup(
    registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    """GitLab's `extends` replaces before_script: a job's own one names the set-up with !reference, and
    both run, in its order. Without it the set-up is gone (what the README warns about)."""
    repo = checkout(tmp_path)
    head = (
        f"include:\n  - remote: {registry.url}/-/ci/data-registry.gitlab-ci.yml\n"
        f"variables:\n  DATA_REGISTRY_URL: {registry.url}\n  DATA_REGISTRY_PREFIX: own-before-script\n"
    )
    own = (
        "train:\n  extends: .data-registry\n  before_script:\n    - echo mine > own-step.txt\n"
        "    - !reference [.data-registry, before_script]\n"
        '  script:\n    - test "$(cat own-step.txt)" = mine\n'
        + "".join(f"    - {line}\n" for line in PUSH_THEN_PULL)
    )
    _, done = run_job(head + own, "train", repo, tmp_path, gitlab)
    assert_pushed_pulled_and_private(repo, done, JOB_TOKEN)

    forgot = own.replace("    - !reference [.data-registry, before_script]\n", "")
    pipeline = gitlab_ci.load_pipeline(head + forgot, fetch)
    assert pipeline["train"]["before_script"] == ["echo mine > own-step.txt"]  # replaced, not appended


def test_the_plain_include_with_a_ci_id_token(
    registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    repo = checkout(tmp_path)
    pipeline = (
        f"include:\n  - remote: {registry.url}/-/ci/data-registry.gitlab-ci.yml\n"
        f"variables:\n  DATA_REGISTRY_URL: {registry.url}\n  DATA_REGISTRY_PREFIX: plain-id-token\n"
        "train:\n  extends: .data-registry-id-token\n  script:\n"
        + "".join(f"    - {line}\n" for line in PUSH_THEN_PULL)
    )
    job, done = run_job(pipeline, "train", repo, tmp_path, gitlab)
    assert job.id_token_audiences() == {"REGISTRY_ID_TOKEN": registry.url}
    assert_pushed_pulled_and_private(repo, done, bearer_in(repo))


# --- DVC's s3 remote through the project's S3 door, first when the image's dvc can ---------------------

DVC_S3 = ROOT / ".tools" / "dvc-s3" / "bin"  # dvc with dvc-s3 (it pins a botocore of its own: its own venv)


def with_dvc_s3() -> str:
    if not (DVC_S3 / "dvc").exists():
        pytest.skip(
            "needs dvc with dvc-s3: python3 -m venv .tools/dvc-s3 && .tools/dvc-s3/bin/pip install dvc-s3"
        )
    return f"{DVC_S3}{os.pathsep}/usr/bin:/bin"


def remote_config(repo: Path) -> dict[str, str]:
    """The job's DVC remote as `.dvc/config.local` has it (DVC writes configobj: `key = value`)."""
    section = (repo / ".dvc" / "config.local").read_text().split("['remote ", 1)[1]
    lines = section.split("\n[", 1)[0].splitlines()[1:]
    return dict(line.strip().split(" = ", 1) for line in lines if " = " in line)


@pytest.mark.parametrize("credential", ["job-token", "id-token", "variable"])
def test_a_job_from_the_component_uses_the_s3_door_when_dvc_can(
    credential: str, registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    """The default remote type (auto) with a dvc that has dvc-s3: s3://<prefix> at the project's S3 door,
    the job's credential as access key id and secret; on a project with no such folder yet the job makes
    none (the door answers it as an empty bucket: no MKCOL, nothing but DVC); push, status -c, pull and
    the run-cache through the one remote; the objects are the data plane's."""
    repo = checkout(tmp_path)
    prefix = f"s3-{credential}"
    folder = requests.request(
        "PROPFIND",
        f"{registry.url}/ml/vision/-/data/{prefix}/",
        headers={"Authorization": f"Bearer {TOKENS['developer']}", "Depth": "0"},
        timeout=10,
    )
    assert folder.status_code == 404  # no folder, so no bucket made beforehand
    since = len(registry.log_text().splitlines())
    inputs = {"url": registry.url, "prefix": prefix, "credential": credential}
    settings = {}
    if credential == "variable":
        settings["DATA_REGISTRY_TOKEN"] = TOKENS["developer"]
    pipeline = yaml.safe_dump(
        {
            "include": [
                {"component": "gitlab.example.com/data-registry/ci/data-registry@1.0.0", "inputs": inputs}
            ],
            "train": {
                "extends": ".data-registry",
                "script": [*PUSH_THEN_PULL, "dvc status -c", "dvc push --run-cache"],
            },
        }
    )
    _, done = run_job(pipeline, "train", repo, tmp_path, gitlab, settings, path=with_dvc_s3())
    sent = methods(access_lines(registry, since, f"/{prefix}"))
    assert "MKCOL" not in sent and "PUT" in sent, sent
    remote = remote_config(repo)
    secret = {"job-token": JOB_TOKEN, "variable": TOKENS["developer"]}.get(credential) or remote[
        "access_key_id"
    ]
    assert_pushed_pulled_and_private(repo, done, secret)
    assert remote == {
        "url": f"s3://{prefix}",
        "endpointurl": f"{registry.url}/ml/vision/-/s3",
        "access_key_id": secret,
        "secret_access_key": secret,
    }
    assert "Cache and remote 'registry' are in sync." in done.stdout
    assert "using DVC's http remote" not in done.stderr
    md5 = re.search(r"md5: ([0-9a-f]{32})\.dir", (repo / "data.dvc").read_text()).group(1)
    listed = requests.head(
        f"{registry.url}/ml/vision/-/data/{prefix}/files/md5/{md5[:2]}/{md5[2:]}.dir",
        headers={"Authorization": f"Bearer {TOKENS['developer']}"},
        timeout=10,
    )
    assert listed.status_code == 200  # one object, every door


def test_remote_type_chooses_and_says_why(
    registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    """auto with a dvc without dvc-s3 falls back to http and says so; `s3` asked for with such a dvc is a
    one-line error; `http` asked for keeps the http remote even where dvc-s3 is."""
    head = (
        f"include:\n  - remote: {registry.url}/-/ci/data-registry.gitlab-ci.yml\n"
        f"variables:\n  DATA_REGISTRY_URL: {registry.url}\n  DATA_REGISTRY_PREFIX: remote-type\n"
        "train:\n  extends: .data-registry\n  script: [dvc push]\n"
    )
    repo = checkout(tmp_path)
    _, auto = run_job(head, "train", repo, tmp_path, gitlab)  # the suite's dvc: no dvc-s3
    assert auto.returncode == 0 and "21 files pushed" in auto.stdout, auto.stderr
    assert "this image's dvc has no s3 support (pip install dvc-s3): using DVC's http remote" in auto.stderr
    assert remote_config(repo)["url"] == f"{registry.url}/ml/vision/-/data/remote-type"

    _, refused = run_job(head, "train", repo, tmp_path, gitlab, {"DATA_REGISTRY_REMOTE_TYPE": "s3"})
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith(
        "data-registry: this image's dvc has no s3 support: install dvc[s3] (or dvc-s3) in it, "
        "or use remote type http"
    )
    _, http = run_job(
        head, "train", repo, tmp_path, gitlab, {"DATA_REGISTRY_REMOTE_TYPE": "http"}, path=with_dvc_s3()
    )
    assert http.returncode == 0, http.stderr
    assert remote_config(repo)["url"] == f"{registry.url}/ml/vision/-/data/remote-type"
    _, wrong = run_job(head, "train", repo, tmp_path, gitlab, {"DATA_REGISTRY_REMOTE_TYPE": "webdav"})
    assert (
        wrong.returncode == 1
        and "DATA_REGISTRY_REMOTE_TYPE is auto, s3 or http, not 'webdav'" in wrong.stderr
    )


# --- the set-up page's snippet ----------------------------------------------------------------------


def test_the_setup_page_snippet_is_a_pipeline_that_runs(
    registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    page = requests.get(f"{registry.url}/ml/open-data/-/data/?view=setup", headers=HTML, timeout=10)
    assert page.status_code == 200
    section = page.text.split("<h2>In CI</h2>", 1)[1]
    snippet = html.unescape(re.search(r"<pre><code>(.*?)</code></pre>", section, re.S).group(1))
    config = yaml.load(snippet, Loader=gitlab_ci.CILoader)
    assert config["include"] == [{"remote": f"{registry.url}/-/ci/data-registry.gitlab-ci.yml"}]
    jobs = [name for name, value in config.items() if isinstance(value, dict) and "script" in value]
    assert jobs == ["train"]

    repo = checkout(tmp_path)
    (repo / "train.py").write_text(
        "import pathlib\nassert len(list(pathlib.Path('data').glob('*.csv'))) == 20\n"
    )
    _, pushed = run_job(
        snippet.replace("script: [dvc pull, ", "script: [dvc push, "), "train", repo, tmp_path, gitlab
    )
    assert pushed.returncode == 0 and "21 files pushed" in pushed.stdout, f"{pushed.stdout}\n{pushed.stderr}"
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data")
    _, done = run_job(snippet, "train", repo, tmp_path, gitlab)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert (repo / "data" / "19.csv").read_text() == "row,19\n" * 20


# --- what the set-up says when something is missing --------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({}, "set DATA_REGISTRY_URL to the registry's address"),
        (
            {"DATA_REGISTRY_URL": "https://d.example.com", "DATA_REGISTRY_CREDENTIAL": "password"},
            "is job-token, id-token or variable, not 'password'",
        ),
        (
            {"DATA_REGISTRY_URL": "https://d.example.com", "DATA_REGISTRY_CREDENTIAL": "variable"},
            "DATA_REGISTRY_TOKEN is empty or not set",
        ),
        (
            {
                "DATA_REGISTRY_URL": "https://d.example.com",
                "DATA_REGISTRY_CREDENTIAL": "variable",
                "DATA_REGISTRY_TOKEN_VARIABLE": "A;rm",
            },
            "'A;rm' is not a variable name",
        ),
        (
            {"DATA_REGISTRY_URL": "https://d.example.com", "DATA_REGISTRY_CREDENTIAL": "id-token"},
            "REGISTRY_ID_TOKEN (id_tokens: in the job) is empty",
        ),
    ],
)
def test_the_setup_says_what_is_missing(variables: dict[str, str], says: str, tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    setup = yaml.safe_load(FRAGMENT.read_text())[".data-registry"]["before_script"][0]
    env = {**predefined(repo, tmp_path), **variables}
    done = subprocess.run(["bash", "-e", "-c", setup], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 1 and says in done.stderr, done.stderr
