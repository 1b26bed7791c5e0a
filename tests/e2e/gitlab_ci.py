"""How GitLab turns CI YAML into a job, modelled for the tests of our CI templates (docs.gitlab.com/ci/yaml):
the `spec:inputs` header (a document before `---`) checked and its `$[[ inputs.x ]]` interpolated in the
parsed YAML; `include:` merged under the including file; `extends` (hashes merged, anything else replaced,
so a job's own before_script replaces the template's); `!reference` resolved after `extends`; nested
script lists flattened; variables by precedence (project settings > job > top level > predefined) and
`$VAR` expanded in their values; the job's before_script and script run in one bash, as the runner does."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

INPUT = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")
ANY_BLOCK = re.compile(r"\$\[\[.*?\]\]")
VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
GLOBAL_KEYS = {"default", "include", "stages", "variables", "workflow", "spec"}
SCRIPTS = ("before_script", "script", "after_script")


class ConfigError(Exception):
    """What GitLab would refuse the pipeline for."""


class Reference(list[Any]):
    """`!reference [job, key, …]`, resolved after `extends`."""


class CILoader(yaml.SafeLoader):
    """PyYAML's safe loader plus GitLab's `!reference` tag."""


CILoader.add_constructor("!reference", lambda loader, node: Reference(loader.construct_sequence(node)))


def documents(text: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the spec header or None, the configuration): one document, or a `spec:` document then `---`."""
    docs = list(yaml.load_all(text, Loader=CILoader))
    if len(docs) == 1 and isinstance(docs[0], dict):
        return None, docs[0]
    if len(docs) == 2 and isinstance(docs[0], dict) and list(docs[0]) == ["spec"]:
        return docs[0]["spec"], docs[1]
    raise ConfigError("a CI file is one YAML document, or a `spec:` header, `---`, and the configuration")


def input_values(spec: Mapping[str, Any] | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs a file is interpolated with: given ones checked against the spec, defaults for the rest."""
    declared = (spec or {}).get("inputs") or {}
    if unknown := set(given) - set(declared):
        raise ConfigError(f"unknown input name provided: {sorted(unknown)}")
    values = {}
    for name, rules in declared.items():
        rules = rules or {}
        if name in given:
            value = given[name]
        elif "default" in rules:
            value = rules["default"]
        else:
            raise ConfigError(f"`{name}` input: required value has not been provided")
        kind = rules.get("type", "string")
        types = {"string": str, "number": (int, float), "boolean": bool, "array": list}[kind]
        if not isinstance(value, types):
            raise ConfigError(f"`{name}` input: provided value is not a {kind}")
        if "options" in rules and value not in rules["options"]:
            raise ConfigError(
                f"`{name}` input: `{value}` cannot be used because it is not in the list of options"
            )
        if "regex" in rules and name in given and not re.search(rules["regex"], str(value)):
            raise ConfigError(f"`{name}` input: provided value does not match required RegEx pattern")
        values[name] = value
    return values


def interpolate(node: Any, values: Mapping[str, Any]) -> Any:
    """Every string of the parsed YAML (keys too): a whole-string block keeps the input's type."""
    if isinstance(node, str):
        whole = INPUT.fullmatch(node.strip())
        if whole and node.strip() == node:
            return values[whole.group(1)] if whole.group(1) in values else _unknown(whole.group(1))
        done = INPUT.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else _unknown(m[1]), node)
        if ANY_BLOCK.search(done):
            raise ConfigError(f"interpolation not understood: {done!r}")
        return done
    if isinstance(node, Reference):
        return Reference(interpolate(item, values) for item in node)
    if isinstance(node, list):
        return [interpolate(item, values) for item in node]
    if isinstance(node, dict):
        return {interpolate(k, values): interpolate(v, values) for k, v in node.items()}
    return node


def _unknown(name: str) -> str:
    raise ConfigError(f"unknown interpolation key: `{name}`")


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """GitLab's merge for include and extends: hashes merge key by key, anything else is replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


Fetch = Callable[[str, str], str]  # (include kind, location) → the file's text


def load_pipeline(text: str, fetch: Fetch) -> dict[str, Any]:
    """A .gitlab-ci.yml with its includes merged, `extends` and `!reference` resolved, scripts flattened."""
    header, config = documents(text)
    if header is not None:
        raise ConfigError("a project's .gitlab-ci.yml takes no inputs here")
    merged: dict[str, Any] = {}
    entries = config.get("include") or []
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, str):
            entry = {"remote" if entry.startswith(("http://", "https://")) else "local": entry}
        (kind, location), inputs = _location(entry), entry.get("inputs") or {}
        spec, included = documents(fetch(kind, location))
        if spec is None and inputs:
            raise ConfigError(f"{location}: given inputs not defined in the `spec` section of the file")
        merged = deep_merge(merged, interpolate(included, input_values(spec, inputs)))
    merged = deep_merge(merged, {k: v for k, v in config.items() if k != "include"})
    jobs = {name: _extended(merged, name, 0) for name in merged if name not in GLOBAL_KEYS}
    resolved = {**merged, **jobs}
    resolved = {key: _dereference(value, resolved, 0) for key, value in resolved.items()}
    for job in (v for k, v in resolved.items() if k not in GLOBAL_KEYS and isinstance(v, dict)):
        for key in SCRIPTS:
            if key in job:
                job[key] = _flat(job[key])
    return resolved


def _location(entry: Mapping[str, Any]) -> tuple[str, str]:
    kinds = [k for k in ("local", "remote", "component", "project", "template") if k in entry]
    if len(kinds) != 1:
        raise ConfigError(f"include entry needs exactly one location: {entry}")
    if kinds[0] == "remote" and not entry["remote"].endswith((".yml", ".yaml")):
        raise ConfigError("remote include URLs must end in .yml or .yaml")
    return kinds[0], entry[kinds[0]]


def _extended(config: Mapping[str, Any], name: str, depth: int) -> Any:
    job = config.get(name)
    if depth > 11:
        raise ConfigError(f"{name}: extends nesting too deep")
    if not isinstance(job, dict) or "extends" not in job:
        return copy.deepcopy(job)
    parents = job["extends"] if isinstance(job["extends"], list) else [job["extends"]]
    base: dict[str, Any] = {}
    for parent in parents:
        if parent not in config:
            raise ConfigError(f"{name}: unknown key in `extends`: {parent}")
        base = deep_merge(base, _extended(config, parent, depth + 1))
    return deep_merge(base, {k: v for k, v in job.items() if k != "extends"})


def _dereference(node: Any, config: Mapping[str, Any], depth: int) -> Any:
    if isinstance(node, Reference):
        if depth > 10:
            raise ConfigError("!reference nesting too deep")
        target: Any = config
        for step in node:
            if not isinstance(target, dict) or step not in target:
                raise ConfigError(f"!reference {list(node)} could not be found")
            target = target[step]
        return _dereference(copy.deepcopy(target), config, depth + 1)
    if isinstance(node, list):
        return [_dereference(item, config, depth) for item in node]
    if isinstance(node, dict):
        return {k: _dereference(v, config, depth) for k, v in node.items()}
    return node


def _flat(lines: Any) -> list[str]:
    if isinstance(lines, str):
        return [lines]
    return [line for item in lines for line in _flat(item)]


def expand(value: str, env: Mapping[str, str]) -> str:
    """`$VAR` and `${VAR}` as GitLab expands variables' values (unknown ones become empty)."""
    return VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


@dataclass
class Job:
    """One job as the runner gets it."""

    name: str
    definition: dict[str, Any]
    env: dict[str, str]

    @property
    def lines(self) -> list[str]:
        return [*self.definition.get("before_script", []), *self.definition["script"]]

    def cache_entries(self) -> list[tuple[str, list[str]]]:
        caches = self.definition.get("cache") or []
        caches = caches if isinstance(caches, list) else [caches]
        return [(expand(str(c.get("key", "default")), self.env), list(c.get("paths", []))) for c in caches]

    def id_token_audiences(self) -> dict[str, str]:
        tokens = self.definition.get("id_tokens") or {}
        return {name: expand(str(spec["aud"]), self.env) for name, spec in tokens.items()}


def job(
    pipeline: Mapping[str, Any], name: str, predefined: Mapping[str, str], settings: Mapping[str, str]
) -> Job:
    """The job `name` with its variables: predefined < top-level < job < project settings, expanded."""
    definition = copy.deepcopy(pipeline[name])
    if name.startswith(".") or "script" not in definition:
        raise ConfigError(f"{name} is not a job that runs")
    for key, value in (pipeline.get("default") or {}).items():
        definition.setdefault(key, copy.deepcopy(value))
    env = dict(predefined)
    for layer in (pipeline.get("variables") or {}, definition.get("variables") or {}, settings):
        for key, value in layer.items():
            env[key] = str(value["value"] if isinstance(value, dict) else value)
    for _ in range(3):  # references to references
        env = {key: expand(value, env) if key not in predefined else value for key, value in env.items()}
    return Job(name=name, definition=definition, env=env)


def run(
    job: Job, workdir: Path, cache_store: Path, extra_env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """The runner's steps: restore caches, before_script + script in one bash with errexit, save caches."""
    for key, paths in job.cache_entries():
        for path in paths:
            if (cache_store / key / path).exists():
                shutil.copytree(cache_store / key / path, workdir / path, dirs_exist_ok=True)
    script = "\n".join(job.lines)
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=workdir,
        env={**job.env, **extra_env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode == 0:
        for key, paths in job.cache_entries():
            for path in paths:
                if (workdir / path).exists():
                    shutil.copytree(workdir / path, cache_store / key / path, dirs_exist_ok=True)
    return done
