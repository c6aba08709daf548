"""Card history pages and the card previews the printer spooled.

Every recorded state change of a card, with who, when, which order and process version, from,
to and why. Operators, admins and auditors may read it; nobody can change it here.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, redirect, render_template, request, send_from_directory, url_for
from flask_login import login_required
from sqlalchemy import select

from engine.db import read_only
from engine.store import Definition
from engine.web.auth import role_required
from engine.web.context import services
from tasks.errors import NotFoundError
from tasks.queries import card_history

bp = Blueprint("cards", __name__)

readers = role_required("operator", "admin", "auditor")
MAX_NUMBER_LENGTH = 40


@bp.route("/cards")
@readers
def lookup():
    """A box to look a card up by its number."""
    number = request.args.get("number", "").strip()
    if number:
        if len(number) > MAX_NUMBER_LENGTH:
            return render_template("cards_lookup.html", number=number[:MAX_NUMBER_LENGTH],
                                   error=f"A card number has at most {MAX_NUMBER_LENGTH} characters."), 400
        return redirect(url_for("cards.history", number=number))
    return render_template("cards_lookup.html", number="", error=None)


@bp.route("/cards/<number>")
@readers
def history(number: str):
    """The card's recorded state changes, oldest first."""
    with read_only(services().sessions) as session:
        try:
            card, events = card_history(session, number)
        except NotFoundError as error:
            abort(404, str(error))
        process_names = dict(session.execute(select(Definition.process_id, Definition.name)).all())
    return render_template("card_history.html", card=card, events=events, process_names=process_names)


def _plain_file_inside(folder: Path, name: str) -> bool:
    """Whether ``name`` is a regular file inside ``folder`` that is no symbolic link and reached
    through none (send_from_directory alone follows links out of the folder)."""
    parts = name.split("/")
    if any(part in ("", ".", "..") or "\\" in part for part in parts):
        return False
    path = folder
    for part in parts:
        path = path / part
        if path.is_symlink():
            return False
    return path.resolve().is_relative_to(folder.resolve()) and path.is_file()


@bp.route("/spool/<path:name>")
@login_required
def spool_file(name: str):
    """A file the printer spooled (card preview images, PDFs); confined to the spool folder."""
    folder = services().settings.spool_path
    if not name.lower().endswith((".png", ".pdf")):
        abort(404, "Only card previews are served here.")
    if not _plain_file_inside(folder, name):
        abort(404, "There is no such card preview.")
    return send_from_directory(folder, name, max_age=0)
