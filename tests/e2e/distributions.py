"""The package as it ships: the sdist and the wheel built from this tree with `python -m build` (the sdist,
then the wheel from the unpacked sdist, as an index or the Dockerfile gets them), once per test session."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Distributions:
    wheel: Path
    sdist: Path

    def wheel_files(self) -> set[str]:
        with zipfile.ZipFile(self.wheel) as archive:
            return {name for name in archive.namelist() if not name.endswith("/")}

    def sdist_files(self) -> set[str]:
        """Paths inside the sdist, without its top folder (gitlab_data_registry-<version>/)."""
        with tarfile.open(self.sdist) as archive:
            return {m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile() and "/" in m.name}


def source_files(package: str = "app") -> set[str]:
    """Every file of the package in the tree (what a build must carry), bytecode caches aside."""
    return {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def built_distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """The sdist and wheel of this tree, built on the first call of the session and reused after."""
    out = tmp_path_factory.getbasetemp() / "dist"
    if not out.exists():
        partial = tmp_path_factory.mktemp("dist-partial")
        built = subprocess.run(
            [sys.executable, "-m", "build", "--outdir", partial, ROOT],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        partial.rename(out)
    (wheel,) = out.glob("gitlab_data_registry-*.whl")
    (sdist,) = out.glob("gitlab_data_registry-*.tar.gz")
    return Distributions(wheel=wheel, sdist=sdist)


_UNREQUIRED = """
import importlib.metadata as md, json, sys
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name
needed, todo = {}, [("gitlab-data-registry", frozenset(sys.argv[1:]))]
while todo:
    name, extras = todo.pop()
    key = canonicalize_name(name)
    if extras <= needed.get(key, frozenset()) and key in needed:
        continue
    needed[key] = needed.get(key, frozenset()) | extras
    for line in md.requires(name) or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
            todo.append((req.name, frozenset(req.extras)))
installed = {canonicalize_name(d.metadata["Name"]) for d in md.distributions()}
print(json.dumps(sorted(installed - set(needed))))
"""


def unrequired_distributions(venv: Path, *extras: str) -> set[str]:
    """What the venv holds beyond gitlab-data-registry[extras] and its dependencies, by their metadata."""
    found = subprocess.run(
        [venv / "bin" / "python", "-c", _UNREQUIRED, *extras],
        capture_output=True,
        text=True,
        check=True,
        cwd=venv,
    )
    return set(json.loads(found.stdout)) - {"pip", "setuptools"}  # the venv's own


def installed_distributions(venv: Path) -> set[str]:
    """The (lower-cased) names of the distributions pip lists in a venv."""
    listed = subprocess.run(
        [venv / "bin" / "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split("==")[0].lower() for line in listed.splitlines()}
