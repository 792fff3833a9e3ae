"""A directory of static files (a browser application) served by the edge under one path.

    EDGE_SITE_DIR=web/shop EDGE_SITE_PATH=/shop   ->   /shop/ (index.html), /shop/app.js, ...

Only the directory's own regular files are served (no subdirectories, no dotfiles), with a
policy that lets the page load its own scripts and styles and call this origin, nothing else.
"""

from __future__ import annotations

import pathlib
import re

from flask import Blueprint, abort, redirect, send_from_directory

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)+$")
SITE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def site_blueprint(directory: pathlib.Path, path: str) -> Blueprint:
    bp = Blueprint("site", __name__)
    root = directory.resolve()

    def send(name: str):
        if not _NAME.match(name) or not (root / name).is_file():
            abort(404)
        # Revalidated on every load, so a new deployment is seen at once.
        response = send_from_directory(root, name, max_age=0)
        response.headers["Content-Security-Policy"] = SITE_POLICY
        response.headers["Cache-Control"] = "no-cache"
        return response

    @bp.get(path)
    def to_index():
        return redirect(f"{path}/", code=308)

    @bp.get(f"{path}/")
    def index():
        return send("index.html")

    @bp.get(f"{path}/<name>")
    def asset(name: str):
        return send(name)

    return bp
