"""The simulator's generic packages registry (doc/user/packages/generic_packages, doc/api/packages.md):
upload and download of package files, the paged package and package-file lists. Enough for DVC's http
remote pointed at `/api/v4/projects/:id/packages/generic/<name>` (the hack this product replaces)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request

from scripts.gitlab_sim.world import World

CREATED = "2026-01-15T10:00:00.000Z"
_VERSION = re.compile(r"^(\.?[\w+-]+\.?)+$")  # GitLab's generic package version rule
_NAME = re.compile(r"^[A-Za-z0-9._\-+~]+$")


def register(
    sim: Flask,
    world: World,
    *,
    package_user: Callable[[], int | None],
    visible_project: Callable[[str, int | None], dict[str, Any]],
    paged: Callable[[list[Any]], Response],
    refused: Callable[[int, dict[str, Any]], Exception],
) -> None:
    """Routes on `sim`; `package_user` is the user behind the request's credential (PRIVATE-TOKEN,
    Bearer, Basic password, JOB-TOKEN), None for anonymous."""

    def writable(ident: str) -> dict[str, Any]:
        user_id = package_user()
        project = visible_project(ident, user_id)
        if user_id is None:
            raise refused(401, {"message": "401 Unauthorized"})
        if world.access_level(project, user_id) < 30 and not world.is_admin(user_id):
            raise refused(403, {"message": "403 Forbidden"})
        return project

    @sim.route(
        "/api/v4/projects/<path:ident>/packages/generic/<name>/<version>/<path:file_name>", methods=["PUT"]
    )
    def upload(ident: str, name: str, version: str, file_name: str) -> Any:
        project = writable(ident)
        if not _NAME.match(name) or not _VERSION.match(version):
            raise refused(400, {"message": "400 Bad request - package_name or package_version is invalid"})
        body = request.get_data()
        packages = world.packages.setdefault(project["id"], {})
        package = packages.setdefault(
            (name, version), {"id": 1000 + len(world.package_files) + len(packages), "files": {}}
        )
        world.package_files[(project["id"], name, version, file_name)] = body
        package["files"][file_name] = {
            "id": len(world.package_files),
            "package_id": package["id"],
            "created_at": CREATED,
            "file_name": file_name,
            "size": len(body),
            "file_md5": hashlib.md5(body).hexdigest(),
            "file_sha1": hashlib.sha1(body).hexdigest(),
            "file_sha256": hashlib.sha256(body).hexdigest(),
        }
        return jsonify(message="201 Created"), 201

    @sim.route(
        "/api/v4/projects/<path:ident>/packages/generic/<name>/<version>/<path:file_name>",
        methods=["GET", "HEAD"],
    )
    def download(ident: str, name: str, version: str, file_name: str) -> Any:
        user_id = package_user()
        project = visible_project(ident, user_id)
        if project["visibility"] != "public" and user_id is None:
            raise refused(401, {"message": "401 Unauthorized"})
        body = world.package_files.get((project["id"], name, version, file_name))
        if body is None:
            raise refused(404, {"message": "404 Package Not Found"})
        return Response(body, mimetype="application/octet-stream")

    @sim.get("/api/v4/projects/<path:ident>/packages")
    def packages(ident: str) -> Any:
        user_id = package_user()
        project = visible_project(ident, user_id)
        if project["visibility"] != "public" and user_id is None:
            raise refused(401, {"message": "401 Unauthorized"})
        wanted = request.args.get("package_type")
        listed = [
            {
                "id": package["id"],
                "name": name,
                "version": version,
                "package_type": "generic",
                "status": "default",
                "created_at": CREATED,
            }
            for (name, version), package in sorted(world.packages.get(project["id"], {}).items())
            if wanted in (None, "generic")
        ]
        return paged(listed)

    @sim.get("/api/v4/projects/<path:ident>/packages/<int:package_id>/package_files")
    def package_files(ident: str, package_id: int) -> Any:
        user_id = package_user()
        project = visible_project(ident, user_id)
        if project["visibility"] != "public" and user_id is None:
            raise refused(401, {"message": "401 Unauthorized"})
        package = next(
            (p for p in world.packages.get(project["id"], {}).values() if p["id"] == package_id), None
        )
        if package is None:
            raise refused(404, {"message": "404 Package Not Found"})
        return paged(sorted(package["files"].values(), key=lambda f: f["id"]))
