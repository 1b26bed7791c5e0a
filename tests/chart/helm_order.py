"""A model of a first `helm install` (and of the `helm upgrade` after it) on a cluster: which objects exist
when each hook and each pod of the release is created, and what every pod needs to start (the Secrets
and their keys, ConfigMaps, PersistentVolumeClaims and the ServiceAccount it names).

The order is Helm's own (v3.18.0, the helm of scripts/install-helm.sh; unchanged in v4):
- pkg/releaseutil/manifest_sorter.go `SortManifests`: templates by path, documents in file order; hooks
  (documents with a `helm.sh/hook` annotation) go apart from the release's other resources, and both
  are stable-sorted by kind in `InstallOrder` (kind_sorter.go; unknown kinds last, by name).
- pkg/action/hooks.go `execHook`: the hooks of one event are stable-sorted by weight, then by NAME
  (`hookByWeight.Less`; the kind order only breaks ties of equal weight and name), then created one at
  a time, each waited for (a Job until it completes) before the next; `hook-succeeded` deletions happen
  after the last one; without a delete policy a hook gets `before-hook-creation`.
- pkg/action/install.go: pre-install hooks, then every other resource of the release in one create,
  then post-install hooks. So nothing but other hooks (of lower weight) exists for a pre-install hook.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

# kind_sorter.go InstallOrder as on helm main (v3.18.0 ends at APIService; the webhooks came later).
INSTALL_ORDER = [
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
]
# What every namespace has from the moment it exists (the controllers make them).
NAMESPACE_DEFAULTS = {("ServiceAccount", "default"): None, ("ConfigMap", "kube-root-ca.crt"): None}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}

# (kind, name) -> the keys it holds (None: keys not known or not applicable, any key is taken as there)
Existing = dict[tuple[str, str], frozenset[str] | None]


@dataclass(frozen=True)
class Resource:
    """One rendered document and the template it came from."""

    kind: str
    name: str
    source: str
    doc: dict[str, Any]

    @property
    def annotations(self) -> dict[str, str]:
        return self.doc.get("metadata", {}).get("annotations") or {}

    @property
    def hook_events(self) -> tuple[str, ...]:
        events = self.annotations.get("helm.sh/hook", "")
        return tuple(e.strip().lower() for e in events.split(",") if e.strip())

    @property
    def weight(self) -> int:
        return int(self.annotations.get("helm.sh/hook-weight", "0"))

    @property
    def delete_policies(self) -> tuple[str, ...]:
        policies = self.annotations.get("helm.sh/hook-delete-policy", "")
        return tuple(p.strip() for p in policies.split(",") if p.strip()) or ("before-hook-creation",)

    @property
    def keys(self) -> frozenset[str] | None:
        if self.kind in ("Secret", "ConfigMap"):
            return frozenset({**(self.doc.get("data") or {}), **(self.doc.get("stringData") or {})})
        return None

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Ref:
    """Something a pod names that must exist before its containers can start."""

    kind: str
    name: str
    key: str | None
    where: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}" + (f" (key {self.key})" if self.key else "")


def parse_rendered(stdout: str) -> list[Resource]:
    """The documents of `helm template` output, each with its `# Source:` template path."""
    found = []
    for chunk in stdout.split("\n---"):
        source = next(
            (ln[len("# Source: ") :] for ln in chunk.splitlines() if ln.startswith("# Source: ")), ""
        )
        doc = yaml.safe_load(chunk)
        if doc:
            found.append(Resource(doc["kind"], doc["metadata"]["name"], source, doc))
    return found


def _kind_rank(resource: Resource) -> tuple[int, str]:
    if resource.kind in INSTALL_ORDER:
        return INSTALL_ORDER.index(resource.kind), ""
    return len(INSTALL_ORDER), resource.kind  # unknown kinds last, alphabetically


def hook_sequence(resources: list[Resource], event: str) -> list[Resource]:
    """The hooks of `event` in the order Helm creates them."""
    by_file = sorted((r for r in resources if r.hook_events), key=lambda r: r.source)
    by_kind = sorted(by_file, key=_kind_rank)
    return sorted((h for h in by_kind if event in h.hook_events), key=lambda h: (h.weight, h.name))


def release_resources(resources: list[Resource]) -> list[Resource]:
    """The release's own (non-hook) resources in Helm's create order."""
    return sorted(sorted((r for r in resources if not r.hook_events), key=lambda r: r.source), key=_kind_rank)


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template of a workload (or the Pod itself); None for other kinds."""
    if doc["kind"] == "Pod":
        return dict(doc["spec"])
    if doc["kind"] == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    if doc["kind"] in POD_TEMPLATE_KINDS:
        return dict(doc["spec"]["template"]["spec"])
    return None


def _container_refs(container: dict[str, Any]) -> Iterator[Ref]:
    where = f"container {container['name']}"
    for env in container.get("env") or []:
        source = env.get("valueFrom") or {}
        for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            if field in source and not source[field].get("optional"):
                yield Ref(kind, source[field]["name"], source[field]["key"], f"{where} env {env['name']}")
    for env_from in container.get("envFrom") or []:
        for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            if field in env_from and not env_from[field].get("optional"):
                yield Ref(kind, env_from[field]["name"], None, f"{where} envFrom")


def _volume_refs(volume: dict[str, Any]) -> Iterator[Ref]:
    where = f"volume {volume['name']}"
    sources = [("Secret", volume["secret"], "secretName")] if "secret" in volume else []
    sources += [("ConfigMap", volume["configMap"], "name")] if "configMap" in volume else []
    for projected in (volume.get("projected") or {}).get("sources") or []:
        sources += [("Secret", projected["secret"], "name")] if "secret" in projected else []
        sources += [("ConfigMap", projected["configMap"], "name")] if "configMap" in projected else []
    for kind, spec, name_field in sources:
        if spec.get("optional"):
            continue
        items = spec.get("items") or []
        for item in items:
            yield Ref(kind, spec[name_field], item["key"], where)
        if not items:
            yield Ref(kind, spec[name_field], None, where)
    if "persistentVolumeClaim" in volume:
        yield Ref("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"], None, where)


def pod_refs(pod: dict[str, Any]) -> list[Ref]:
    """Everything a pod names that the kubelet (or admission) needs to find before it starts."""
    refs = [Ref("ServiceAccount", pod.get("serviceAccountName") or "default", None, "serviceAccountName")]
    refs += [Ref("Secret", s["name"], None, "imagePullSecrets") for s in pod.get("imagePullSecrets") or []]
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in pod.get(group) or []:
            refs += _container_refs(container)
    for volume in pod.get("volumes") or []:
        refs += _volume_refs(volume)
    return refs


def _missing(owner: Resource, existing: Existing, when: str) -> list[str]:
    pod = pod_spec(owner.doc)
    problems = []
    for ref in pod_refs(pod) if pod is not None else []:
        if (ref.kind, ref.name) not in existing:
            problems.append(f"{when}: {owner} ({ref.where}) needs {ref}, which does not exist yet")
        elif (
            ref.key is not None and (keys := existing[ref.kind, ref.name]) is not None and ref.key not in keys
        ):
            problems.append(f"{when}: {owner} ({ref.where}) needs {ref}, which has only {sorted(keys)}")
    return problems


def _with(existing: Existing, resources: list[Resource]) -> Existing:
    return {**existing, **{(r.kind, r.name): r.keys for r in resources}}


def install_problems(resources: list[Resource], before: Existing) -> list[str]:
    """What keeps a first install from coming up: a hook or pod naming an object that is not there when
    it starts. `before`: what exists before helm runs (the guide's Secrets, the namespace's defaults)."""
    existing = {**NAMESPACE_DEFAULTS, **before}
    problems = []
    hooks = hook_sequence(resources, "pre-install")
    for hook in hooks:
        problems += _missing(hook, existing, f"pre-install hook {hook} (weight {hook.weight})")
        existing = _with(existing, [hook])
    for hook in hooks:  # hook-succeeded: deleted once every pre-install hook has succeeded
        if "hook-succeeded" in hook.delete_policies:
            existing.pop((hook.kind, hook.name))
    release = release_resources(resources)
    existing = _with(existing, release)
    for resource in release:
        problems += _missing(resource, existing, "release")
    return problems


def upgrade_problems(resources: list[Resource], before: Existing) -> list[str]:
    """The same for `helm upgrade` of that release with the same values: pre-upgrade hooks find the
    previous revision's resources and whatever hooks it left behind."""
    existing = _with({**NAMESPACE_DEFAULTS, **before}, release_resources(resources))
    hooks = hook_sequence(resources, "pre-upgrade")
    left = [h for h in hook_sequence(resources, "pre-install") if "hook-succeeded" not in h.delete_policies]
    existing = _with(existing, left)
    problems = []
    for hook in hooks:
        problems += _missing(hook, existing, f"pre-upgrade hook {hook} (weight {hook.weight})")
        existing = _with(existing, [hook])
    return problems


def pods_on_hook_objects(resources: list[Resource]) -> list[str]:
    """Release pods must not stand on hook objects: Helm deletes and re-creates a hook at every upgrade
    (before-hook-creation, the default) or deletes it when it succeeds, and leaves it at uninstall."""
    hooks = {(r.kind, r.name): r for r in resources if r.hook_events}
    problems = []
    for resource in release_resources(resources):
        pod = pod_spec(resource.doc)
        for ref in pod_refs(pod) if pod is not None else []:
            if hook := hooks.get((ref.kind, ref.name)):
                problems.append(
                    f"{resource} ({ref.where}) stands on hook {hook}, which Helm deletes "
                    f"({', '.join(hook.delete_policies)}) and never removes with the release"
                )
    return problems
