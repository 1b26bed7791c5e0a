"""The JSON API `/api/v1` views: project registry info, object listing with cursor paging, batch
existence, signed downloads, delete, direct upload sessions, admin usage and quotas. Schemas are in
schemas.py; the OpenAPI document (openapi.py) is generated from these routes."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from app.errors import BadRequest
from app.model.objects import Listing, ObjectInfo
from app.model.projects import ProjectRef
from app.model.sizes import parse_size
from app.validation import text_problem
from app.web.context import services
from app.web.credentials import credential_from
from app.web.openapi import build_spec, operation
from app.web.project_ids import project_ref
from app.web.schemas import (
    DownloadQuerySchema,
    DownloadSchema,
    ExistsRequestSchema,
    ExistsResponseSchema,
    ListQuerySchema,
    ObjectPageSchema,
    PathQuerySchema,
    ProjectSchema,
    ProjectUsageSchema,
    PurgeResultSchema,
    QuotaRequestSchema,
    RestoreRequestSchema,
    RestoreResultSchema,
    TrashPageSchema,
    UsageQuerySchema,
    UsageSchema,
)
from app.web.upload_schemas import UploadRequestSchema, UploadResultSchema, UploadSessionSchema
from app.web.whoami_schemas import WhoamiQuerySchema, WhoamiSchema

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _cursor(order_by: str, sort: str, last: ObjectInfo) -> str:
    """An opaque cursor: the ordering and the key of the last object of a page."""
    value: Any = {"path": None, "size": last.size, "created_at": last.created_at.isoformat()}[order_by]
    raw = json.dumps([order_by, sort, value, last.path], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _after(cursor: str | None, order_by: str, sort: str) -> tuple[Any, str] | None:
    """The key a cursor starts after; 400 for a cursor not made by this API for the same ordering."""
    if not cursor:
        return None
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        made_for, made_sort, value, path = json.loads(raw)
        if (made_for, made_sort) != (order_by, sort) or not isinstance(path, str) or text_problem(path):
            raise ValueError("another ordering")
        if order_by == "created_at":
            value = datetime.fromisoformat(value)
        elif order_by == "size" and (type(value) is not int or not 0 <= value < 2**63):
            raise ValueError("not a size")  # bools are no sizes; nor is anything a BIGINT cannot hold
    except (ValueError, TypeError):  # binascii.Error, UnicodeDecodeError, JSONDecodeError alike
        raise BadRequest("Invalid request: cursor: not a cursor from this API for this ordering") from None
    return value, path


def _listing(query: dict[str, Any]) -> Listing:
    """What a listing query asks for, one more than the page to know whether another follows."""
    order_by, sort = query["order_by"], query["sort"]
    return Listing(
        prefix=query["prefix"],
        search=query["search"],
        limit=query["limit"] + 1,
        order_by=order_by,
        descending=sort == "desc",
        after=_after(query["cursor"], order_by, sort),
    )


def _absolute(url: str) -> str:
    """A URL API clients can use as is: the local backend's own are relative without REGISTRY_PUBLIC_URL."""
    return request.host_url.rstrip("/") + url if url.startswith("/") else url


@bp.get("/projects/<project:project_id>")
@operation(returns={200: ("OK", ProjectSchema)})
def project(project_id: ProjectRef) -> Response:
    """Project registry info: usage, quota, object count, last upload.

    Needs read access: **Reporter** on a private project, any user on an internal one, anyone on a public
    one; tokens need the `read_api` scope (deploy tokens `read_package_registry`)."""
    stats = services().registry.stats(credential_from(request), project_id)
    return jsonify(ProjectSchema().dump(stats))


@bp.get("/projects/<project:project_id>/objects")
@operation(
    query=ListQuerySchema,
    returns={200: ("OK", ObjectPageSchema)},
    example_query={"prefix": "dvc/files/md5/", "limit": 2},
)
def objects(project_id: ProjectRef, query: dict[str, Any]) -> Response:
    """Objects under a prefix, optionally containing a substring, by path, size or age; cursor paging.

    A page holds at most `limit` objects; while `next_cursor` is not `null`, pass it as `cursor` (with the
    same `order_by` and `sort`) for the next page. Needs read access."""
    order_by, sort = query["order_by"], query["sort"]
    page = services().registry.list_objects(credential_from(request), project_id, _listing(query))
    more = len(page) > query["limit"]
    page = page[: query["limit"]]
    next_cursor = _cursor(order_by, sort, page[-1]) if more else None
    return jsonify(ObjectPageSchema().dump({"objects": page, "next_cursor": next_cursor}))


@bp.get("/projects/<project:project_id>/trash")
@operation(
    query=ListQuerySchema,
    returns={200: ("OK", TrashPageSchema)},
    example_query={"prefix": "dvc/files/md5/", "limit": 2},
)
def trash(project_id: ProjectRef, query: dict[str, Any]) -> Response:
    """Deleted objects kept for the retention period, with when each goes for good; cursor paging.

    Paged like the object listing. Needs read access."""
    trash = services().trash
    listing, limit = _listing(query), query["limit"]
    page = trash.page(credential_from(request), project_id, listing)
    objects = [{**vars(info), "purge_at": trash.purge_at(info)} for info in page[:limit]]
    next_cursor = _cursor(query["order_by"], query["sort"], page[limit - 1]) if len(page) > limit else None
    return jsonify(TrashPageSchema().dump({"objects": objects, "next_cursor": next_cursor}))


@bp.post("/projects/<project:project_id>/trash/restore")
@operation(
    body=RestoreRequestSchema,
    returns={200: ("restored", RestoreResultSchema)},
    refusals={409: "a .dir lists a file that is gone for good", 413: "they no longer fit in the quota"},
)
def restore(project_id: ProjectRef, body: dict[str, Any]) -> Response:
    """Bring objects back from the trash (**Maintainer**); a `.dir` brings back the files it lists.

    All or nothing: a 409 or 413 restores none of them."""
    restored = services().trash.restore(credential_from(request), project_id, body["paths"])
    return jsonify(RestoreResultSchema().dump({"restored": restored}))


@bp.post("/projects/<project:project_id>/trash/purge")
@operation(returns={200: ("purged", PurgeResultSchema)})
def purge(project_id: ProjectRef) -> Response:
    """Empty the trash now (**Maintainer**): its objects are deleted for good and stop counting toward
    the quota."""
    report = services().trash.purge(credential_from(request), project_id)
    return jsonify(PurgeResultSchema().dump({"objects": report.objects, "bytes": report.bytes}))


@bp.post("/projects/<project:project_id>/objects/exists")
@operation(body=ExistsRequestSchema, returns={200: ("OK", ExistsResponseSchema)})
def exists(project_id: ProjectRef, body: dict[str, Any]) -> Response:
    """Batch existence of up to 1,000 paths and 1,000 md5s in one request.

    What `data-registry import-generic-packages` asks before it copies anything. Needs read access."""
    paths, md5s = services().registry.exists(
        credential_from(request), project_id, paths=body["paths"], md5s=body["md5s"]
    )
    return jsonify({"paths": paths, "md5s": md5s})


@bp.get("/projects/<project:project_id>/objects/download")
@operation(query=DownloadQuerySchema, returns={200: ("OK", DownloadSchema)})
def download(project_id: ProjectRef, query: dict[str, Any]) -> Response:
    """A signed URL that downloads the object straight from storage.

    `GET` the `url` before `expires_at`, without a credential. Needs read access."""
    got = services().registry.download(
        credential_from(request), project_id, query["path"], as_attachment=query["attachment"]
    )
    body = {
        "url": _absolute(got.url.url),
        "expires_at": got.url.expires_at,
        "size": got.info.size,
        "md5": got.info.md5,
    }
    return jsonify(DownloadSchema().dump(body))


@bp.delete("/projects/<project:project_id>/objects")
@operation(query=PathQuerySchema, returns={204: ("deleted", None)})
def delete(project_id: ProjectRef, query: dict[str, Any]) -> Response:
    """Delete an object, or every object under a path (**Maintainer**).

    With a trash retention set, it goes to the trash: `POST .../trash/restore` brings it back until its
    `purge_at`. A 409 while a `.dir` that stays still lists it."""
    services().registry.delete(credential_from(request), project_id, query["path"])
    return Response(status=204)


@bp.post("/projects/<project:project_id>/uploads")
@operation(
    body=UploadRequestSchema,
    returns={201: ("session opened", UploadSessionSchema)},
    refusals={409: "a different object exists", 413: "over quota or file-size limit"},
)
def start_upload(project_id: ProjectRef, body: dict[str, Any]) -> tuple[Response, int]:
    """Open a direct upload: signed URLs that take the file straight to storage (**Developer**).

    Then:
    - `PUT` the bytes as the answer's `kind` says (each part to its `url`, or the GCS resumable session);
    - `POST .../uploads/{session_id}/complete` to check size and md5 and index the object,
      or `DELETE .../uploads/{session_id}` to give up."""
    session, direct = services().uploads.start(credential_from(request), project_id, **body)
    dumped = UploadSessionSchema().dump(
        {
            "id": session.id,
            "path": session.path,
            "size": session.size,
            "md5": session.md5,
            "expires_at": session.expires_at,
            "kind": direct.kind,
            "part_size": direct.part_size,
            "parts": [replace(part, url=_absolute(part.url)) for part in direct.parts],
            "url": direct.url,
            "headers": direct.headers,
        }
    )
    return jsonify(dumped), 201


@bp.post("/projects/<project:project_id>/uploads/<session_id>/complete")
@operation(
    returns={
        201: ("stored", UploadResultSchema),
        200: ("an identical object was already there", UploadResultSchema),
    },
    refusals={409: "not all bytes have arrived yet, or a conflict", 413: "over quota"},
    example_answers={200: {"created": False}},
)
def complete_upload(project_id: ProjectRef, session_id: str) -> tuple[Response, int]:
    """Verify the uploaded file (size, md5) and index it; 201 new, 200 identical object already there.

    Needs write access (**Developer**), like opening the session."""
    done = services().uploads.complete(credential_from(request), project_id, session_id)
    return jsonify(UploadResultSchema().dump({"object": done.info, "created": done.created})), (
        201 if done.created else 200
    )


@bp.delete("/projects/<project:project_id>/uploads/<session_id>")
@operation(returns={204: ("aborted", None)})
def abort_upload(project_id: ProjectRef, session_id: str) -> Response:
    """Abort a direct upload and drop what it stored (**Developer**)."""
    services().uploads.abort(credential_from(request), project_id, session_id)
    return Response(status=204)


@bp.get("/admin/projects")
@operation(query=UsageQuerySchema, returns={200: ("OK", UsageSchema)}, example_query={"limit": 20})
def usage(query: dict[str, Any]) -> Response:
    """Projects by storage used, the largest first (**GitLab administrators**)."""
    projects = services().registry.usage(credential_from(request), limit=query["limit"])
    return jsonify(UsageSchema().dump({"projects": projects}))


@bp.get("/admin/projects/<id:project_id>/quota")
@operation(returns={200: ("OK", ProjectUsageSchema)})
def get_quota(project_id: int) -> Response:
    """A project's usage and quota (**GitLab administrators**)."""
    return jsonify(ProjectUsageSchema().dump(services().registry.quota(credential_from(request), project_id)))


@bp.put("/admin/projects/<id:project_id>/quota")
@operation(body=QuotaRequestSchema, returns={200: ("OK", ProjectUsageSchema)})
def set_quota(project_id: int, body: dict[str, Any]) -> Response:
    """Set a project's quota, or `null` for the default (**GitLab administrators**).

    The quota is a number of bytes or a size such as `100GiB`; `0` means unlimited."""
    raw = body["quota"]
    if isinstance(raw, bool) or not isinstance(raw, int | str | None):
        raise BadRequest("Invalid request: quota: a number of bytes, a size such as 100GiB, or null")
    try:
        quota = None if raw is None else parse_size(str(raw))
    except ValueError as e:
        raise BadRequest(f"Invalid request: quota: {e}") from None
    done = services().registry.set_quota(credential_from(request), project_id, quota)
    return jsonify(ProjectUsageSchema().dump(done))


@bp.get("/whoami")
@operation(query=WhoamiQuerySchema, returns={200: ("OK", WhoamiSchema)})
def whoami(query: dict[str, Any]) -> Response:
    """Who the credential is and what it may do on a project, with the reason for each refusal."""
    ref = project_ref(query["project"].strip("/"))
    if ref is None:
        raise BadRequest("Invalid request: project: not a project id (1 to 2**63-1) or full path")
    diagnosis = services().registry.diagnose(credential_from(request), ref)
    grant = diagnosis.grant
    actor = diagnosis.actor or (grant.actor if grant else None)  # named even when the project is not
    body = {
        "credential": None
        if actor is None
        else {
            "kind": actor.kind.value,
            "user_id": actor.user_id,
            "username": actor.username,
            "scopes": sorted(actor.scopes),
            "expires_at": actor.expires_at,
            "job_project_id": actor.job_project_id,
            "verified": diagnosis.unverified is None,
            "unverified_reason": diagnosis.unverified,
        },
        "project": {"id": grant.project.id, "path": grant.project.path} if grant else None,
        "role": grant.role.name.replace("_", " ").title() if grant and grant.actor else None,
        "access": {
            action.value: {"allowed": reason is None, "reason": reason}
            for action, reason in diagnosis.refusals.items()
        },
        "server_time": datetime.now(UTC),
    }
    return jsonify(WhoamiSchema().dump(body))


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document of this API."""
    return jsonify(build_spec(current_app).to_dict())
