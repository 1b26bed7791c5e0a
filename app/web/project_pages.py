"""A project's data page for browsers (`/<project>/-/data/<prefix>/` asked for as HTML): its files by
folder with search and paging, its trash (restore for Maintainers), copy-paste set-up, usage against the
quota; an object's own page; downloads through signed attachment URLs; and the badge. The data plane
itself is unchanged: DVC, curl and WebDAV clients never name text/html in Accept."""

from __future__ import annotations

import base64
import json
from itertools import islice
from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidPath,
    NotFound,
    PermissionDenied,
)
from app.model.identity import Credential
from app.model.objects import Listing, ObjectInfo
from app.model.projects import ProjectRef
from app.model.sizes import human_size
from app.signin import SignIn
from app.validation import text_problem
from app.web import dataset_views
from app.web.context import services
from app.web.negotiation import prefers_html
from app.web.object_pages import object_page
from app.web.page_parts import crumbs, data_url, visitor_credential
from app.web.sessions import FORGED, current_session, form_is_ours, message

bp = Blueprint("project_pages", __name__, template_folder="templates")
PAGE = 100  # rows per page of a search, of the trash
FOLDER_LIMIT = 1000  # entries shown of one folder; past it, search narrows it down
_HIDDEN = (AuthenticationRequired, PermissionDenied, NotFound)


def wants_page() -> bool:
    """A browser asking for a page (negotiation.prefers_html: the one rule, error pages use it too)."""
    return prefers_html(request)


def _hidden(ref: ProjectRef) -> ResponseReturnValue:
    """What a project the visitor cannot see looks like: sign in first, else GitLab's 404."""
    if current_session() is None and services().signin is not None:
        return redirect(url_for("sessions.sign_in", return_to=request.full_path.rstrip("?")))
    return message("Not found", f"Project {ref} does not exist or you cannot see it.", 404)


def _cursor(info: ObjectInfo) -> str:
    return base64.urlsafe_b64encode(json.dumps(info.path).encode()).decode()


def _after(cursor: str | None) -> tuple[Any, str] | None:
    if not cursor:
        return None
    try:
        path = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        return None
    return (path, path) if isinstance(path, str) and not text_problem(path) else None


def page(ref: ProjectRef, path: str) -> ResponseReturnValue:
    """The page for a project and a folder of it (`path` empty or ending in "/"), or for an object."""
    if path and not path.endswith("/"):
        return object_page(ref, path)
    svc, credential = services(), visitor_credential()
    prefix = path.strip("/")
    try:
        stats = svc.registry.stats(credential, ref)
    except _HIDDEN:
        return _hidden(ref)
    view = request.args.get("view", "files" if prefix else "datasets")
    base = request.script_root + f"/{stats.path}/-/data/"
    context: dict[str, Any] = {
        "stats": stats,
        "view": view,
        "prefix": prefix,
        "base": base,
        "crumbs": crumbs(prefix),
        "session": current_session(),
        "sign_in_enabled": svc.signin is not None,
        "human_size": human_size,
        "data_url": data_url(stats.path),
        "gitlab_url": svc.settings.gitlab_url,
    }
    if (shown := dataset_views.dispatch(ref, credential, context)) is not None:
        return shown  # compare, history; otherwise the datasets pages are given `use_commands`
    if view == "datasets" and request.args.get("dataset"):
        try:
            context |= _dataset_tree(credential, ref, base)
        except NotFound:
            return message("Not found", "That dataset is not in this registry.", 404)
    elif view == "datasets":
        try:
            context["datasets"] = svc.datasets.at_ref(credential, ref, request.args.get("ref"))
        except PermissionDenied as e:
            context["datasets_problem"] = e.message
        context["may_restore"] = svc.trash.may_restore(credential, ref)
    elif view == "trash":
        listing = Listing(
            prefix=f"{prefix}/" if prefix else "", limit=PAGE + 1, after=_after(request.args.get("after"))
        )
        rows = svc.trash.page(credential, ref, listing)
        context |= {
            "trashed": [(info, svc.trash.purge_at(info)) for info in rows[:PAGE]],
            "names": svc.datasets.names(credential, ref, [info.path for info in rows[:PAGE]]),
            "next": _cursor(rows[PAGE - 1]) if len(rows) > PAGE else None,
            "may_restore": svc.trash.may_restore(credential, ref),
        }
    elif view == "files" and request.args.get("q"):
        listing = Listing(
            prefix=f"{prefix}/" if prefix else "",
            search=request.args["q"][:200],
            limit=PAGE + 1,
            after=_after(request.args.get("after")),
        )
        rows = svc.registry.list_objects(credential, ref, listing)
        context |= {"found": rows[:PAGE], "next": _cursor(rows[PAGE - 1]) if len(rows) > PAGE else None}
    elif view == "setup":
        context |= _setup(stats.path, prefix)
    elif view == "files":
        try:
            browse = svc.registry.browse(credential, ref, prefix)
        except InvalidPath as e:
            return message("Invalid path", e.message, 400)
        entries = list(islice(browse.children, FOLDER_LIMIT + 1))
        context |= {
            "entries": entries[:FOLDER_LIMIT],
            "truncated": len(entries) > FOLDER_LIMIT,
            "may_delete": svc.trash.may_restore(credential, ref),  # the same right: Maintainer, scope api
        }
    return render_template("project.html", **context)


def _dataset_tree(credential: Credential | None, ref: ProjectRef, base: str) -> dict[str, Any]:
    """A directory dataset's folder (`dir`), or its files anywhere whose path has `q` in it, a numbered
    page (`page`) at a time."""
    args, datasets = request.args, services().datasets
    manifest, folder, text = args["dataset"], args.get("dir", "").strip("/"), args.get("q", "").strip()[:200]
    number = max(1, args.get("page", 1, type=int) or 1)
    offset = (number - 1) * PAGE
    folders: list[str] = []
    if text:
        files, total = datasets.search(credential, ref, manifest, text, offset=offset, limit=PAGE)
    else:
        folders, files, total = datasets.files(credential, ref, manifest, folder, offset=offset, limit=PAGE)
    kept = {"dataset": manifest, "name": args.get("name", ""), "ref": args.get("ref", "")}
    kept |= {"q": text} if text else {"dir": folder}
    return {
        "dataset": manifest,
        "name": kept["name"],
        "git_ref": kept["ref"],
        "folder": folder,
        "query": text,
        "folders": folders,
        "files": files,
        "total": total,
        "page_number": number,
        "page_count": max(1, -(-total // PAGE)),
        "page_url": base + "?" + urlencode({k: v for k, v in kept.items() if v}) + "&page=",
    }


def _setup(project: str, prefix: str) -> dict[str, Any]:
    """The set-up commands' values: the folder DVC keeps its data in (this page's, else `dvc`), as an s3
    bucket (its first segment) and key prefix, and the project's S3 endpoint. The bucket needs no making:
    the door answers a folder not made yet as an empty bucket."""
    folder = prefix or "dvc"
    return {
        "folder": folder,
        "bucket": folder.partition("/")[0],
        "s3_remote": f"s3://{folder}",
        "s3_endpoint": data_url(project).removesuffix("/-/data") + "/-/s3",
    }


@bp.get("/-/ui/projects/<id:project_id>/download")
def download(project_id: int) -> ResponseReturnValue:
    """The object as a file saved under its own name (or `name`: a dataset file's name in the repository):
    a signed attachment URL, no bytes through here."""
    ref = ProjectRef(id=project_id)
    name = request.args.get("name", "").rpartition("/")[2] or None
    try:
        got = services().registry.download(
            visitor_credential(), ref, request.args.get("path", ""), as_attachment=True, filename=name
        )
    except _HIDDEN:
        return _hidden(ref)
    return redirect(got.url.url)


@bp.post("/-/ui/projects/<id:project_id>/trash/restore")
def restore(project_id: int) -> ResponseReturnValue:
    """Bring checked objects back from the trash (Maintainers; a form with the session's CSRF token)."""
    session = current_session()
    if session is None or not form_is_ours(session):
        return message("Refused", FORGED, 403)
    svc, ref = services(), ProjectRef(id=project_id)
    paths = request.form.getlist("path")[:1000]
    try:
        restored = svc.trash.restore(SignIn.credential(session), ref, paths)
    except _HIDDEN as e:
        return message("Refused", e.message if isinstance(e, PermissionDenied) else "Not found.", 403)
    project = svc.registry.stats(SignIn.credential(session), ref).path
    view = "" if request.form.get("back") == "datasets" else "view=trash&"
    return redirect(f"{request.script_root}/{quote(project)}/-/data/?{view}restored={len(restored)}")


@bp.post("/-/ui/projects/<id:project_id>/delete")
def delete(project_id: int) -> ResponseReturnValue:
    """Move checked objects to the trash (Maintainers; a form with the session's CSRF token). Only object
    paths: a folder is never deleted from here."""
    session = current_session()
    if session is None or not form_is_ours(session):
        return message("Refused", FORGED, 403)
    svc, ref, credential = services(), ProjectRef(id=project_id), SignIn.credential(session)
    paths = request.form.getlist("path")[:1000]
    try:
        for path in paths:
            svc.registry.stat(credential, ref, path)  # an object, or ObjectNotFound
            svc.registry.delete(credential, ref, path)
    except _HIDDEN as e:
        return message("Refused", e.message if isinstance(e, PermissionDenied) else "Not found.", 403)
    except Conflict as e:
        return message("Not deleted", e.message, 409)
    project = svc.registry.stats(credential, ref).path
    folder = request.form.get("folder", "").strip("/")
    return redirect(
        f"{request.script_root}/{quote(project)}/-/data/{quote(folder + '/' if folder else '')}?view=files"
    )


def badge(ref: ProjectRef) -> Response:
    """`badge.svg`: the project's usage for whoever may read it (anonymous: public projects), a neutral
    badge otherwise, so it never tells a private project from a missing one."""
    try:
        stats = services().registry.stats(visitor_credential(), ref)
        value, color = human_size(stats.used_bytes), "#1f75cb"
    except _HIDDEN:
        value, color = "registry", "#626168"
    label = "data"
    left, right = 6 * len(label) + 12, 7 * len(value) + 12
    svg = render_template("badge.svg", label=label, value=value, color=color, left=left, right=right)
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "no-cache, max-age=0"})
