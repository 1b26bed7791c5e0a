"""The chart as shipped: `helm package` into a temporary directory, then `helm lint --strict` and
`helm template` on the package itself (not the source directory); and the Chart.yaml metadata Artifact
Hub reads (https://artifacthub.io/docs/topics/annotations/helm/) checked against the chart's own values."""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.chart.helmtool import ROOT as REPO_ROOT
from tests.chart.helmtool import run_helm

ROOT = Path(os.environ.get("CHART_TEST_ROOT") or REPO_ROOT)
CHART = ROOT / "helm" / "data-registry"
PROJECT = "https://gitlab.com/gitlab-data-registry/gitlab-data-registry"
CATEGORIES = {"ai-machine-learning", "database", "integration-delivery", "monitoring-logging", "networking"}
CATEGORIES |= {"security", "storage", "streaming-messaging"}
CHANGE_KINDS = {"added", "changed", "deprecated", "removed", "fixed", "security"}


def chart_yaml() -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return meta


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package")
    done = run_helm("package", str(CHART), "--destination", str(out), home=out / "home")
    assert done.returncode == 0, done.stderr
    (tgz,) = out.glob("*.tgz")
    assert tgz.name == f"data-registry-{chart_yaml()['version']}.tgz"
    return tgz


def test_packaged_chart_lints_strict_without_advice(package: Path, tmp_path: Path) -> None:
    done = run_helm(
        "lint", str(package), "--strict", "--set", "publicUrl=https://data.example.com", home=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[INFO]" not in done.stdout and "[WARNING]" not in done.stdout, (
        done.stdout
    )  # e.g. icon is recommended


def test_package_holds_the_chart_and_nothing_else(package: Path) -> None:
    with tarfile.open(package) as tar:
        names = {name.removeprefix("data-registry/") for name in tar.getnames()}
    assert {
        "Chart.yaml",
        "values.yaml",
        "values.schema.json",
        "README.md",
        "templates/job-migrate.yaml",
    } <= names
    assert {f"examples/{p.name}" for p in (CHART / "examples").glob("*.yaml")} <= names
    hidden = [n for n in names if any(part.startswith(".") for part in n.split("/")) and n != ".helmignore"]
    assert hidden == [] and not [n for n in names if n.endswith((".tgz", ".orig", "~"))]


@pytest.mark.parametrize("example", sorted(p.name for p in (CHART / "examples").glob("*.yaml")))
def test_package_renders_its_own_examples(package: Path, example: str, tmp_path: Path) -> None:
    """What `helm pull --untar` gives an admin works like the checkout: every example renders."""
    with tarfile.open(package) as tar:
        tar.extractall(tmp_path / "pulled", filter="data")
    values = tmp_path / "pulled" / "data-registry" / "examples" / example
    done = run_helm("template", "data-registry", str(package), "-n", "data", "-f", str(values), home=tmp_path)
    assert done.returncode == 0, done.stderr


def test_chart_metadata_for_artifact_hub() -> None:
    meta = chart_yaml()
    icon = urlsplit(meta["icon"])
    assert icon.scheme == "https" and meta["icon"].startswith(f"{PROJECT}/-/raw/main/")
    assert (ROOT / meta["icon"].removeprefix(f"{PROJECT}/-/raw/main/")).is_file()  # the icon is in the repo
    assert meta["home"] == PROJECT and PROJECT in meta["sources"]
    assert all(urlsplit(u).scheme == "https" for u in meta["sources"])
    assert meta["maintainers"] and all(
        m["name"] and (m.get("email") or m.get("url")) for m in meta["maintainers"]
    )
    notes = meta["annotations"]
    assert notes["artifacthub.io/license"] == "MIT"  # pyproject.toml's licence
    assert notes["artifacthub.io/category"] in CATEGORIES
    assert "data-registry" in notes["artifacthub.io/alternativeName"]  # a superstring of the name
    for flag in ("operator", "prerelease", "containsSecurityUpdates"):
        assert notes[f"artifacthub.io/{flag}"] in ("true", "false")
    links = yaml.safe_load(notes["artifacthub.io/links"])
    assert all(set(link) == {"name", "url"} and link["url"].startswith("https://") for link in links)
    assert "support" in {link["name"] for link in links}  # Artifact Hub shows it as "report an issue"
    changes = yaml.safe_load(notes["artifacthub.io/changes"])
    assert changes and all(c["kind"] in CHANGE_KINDS and c["description"] for c in changes)


def test_artifact_hub_image_is_the_one_the_chart_runs() -> None:
    meta = chart_yaml()
    values = yaml.safe_load((CHART / "values.yaml").read_text())["image"]
    (image,) = yaml.safe_load(meta["annotations"]["artifacthub.io/images"])
    assert image["image"] == f"{values['repository']}:{values['tag'] or meta['appVersion']}"
    assert image["platforms"] == ["linux/amd64"]


def test_readme_pulls_this_version_from_the_oci_registry() -> None:
    """The chart README's OCI commands name the version `helm package` makes."""
    versions = re.findall(r"--version (\S+)", (CHART / "README.md").read_text())
    assert versions and set(versions) == {chart_yaml()["version"]}
