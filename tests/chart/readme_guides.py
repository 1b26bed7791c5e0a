"""The install guides of helm/data-registry/README.md as the commands an admin pastes: each `## ` section
whose fenced bash blocks run `helm upgrade --install`, with the namespaces, ServiceAccounts and Secrets
(and their keys) its `kubectl create` commands make."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

FENCE = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
SEPARATORS = {"&&", "||", ";", "|", "&"}
# `helm upgrade` flags that `helm template` does not take (it takes the install ones: -n, -f, --set*, ...)
UPGRADE_ONLY = {"--install", "-i", "--reuse-values", "--reset-values", "--reset-then-reuse-values", "--force"}
UPGRADE_ONLY_WITH_VALUE = {"--history-max", "--description"}


@dataclass
class Guide:
    """One guide: its title, every command of its bash blocks, and what its kubectl commands create."""

    title: str
    commands: list[list[str]]
    namespaces: set[str] = field(default_factory=set)
    objects: dict[tuple[str, str, str], frozenset[str] | None] = field(default_factory=dict)

    @property
    def helm_install(self) -> list[str]:
        (found,) = [c for c in self.commands if c[:3] == ["helm", "upgrade", "--install"]]
        return found

    @property
    def secret_commands(self) -> list[list[str]]:
        return [c for c in self.commands if c[:1] == ["kubectl"] and _verb(c)[:2] == ["create", "secret"]]


def commands_of(script: str) -> list[list[str]]:
    """The simple commands of a bash snippet: continuation lines joined, comments dropped."""
    commands: list[list[str]] = [[]]
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        for token in [*lexer, "\n"]:
            if token == "\n" or token in SEPARATORS:
                commands.append([])
            else:
                commands[-1].append(token)
    return [c for c in commands if c]


def _flag(command: list[str], *names: str) -> str | None:
    for i, token in enumerate(command):
        for name in names:
            if token == name and i + 1 < len(command):
                return command[i + 1]
            if name.startswith("--") and token.startswith(name + "="):
                return token[len(name) + 1 :]
    return None


def _verb(command: list[str]) -> list[str]:
    """kubectl's words without its flags (`-n data create secret generic X`: create secret generic X)."""
    words, skip = [], False
    for token in command[1:]:
        if skip:
            skip = False
        elif token in ("-n", "--namespace", "--context"):
            skip = True
        elif not token.startswith("-"):
            words.append(token)
    return words


def secret_keys(command: list[str]) -> frozenset[str] | None:
    """The keys `kubectl create secret ...` puts in the Secret (None when an env file decides)."""
    kind = _verb(command)[2]
    if kind == "tls":
        return frozenset({"tls.crt", "tls.key"})
    if kind == "docker-registry":
        return frozenset({".dockerconfigjson"})
    keys = set()
    for token in command:
        if token.startswith("--from-env-file"):
            return None
        if token.startswith("--from-literal="):
            keys.add(token.split("=", 2)[1])
        elif token.startswith("--from-file="):
            spec = token.split("=", 1)[1]
            keys.add(spec.split("=", 1)[0] if "=" in spec else PurePosixPath(spec).name)
    return frozenset(keys)


def _created(guide: Guide) -> None:
    for command in guide.commands:
        if command[:1] != ["kubectl"]:
            continue
        verb = _verb(command)
        namespace = _flag(command, "-n", "--namespace") or "default"
        if verb[:2] in (["create", "namespace"], ["create", "ns"]):
            guide.namespaces.add(verb[2])
        elif verb[:2] in (["create", "serviceaccount"], ["create", "sa"]):
            guide.objects["ServiceAccount", namespace, verb[2]] = None
        elif verb[:2] == ["create", "secret"]:
            guide.objects["Secret", namespace, verb[3]] = secret_keys(command)


def guides(readme: Path) -> list[Guide]:
    """Every section of the README that installs the chart."""
    found = []
    for section in re.split(r"^## ", readme.read_text(), flags=re.MULTILINE)[1:]:
        title = section.splitlines()[0].strip()
        commands = [c for block in FENCE.findall(section) for c in commands_of(block)]
        if any(c[:2] == ["helm", "upgrade"] for c in commands):
            guide = Guide(title, commands)
            _created(guide)
            found.append(guide)
    return found


def secret_literals(guide: Guide) -> dict[tuple[str, str], str]:
    """(Secret name, key) -> the value of each `--from-literal=KEY=VALUE`, as the README writes it."""
    return {
        (_verb(command)[3], token.split("=", 2)[1]): token.split("=", 2)[2]
        for command in guide.secret_commands
        for token in command
        if token.startswith("--from-literal=")
    }


def template_args(install: list[str]) -> list[str]:
    """`helm upgrade --install REL CHART FLAGS` as `helm template REL CHART FLAGS` (same release, chart,
    namespace and values; only the flags that mean nothing without a cluster are dropped)."""
    args, skip = [], False
    for token in install[3:]:
        if skip:
            skip = False
        elif token in UPGRADE_ONLY_WITH_VALUE:
            skip = True
        elif token not in UPGRADE_ONLY and token.split("=")[0] not in UPGRADE_ONLY_WITH_VALUE:
            args.append(token)
    return ["template", *args]


def release_namespace(install: list[str]) -> str:
    return _flag(install, "-n", "--namespace") or "default"
