"""An object's page for browsers (the URL people paste in chat): what the file is, its preview (a table,
an image, rendered Markdown, JSON or text, from app.previews) and a download that saves it under its
name. `?name=` is a dataset file's name in the repository (its object is a content address without one);
`?dataset=` and `?ref=` say where the page was opened from."""

from __future__ import annotations

from urllib.parse import quote

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.errors import ObjectNotFound
from app.model.projects import ProjectRef
from app.model.sizes import human_size
from app.previews.choose import preview
from app.validation import text_problem
from app.web import dataset_views
from app.web.context import services
from app.web.page_parts import crumbs, data_url, visitor_credential
from app.web.sessions import current_session, message

NAME_CHARS = 1024  # a repository path is rarely longer; a longer ?name= is refused


def object_page(ref: ProjectRef, path: str) -> ResponseReturnValue:
    """The object's details, preview and download. A folder's URL without its slash goes to the folder's
    page; a visitor who may not read the project gets the error page, which offers sign-in."""
    svc, credential = services(), visitor_credential()
    stats = svc.registry.stats(credential, ref)
    base = request.script_root + f"/{quote(stats.path)}/-/data/"
    asked = request.args.get("name", "").strip("/")
    problem = text_problem(asked) or ("longer than 1024 characters" if len(asked) > NAME_CHARS else None)
    if problem:
        return message("Invalid name", f"The name in ?name= is {problem}.", 400)
    try:
        info, read = svc.registry.open(credential, ref, path)
    except ObjectNotFound:
        if next(svc.registry.browse(credential, ref, path).children, None) is None:
            raise
        return redirect(base + quote(path) + "/")
    shown_as = asked or info.path  # what the file is called: its name in the dataset, else its path
    folder = info.path.rpartition("/")[0]
    name = shown_as.rpartition("/")[2]
    return render_template(
        "object.html",
        stats=stats,
        info=info,
        name=name,
        dataset_name=asked,
        base=base,
        crumbs=crumbs(folder),
        human_size=human_size,
        preview=preview(name, info.size, read),
        download_url=url_for(
            "project_pages.download", project_id=stats.id, path=info.path, name=name if asked else None
        ),
        object_url=data_url(stats.path) + "/" + quote(info.path),
        use=dataset_views.file_commands(ref, credential, stats, data_url(stats.path), info.path),
        query_dataset=request.args.get("dataset", "")[:NAME_CHARS],
        query_ref=request.args.get("ref", "")[:NAME_CHARS],
        session=current_session(),
        sign_in_enabled=svc.signin is not None,
    )
