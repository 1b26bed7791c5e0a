"""The install-order model of helm_order.py against Helm's rules, on small made-up releases: hooks by
weight then name, non-hook objects after every pre-install hook, hook objects not to stand on."""

from __future__ import annotations

from typing import Any

from tests.chart.helm_order import (
    Resource,
    hook_sequence,
    install_problems,
    pods_on_hook_objects,
    upgrade_problems,
)


def obj(kind: str, name: str, hook: str = "", weight: int = 0, **spec: Any) -> Resource:
    annotations = {"helm.sh/hook": hook, "helm.sh/hook-weight": str(weight)} if hook else {}
    doc = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "annotations": annotations}, **spec}
    return Resource(kind, name, f"templates/{name}.yaml", doc)


def job(name: str, hook: str = "", weight: int = 0, **pod: Any) -> Resource:
    pod = {"containers": [{"name": "main"}], **pod}
    return obj("Job", name, hook, weight, spec={"template": {"spec": pod}})


def test_hooks_run_by_weight_then_name_not_kind() -> None:
    """hookByWeight.Less: equal weights go by name, so a ServiceAccount named after the Job runs after it."""
    hooks = [
        job("a-migrate", "pre-install"),
        obj("ServiceAccount", "z-account", "pre-install"),
        obj("ConfigMap", "settings", "pre-install,pre-upgrade", weight=-1),
        obj("Secret", "only-on-upgrade", "pre-upgrade", weight=-5),
    ]
    assert [h.name for h in hook_sequence(hooks, "pre-install")] == ["settings", "a-migrate", "z-account"]
    assert [h.name for h in hook_sequence(hooks, "pre-upgrade")] == ["only-on-upgrade", "settings"]


def test_a_hook_naming_a_release_object_fails_the_first_install_only() -> None:
    release = [
        obj("ServiceAccount", "app"),
        job("migrate", "pre-install,pre-upgrade", serviceAccountName="app"),
    ]
    (problem,) = install_problems(release, {})
    assert "pre-install hook Job/migrate" in problem and "ServiceAccount app" in problem
    assert upgrade_problems(release, {}) == []  # the first revision made it


def test_a_lower_weight_hook_exists_in_time_but_pods_must_not_stand_on_it() -> None:
    account = obj("ServiceAccount", "z-app", "pre-install,pre-upgrade", weight=-1)
    migrate = job("migrate", "pre-install,pre-upgrade", serviceAccountName="z-app")
    web = obj(
        "Deployment", "web", spec={"template": {"spec": {"serviceAccountName": "z-app", "containers": []}}}
    )
    assert install_problems([account, migrate], {}) == []
    same_weight = obj("ServiceAccount", "z-app", "pre-install,pre-upgrade")
    assert install_problems([same_weight, migrate], {}) != []  # by name: migrate < z-app
    (problem,) = pods_on_hook_objects([account, migrate, web])
    assert "Deployment/web" in problem and "before-hook-creation" in problem


def test_secret_keys_and_optional_references() -> None:
    env = [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "a"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "b"}}},
        {"name": "C", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "c", "optional": True}}},
    ]
    pod: dict[str, Any] = {
        "containers": [{"name": "main", "env": env}],
        "imagePullSecrets": [{"name": "pull"}],
    }
    problems = install_problems(
        [job("j", **pod)], {("Secret", "s"): frozenset({"a"}), ("Secret", "pull"): None}
    )
    assert len(problems) == 1 and "Secret s (key b)" in problems[0] and "has only ['a']" in problems[0]
