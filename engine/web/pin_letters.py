"""The PIN letter of a card just assigned: a PDF built in memory, given out once.

Only the operator running the process that assigned the card, while that process still holds the
card and its assignment is open, may print it. Custody marks the PIN and PUK released and erases
them in the transaction that records the release (audited, never with the values), so a second
request, a reload or a race gets a clear refusal. The response is never cached.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template
from flask_login import current_user
from sqlalchemy import select

from engine.db import read_only
from engine.store import Instance
from engine.web.auth import require_order_access, role_required
from engine.web.context import services
from tasks.assign_options import assign_options
from tasks.card_assignment import open_assignment
from tasks.card_holds import held_card
from tasks.cardsdk.custody import Custody, key_from_config, load_or_create_key
from tasks.cardsdk.piv.errors import CustodyError
from tasks.cardsdk.records import CustodyRelease
from tasks.errors import CardflowError
from tasks.pin_letter import LetterFacts, pin_letter_pdf
from tasks.store import Holder

bp = Blueprint("pin_letters", __name__)

operator_only = role_required("operator")
INSTANCE_ID_LENGTH = 36


def _refused(message: str, status: int = 409):
    """A plain page saying why no letter was printed."""
    page = render_template("error.html", title="No PIN letter", message=f"{message} Nothing was printed.")
    return page, status


def _custody() -> Custody:
    """Custody with the installation's key (the one the stations seal secrets with)."""
    settings = services().settings
    key = key_from_config(settings.custody_key) if settings.custody_key else load_or_create_key(
        settings.instance_path)
    return Custody(services().sessions, key)


def _not_kept(card) -> str:
    """Why custody gave nothing: the letter was printed already (when, by whom), or no PIN."""
    with read_only(services().sessions) as session:
        release = session.scalar(select(CustodyRelease).where(CustodyRelease.card_id == card.id)
                                 .order_by(CustodyRelease.id.desc()).limit(1))
    if release is None:
        return f"Custody holds no PIN of card {card.number}."
    return (f"The PIN letter of card {card.number} was already printed on "
            f"{release.released_at:%Y-%m-%d %H:%M} UTC by {release.released_by}; its PIN is not kept and "
            "cannot be shown again. If the letter is lost, withdraw the card (it gets fresh keys and PIN) "
            "and assign it again.")


@bp.route("/orders/<instance_id>/pin-letter", methods=("POST",))
@operator_only
def print_letter(instance_id: str):
    """The PIN letter as a PDF, once; a refusal page (409) for any later or unfounded request."""
    if len(instance_id) > INSTANCE_ID_LENGTH:
        return _refused("There is no such process.", 404)
    with read_only(services().sessions) as session:
        row = session.execute(select(Instance.started_by, Instance.status, Instance.options)
                              .where(Instance.id == instance_id)).first()
        if row is None:
            return _refused("There is no such process.", 404)
        require_order_access(row.started_by)
        try:
            card = held_card(session, instance_id, lock=False)
        except CardflowError:
            return _refused("This process holds no card (it has ended, or was not started on a card).")
        assignment = open_assignment(session, card.id)
        if row.status != "running" or assignment is None or assignment.instance_id != instance_id:
            return _refused(f"Card {card.number} was not assigned by this process; only the process that "
                            "assigns a card prints its PIN letter.")
        holder = session.get(Holder, assignment.holder_id)
        facts = dict(organisation=services().settings.organisation, card_number=card.number,
                     holder_name=holder.name, holder_unit=holder.unit,
                     valid_until=f"{card.valid_until:%Y-%m-%d}" if card.valid_until else "not set")
        with_puk = bool(assign_options(row.options or {})["pin_letter_shows_puk"])
    try:
        secrets = _custody().release_once(card.id, current_user.name)
    except CustodyError:
        return _refused(_not_kept(card))
    pdf = pin_letter_pdf(LetterFacts(**facts, pin=secrets["pin"], puk=secrets["puk"] if with_puk else None))
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="pin-letter-{card.number}.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response
