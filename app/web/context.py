"""Where views find the services of the app serving the request, and the URL converter of object paths."""

from __future__ import annotations

from flask import current_app
from werkzeug.routing import PathConverter

from app.components import Components

EXTENSION = "data_registry"


def services() -> Components:
    """The services of the current app."""
    found: Components = current_app.extensions[EXTENSION]
    return found


class AnyPathConverter(PathConverter):
    """Like `path`, but matches any character (newlines, a leading '/'), so the view can answer 400
    with the path rule that was broken instead of a bare 404."""

    regex = r"[\s\S]+?"
    part_isolating = False
