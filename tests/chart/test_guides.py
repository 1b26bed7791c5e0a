"""Every install guide of the chart README, as an admin pastes it: its exact `helm upgrade --install`
rendered with `helm template` (same args, from the repository root), and its exact `kubectl create`
commands taken as what exists before. There is no cluster on these machines, so the cluster is the model
in helm_order.py (Helm's own order): every Secret (and key), ConfigMap, PVC and ServiceAccount a pod or
hook names must exist when it starts. CHART_TEST_ROOT=DIR runs the same checks on another checkout (an
old chart from `git archive`, to see them fail)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest

from tests.chart import helm_order, readme_guides
from tests.chart.helm_order import Existing, Resource
from tests.chart.helmtool import ROOT as REPO_ROOT
from tests.chart.helmtool import run_helm

ROOT = Path(os.environ.get("CHART_TEST_ROOT") or REPO_ROOT)
README = ROOT / "helm" / "data-registry" / "README.md"
GUIDES = readme_guides.guides(README)
KUBE = "1.33.0"


def rendered(guide: readme_guides.Guide, tmp_path: Path) -> list[Resource]:
    args = readme_guides.template_args(guide.helm_install)
    done = run_helm(*args, "--kube-version", KUBE, home=tmp_path, cwd=ROOT)
    assert done.returncode == 0, f"{' '.join(guide.helm_install)}\n{done.stderr}"
    return helm_order.parse_rendered(done.stdout)


def existing_before(guide: readme_guides.Guide) -> Existing:
    namespace = readme_guides.release_namespace(guide.helm_install)
    return {(kind, name): keys for (kind, ns, name), keys in guide.objects.items() if ns == namespace}


def test_the_readme_has_the_guides() -> None:
    """The parser finds what is there: three guides, each one install, the cloud ones with Secrets."""
    assert [g.title.split(" ")[0] for g in GUIDES] == ["Local", "S3", "Google"]
    assert all(g.secret_commands for g in GUIDES[1:])


@pytest.mark.parametrize("guide", GUIDES, ids=lambda g: g.title.split(" ")[0].lower())
def test_guide_creates_what_its_release_needs(guide: readme_guides.Guide, tmp_path: Path) -> None:
    resources = rendered(guide, tmp_path)
    namespace = readme_guides.release_namespace(guide.helm_install)
    assert namespace == "default" or namespace in guide.namespaces, f"the guide never creates {namespace}"
    before = existing_before(guide)
    problems = helm_order.install_problems(resources, before)
    problems += helm_order.upgrade_problems(resources, before)
    problems += helm_order.pods_on_hook_objects(resources)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("guide", GUIDES, ids=lambda g: g.title.split(" ")[0].lower())
def test_guide_renders_valid_kubernetes(guide: readme_guides.Guide, tmp_path: Path) -> None:
    for resource in rendered(guide, tmp_path):
        if not resource.doc["apiVersion"].startswith("monitoring.coreos.com/"):  # a CRD: no schema
            kubernetes_validate.validate(resource.doc, KUBE, strict=True)


@pytest.mark.parametrize("guide", GUIDES, ids=lambda g: g.title.split(" ")[0].lower())
def test_guide_ingress_certificate_is_a_stated_prerequisite(
    guide: readme_guides.Guide, tmp_path: Path
) -> None:
    """An Ingress's TLS Secret is no pod's, but without it https fails: the guide or the README's
    prerequisites must say where it comes from."""
    before = existing_before(guide)
    prerequisites = README.read_text().split("\n## ")[0]
    for resource in rendered(guide, tmp_path):
        for tls in resource.doc["spec"].get("tls", []) if resource.kind == "Ingress" else []:
            name = tls["secretName"]
            assert ("Secret", name) in before or f"`{name}`" in prerequisites, name


def test_migration_job_runs_with_its_own_env_and_nothing_else(tmp_path: Path) -> None:
    """The migration hook gets no cloud identity: `data-registry db upgrade` with exactly the Job's
    environment (its Secret references resolved from the guide's own literals, the database swapped for
    a SQLite file) and no credentials at all brings the database to the newest revision."""
    for guide in GUIDES[1:]:
        resources = rendered(guide, tmp_path)
        (job,) = [r for r in resources if r.kind == "Job"]
        pod = helm_order.pod_spec(job.doc)
        assert pod is not None and pod["serviceAccountName"] == "default"
        literals = readme_guides.secret_literals(guide)
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        for item in pod["containers"][0]["env"]:
            if "value" in item:
                env[item["name"]] = item["value"]
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = literals[ref["name"], ref["key"]]
        assert env["REGISTRY_DATABASE_URL"].startswith("postgresql+psycopg://")
        env["REGISTRY_DATABASE_URL"] = f"sqlite:///{tmp_path / guide.title[:3]}.db"
        done = subprocess.run(
            [str(Path(sys.executable).parent / "data-registry"), "db", "upgrade"],  # this venv's
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert "up to date" in done.stdout
