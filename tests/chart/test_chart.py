"""The Helm chart with the real `helm` (scripts/install-helm.sh): `helm lint --strict` and `helm template`
for the defaults and every values example, each rendered document validated against the Kubernetes API
schemas of two versions (kubernetes-validate --strict), and the content that matters asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.chart.helmtool import ROOT, run_helm

CHART = ROOT / "helm" / "data-registry"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
KUBE_VERSIONS = ["1.29.0", "1.33.0"]
CASES = [None, *EXAMPLES]
SECRETS_IN_EXAMPLES = ("token", "secret", "password", "key")


def helm(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return run_helm(*args, home=tmp_path)


PUBLIC_URL = ["--set", "publicUrl=https://data.example.com"]  # the one value without a default


def values_args(case: Path | None, *extra: str) -> list[str]:
    return [*(["-f", str(case)] if case else PUBLIC_URL), *extra]


def render(
    case: Path | None, tmp_path: Path, *extra: str, kube: str = KUBE_VERSIONS[-1]
) -> list[dict[str, Any]]:
    done = helm(
        "template",
        "reg",
        str(CHART),
        "-n",
        "data",
        "--kube-version",
        kube,
        *values_args(case, *extra),
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    return next(doc for doc in by_kind(docs, kind) if doc["metadata"]["name"].endswith(suffix))


def case_id(case: Path | None) -> str:
    return case.stem if case else "defaults"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_lint_strict(case: Path | None, tmp_path: Path) -> None:
    done = helm("lint", str(CHART), "--strict", *values_args(case), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_document_is_valid_kubernetes(case: Path | None, kube: str, tmp_path: Path) -> None:
    docs = render(case, tmp_path, kube=kube)
    checked = 0
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: no schema in kubernetes-validate
        kubernetes_validate.validate(doc, kube, strict=True)
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_important_content(case: Path | None, tmp_path: Path) -> None:
    docs = render(case, tmp_path)
    web = named(docs, "Deployment", "-web")
    pod = web["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "web")
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert container["args"][0] == "serve"
    hpa = by_kind(docs, "HorizontalPodAutoscaler")
    assert ("replicas" in web["spec"]) != bool(hpa)  # never both
    for workload in [
        pod,
        *(named(docs, "Job", f"-{i}")["spec"]["template"]["spec"] for i in [1] if by_kind(docs, "Job")),
    ]:
        assert workload["securityContext"]["runAsNonRoot"] is True
        for c in workload["containers"] + workload.get("initContainers", []):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
    local = any(v.get("persistentVolumeClaim") for v in pod["volumes"])
    workers = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-worker")]
    if local:
        assert workers == [] and [c["args"] for c in pod["containers"] if c["name"] == "worker"] == [
            ["worker"]
        ]
        assert web["spec"]["replicas"] == 1 and web["spec"]["strategy"]["type"] == "Recreate"
        assert [c["args"] for c in pod["initContainers"]] == [["db", "upgrade"]]
    else:
        (worker,) = workers
        assert worker["spec"]["replicas"] == 1 and worker["spec"]["strategy"]["type"] == "Recreate"
        job = named(docs, "Job", "-migrate-1")
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    for ingress in by_kind(docs, "Ingress"):
        assert ingress["spec"]["rules"][0]["host"] == "data.example.com"  # from publicUrl
        notes = ingress["metadata"]["annotations"]
        assert notes["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
        assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_no_secret_values_in_config_maps(case: Path | None, tmp_path: Path) -> None:
    docs = render(case, tmp_path)
    assert by_kind(docs, "Secret") == []  # secrets only by reference
    for config in by_kind(docs, "ConfigMap"):
        for name, value in config["data"].items():
            assert not any(word in name.lower() for word in ("token", "secret", "password")), name
            assert "://" not in value or "@" not in value, f"{name} carries credentials"
    for deployment in by_kind(docs, "Deployment") + by_kind(docs, "Job"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if any(
                    word in env["name"] for word in ("TOKEN", "SECRET", "DATABASE_URL")
                ) and "sqlite" not in env.get("value", ""):
                    assert "valueFrom" in env and "value" not in env, env["name"]


@pytest.mark.parametrize(
    ("extra", "account"),
    [
        ([], "default"),  # the chart's own is created after the pre-install hook
        (["--set", "serviceAccount.create=false,serviceAccount.name=registry"], "registry"),  # exists before
        (["--set", "migrations.serviceAccountName=migrator"], "migrator"),
    ],
)
def test_migration_hook_uses_an_account_that_exists_before_it(
    extra: list[str], account: str, tmp_path: Path
) -> None:
    docs = render(CHART / "examples" / "external-postgresql.yaml", tmp_path, *extra)
    pod = named(docs, "Job", "-migrate-1")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account and pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    secrets = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
    assert secrets == [{"name": "data-registry-rds", "key": "database-url"}]  # the one thing it reads
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]


def test_service_account_annotations_for_workload_identity(tmp_path: Path) -> None:
    docs = render(CHART / "examples" / "gcs-workload-identity.yaml", tmp_path)
    (account,) = by_kind(docs, "ServiceAccount")
    assert "iam.gke.io/gcp-service-account" in account["metadata"]["annotations"]
    assert (
        named(docs, "Deployment", "-web")["spec"]["template"]["spec"]["serviceAccountName"]
        == account["metadata"]["name"]
    )
    assert by_kind(docs, "ServiceMonitor")[0]["spec"]["endpoints"][0]["path"] == "/-/metrics"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "storage.kind=azure"], "storage.kind"),
        (["--set", "web.replicas=0"], "replicas"),
        (["--set", "registry.downloadMode=sometimes"], "downloadMode"),
        (["--set", "unknownTopLevel=1"], "unknownTopLevel"),
        (["--set", "registry.trustedProxies=the-ingress"], "trustedProxies"),
    ],
)
def test_values_that_break_the_schema_fail_lint(extra: list[str], message: str, tmp_path: Path) -> None:
    done = helm("lint", str(CHART), "--strict", *extra, tmp_path=tmp_path)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--set", "storage.kind=gcs,database.kind=postgresql,database.postgresql.existingSecret=db"],
            "storage.gcs.bucket is required",
        ),
        (["--set", "web.replicas=3"], "one replica"),
        (["--set", "storage.kind=s3,storage.s3.bucket=b"], "sqlite needs storage.kind=local"),
        (
            ["--set", "storage.kind=s3,storage.s3.bucket=b,database.kind=postgresql"],
            "existingSecret is required",
        ),
        (
            ["--set", "ingress.enabled=true,ingress.host=other.example.com"],
            "differs from the host of publicUrl",
        ),
        (["--set", "oauth.clientId=abc"], "oauth.existingSecret is required with oauth.clientId"),
    ],
)
def test_combinations_the_chart_refuses(extra: list[str], message: str, tmp_path: Path) -> None:
    """Rules across values: `helm template` (and install) stop with the reason (lint only reports it)."""
    done = helm("template", "reg", str(CHART), *PUBLIC_URL, *extra, tmp_path=tmp_path)
    assert done.returncode != 0 and message in done.stderr


@pytest.mark.parametrize(
    ("kind", "missing"),
    [
        ("gcs", ["publicUrl is required", "storage.gcs.bucket is required", "database.kind=sqlite needs"]),
        ("s3", ["publicUrl is required", "storage.s3.bucket is required", "database.kind=sqlite needs"]),
        ("local", ["publicUrl is required"]),
    ],
)
def test_every_missing_value_in_one_run(kind: str, missing: list[str], tmp_path: Path) -> None:
    done = helm("template", "reg", str(CHART), "--set", f"storage.kind={kind}", tmp_path=tmp_path)
    assert done.returncode != 0
    assert f"{len(missing)} value(s) to fix" in done.stderr, done.stderr
    for message in missing:
        assert message in done.stderr, done.stderr


def rendered_notes(tmp_path: Path, *values: str) -> str:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart, dirs_exist_ok=True)
    (chart / "templates" / "zz-notes.yaml").write_text('notes: {{ include "registry.notes" . | toJson }}\n')
    done = helm(
        "template", "reg", str(chart), "--show-only", "templates/zz-notes.yaml", *values, tmp_path=tmp_path
    )
    assert done.returncode == 0, done.stderr
    notes: str = yaml.safe_load(done.stdout)["notes"]
    return notes


def test_notes_print_the_dvc_remote_and_the_hook_url(tmp_path: Path) -> None:
    notes = rendered_notes(tmp_path, "-f", str(CHART / "examples" / "s3-minio.yaml"))
    assert "dvc remote add -d registry https://data.example.com/group/project/-/data/dvc" in notes
    assert "dvc remote add -d registry webdavs://data.example.com/group/project/-/data/dvc" in notes
    assert 'dvc remote modify --local registry password "Bearer $GITLAB_TOKEN"' in notes
    assert 'dvc remote modify --local registry token "$GITLAB_TOKEN"' in notes
    assert "Access tokens" in notes and "read_api" in notes
    assert "https://data.example.com/-/hooks/gitlab" in notes and "System hooks" in notes
    assert "Hooks are OFF" not in notes


def test_notes_follow_the_scheme_of_the_public_url(tmp_path: Path) -> None:
    notes = rendered_notes(tmp_path, "--set", "publicUrl=http://registry.internal:8080/")
    assert "dvc remote add -d registry http://registry.internal:8080/group/project/-/data/dvc" in notes
    assert "dvc remote add -d registry webdav://registry.internal:8080/group/project/-/data/dvc" in notes
    assert "https://" not in notes and "webdavs://" not in notes
    assert "Hooks are OFF" in notes and "http://registry.internal:8080/-/hooks/gitlab" in notes
    assert (
        "redirect URI\n     http://registry.internal:8080/-/auth/callback" in notes
    )  # how to turn sign-in on


def test_redis_url_reaches_the_pods_by_reference(tmp_path: Path) -> None:
    docs = render(None, tmp_path, "--set", "redis.existingSecret=registry-redis")
    web = named(docs, "Deployment", "-web")["spec"]["template"]["spec"]["containers"][0]
    redis = next(e for e in web["env"] if e["name"] == "REGISTRY_REDIS_URL")
    assert redis["valueFrom"]["secretKeyRef"] == {"name": "registry-redis", "key": "url"}
    bare = named(render(None, tmp_path), "Deployment", "-web")["spec"]["template"]["spec"]["containers"][0]
    assert all(e["name"] != "REGISTRY_REDIS_URL" for e in bare.get("env", []))


def test_trusted_proxies_reach_the_pods(tmp_path: Path) -> None:
    """The ingress controller's pods (private addresses) name the client; the app reads the same list."""
    from app.settings import load_settings

    config = by_kind(render(None, tmp_path), "ConfigMap")[0]["data"]
    proxies = config["REGISTRY_TRUSTED_PROXIES"]
    assert proxies == "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
    assert len(load_settings(environ={"REGISTRY_TRUSTED_PROXIES": proxies}).trusted_proxies) == 4
    narrowed = render(None, tmp_path, "--set-string", "registry.trustedProxies=10.42.0.0/16")
    assert by_kind(narrowed, "ConfigMap")[0]["data"]["REGISTRY_TRUSTED_PROXIES"] == "10.42.0.0/16"
    direct = by_kind(render(None, tmp_path, "--set", "registry.trustedProxies="), "ConfigMap")[0]["data"]
    assert "REGISTRY_TRUSTED_PROXIES" not in direct  # no proxy: the peer is the client


def test_oauth_values_reach_the_pods_by_reference(tmp_path: Path) -> None:
    docs = render(None, tmp_path, "--set", "oauth.clientId=app-id,oauth.existingSecret=registry-oauth")
    config = by_kind(docs, "ConfigMap")[0]["data"]
    assert config["REGISTRY_OAUTH_CLIENT_ID"] == "app-id" and config["REGISTRY_OAUTH_SCOPES"] == "read_api"
    web = named(docs, "Deployment", "-web")["spec"]["template"]["spec"]["containers"][0]
    secret = next(e for e in web["env"] if e["name"] == "REGISTRY_OAUTH_CLIENT_SECRET")
    assert secret["valueFrom"]["secretKeyRef"] == {"name": "registry-oauth", "key": "oauth-client-secret"}


def test_status_token_reaches_the_pods_by_reference(tmp_path: Path) -> None:
    docs = render(None, tmp_path, "--set", "gitlab.statusToken.existingSecret=registry-status")
    for part in ("-web", "-worker"):
        matches = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith(part)]
        for deployment in matches:
            env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            token = next(e for e in env if e["name"] == "REGISTRY_GITLAB_STATUS_TOKEN")
            assert token["valueFrom"]["secretKeyRef"] == {"name": "registry-status", "key": "token"}
    plain = render(None, tmp_path)
    assert "REGISTRY_GITLAB_STATUS_TOKEN" not in json.dumps(plain)


def test_every_value_is_described(tmp_path: Path) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def undescribed(node: dict[str, Any], path: str) -> list[str]:
        found = []
        for key, child in node.get("properties", {}).items():
            if not child.get("description"):
                found.append(f"{path}{key}")
            found += undescribed(child, f"{path}{key}.")
        return found

    assert undescribed(schema, "") == []


def test_chart_readme_table_is_current() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.chart_readme", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_values_schema_is_json(tmp_path: Path) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["properties"]["storage"]["properties"]["kind"]["enum"] == ["gcs", "s3", "local"]
