"""The simulator's Git over dumb HTTP: a bare repository a test made with the real `git` (and `git
update-server-info`) served read-only at `/<project path>.git/...`, so `git clone` and `dvc get`/`dvc
import` of `<gitlab>/<project>.git` work. `POST /-/sim/git {"project": path, "dir": bare repository}`
says which directory is a project's repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, request, send_from_directory

from scripts.gitlab_sim.world import World


def register(sim: Flask, world: World) -> None:
    """Routes on `sim`; the repositories are kept here, by lowercased project path."""
    repositories: dict[str, Path] = {}

    @sim.post("/-/sim/git")
    def set_git() -> Any:
        spec = request.get_json(force=True)
        project = world.project_by(str(spec["project"]))
        if project is None:
            return jsonify(message="no such project"), 404
        repositories[project["path_with_namespace"].lower()] = Path(spec["dir"])
        return jsonify(project=project["path_with_namespace"], dir=spec["dir"])

    @sim.get("/<path:project>.git/<path:rest>")
    def git_file(project: str, rest: str) -> Response:
        """A file of the bare repository (info/refs, HEAD, objects/...): what a dumb-HTTP client reads."""
        root = repositories.get(project.lower())
        if root is None:
            abort(404)
        response = send_from_directory(root, rest, mimetype="application/octet-stream", max_age=0)
        if rest in ("info/refs", "HEAD"):
            response.mimetype = "text/plain"  # not a smart-HTTP answer: clients fall back to dumb HTTP
        return response
