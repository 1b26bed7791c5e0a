"""The datasets page's views of change and use: `?compare=<from>...<to>` (what changed between two refs),
`?history=<dataset>` (the commits that changed it), and the commands to use a dataset or a file elsewhere
(given to the datasets, tree and file pages as a function their templates call)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from flask import render_template, request
from flask.typing import ResponseReturnValue

from app.dataset_commands import Commands, commands
from app.dataset_compare import Comparisons, parse_range
from app.dataset_history import Histories
from app.dvc_config import Remote
from app.errors import BadRequest, NotFound, PermissionDenied
from app.model.identity import Credential
from app.model.projects import ProjectRef
from app.registry import ProjectStats
from app.web.context import services
from app.web.sessions import message

ROWS = 100  # changed files per page of one dataset
SHOWN = 10  # datasets whose first page of files a comparison shows; the others by their link
CommandsFor = Callable[..., Commands]


def dispatch(
    ref: ProjectRef, credential: Credential | None, context: dict[str, Any]
) -> ResponseReturnValue | None:
    """The compare or history page when asked for; otherwise None, after giving the datasets pages
    `use_commands` (called only by the rows that show commands)."""
    if context["view"] == "datasets" and request.args.get("compare"):
        return _compare(ref, credential, context)
    if context["view"] == "datasets" and request.args.get("history"):
        return _history(ref, credential, context)
    stats = context["stats"]
    context["use_commands"] = commands_for(ref, credential, stats.id, stats.path, context["data_url"])
    return None


def _problem(error: Exception) -> ResponseReturnValue:
    if isinstance(error, BadRequest):
        return message("Bad request", error.message, 400)
    if isinstance(error, PermissionDenied):
        return message("Refused", error.message, 403)
    return message("Not found", error.message if isinstance(error, NotFound) else "Not found.", 404)


def _compare(ref: ProjectRef, credential: Credential | None, context: dict[str, Any]) -> ResponseReturnValue:
    svc = services()
    comparisons = Comparisons(gateway=svc.gateway, datasets=svc.datasets, index=svc.index)
    project_id = context["stats"].id
    try:
        before, after = parse_range(request.args["compare"])
        comparison = comparisons.compare(credential, ref, project_id, before, after)
    except (BadRequest, NotFound, PermissionDenied) as e:
        return _problem(e)
    chosen = request.args.get("dataset")
    page = max(1, request.args.get("page", 1, type=int) or 1)
    shown = [c for c in comparison.changed if chosen in (None, c.name)][: 1 if chosen else SHOWN]
    sections = []
    for change in shown:
        number = page if chosen else 1
        total = len(change.diff.rows) if change.diff else 0
        pages = max(1, -(-total // ROWS))
        rows = comparisons.rows(project_id, change, offset=(min(number, pages) - 1) * ROWS, limit=ROWS)
        sections.append({"change": change, "rows": rows, "page": min(number, pages), "pages": pages})
    return render_template(
        "compare.html",
        **context,
        comparison=comparison,
        sections=sections,
        chosen=chosen,
        more=len(comparison.changed) > len(shown),
        compare_arg=f"{before}...{after}",
    )


def _history(ref: ProjectRef, credential: Credential | None, context: dict[str, Any]) -> ResponseReturnValue:
    svc = services()
    histories = Histories(gateway=svc.gateway, datasets=svc.datasets)
    try:
        history = histories.of(
            credential, ref, context["stats"].id, request.args["history"], request.args.get("ref")
        )
    except (NotFound, PermissionDenied) as e:
        return _problem(e)
    return render_template("history.html", **context, history=history)


def commands_for(
    ref: ProjectRef, credential: Credential | None, project_id: int, project_path: str, data_url: str
) -> CommandsFor:
    """`use(path, rev, is_dir=, object_path=)` → the commands for a repository path at a rev; the remote
    comes from `.dvc/config` at that rev, as the datasets page read it (cached per user, project and rev)."""
    svc = services()
    repo_url = f"{svc.settings.gitlab_url.rstrip('/')}/{project_path}.git"

    def remote_at(rev: str) -> Remote | None:  # what the datasets page read at that rev (cached)
        return svc.datasets.at_ref(credential, ref, rev).remote_detail

    def use(path: str, rev: str | None, *, is_dir: bool, object_path: str | None = None) -> Commands:
        rev = rev or svc.datasets.at_ref(credential, ref, None).ref  # the default branch (cached)
        object_url = f"{data_url}/{quote(object_path)}" if object_path else None
        return commands(
            repo_url=repo_url, path=path, rev=rev, remote=remote_at(rev), object_url=object_url, is_dir=is_dir
        )

    return use


def file_commands(
    ref: ProjectRef, credential: Credential | None, stats: ProjectStats, data_url: str, object_path: str
) -> Commands | None:
    """The commands for a file page `<object>?name=<relpath>&dataset=<manifest>&ref=<ref>`: its path in
    the repository is the dataset's name (+ relpath in a directory); None when the query names no dataset
    at that ref (a raw object: its page has its own download line)."""
    manifest, relpath = request.args.get("dataset"), request.args.get("name", "").strip("/")
    if not manifest and not relpath:
        return None
    try:
        page = services().datasets.at_ref(credential, ref, request.args.get("ref"))
    except (NotFound, PermissionDenied):
        return None
    own = manifest or object_path  # a file of a directory dataset, or a file dataset's own object
    dataset = next((d for d in page.datasets if d.object_path == own), None)
    if dataset is None:
        return None
    path = f"{dataset.name}/{relpath}" if dataset.is_dir and relpath else dataset.name
    use = commands_for(ref, credential, stats.id, stats.path, data_url)
    return use(path, page.ref, is_dir=False, object_path=object_path)
