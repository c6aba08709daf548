"""Card lookup, card history pages, and the card previews the printer spooled.

A card's history is everything recorded about it: every state change (who, when, from, to, why,
which order, process and option version), every production attempt with its physical card, its
misprint and its error, the certificates issued and revoked, and custody releases (never a secret).
Operators, admins and auditors may read it; nobody can change it here. An order's previews and
PDFs follow the order's own rule (``auth.may_see_order``). An operator also finds there the
processes that can start on the card in its state (the deployed definitions' card menu), and
which open process holds the card.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, request, send_from_directory, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from engine.db import read_only
from engine.runtime import RuntimeFailure
from engine.start_menus import StartEntry, card_entries, start_entry
from engine.store import Definition
from engine.web.auth import order_url, require_order_access, role_required
from engine.web.context import services
from tasks.card_holds import hold_card, hold_of
from tasks.card_search import number_letters
from tasks.cards import CARD_NUMBER
from tasks.errors import CardflowError, NotFoundError
from tasks.queries import card_history, cards_by_prefix, count_by_prefix
from tasks.search_terms import NumberPrefix, TermError
from tasks.store import Card, Order

bp = Blueprint("cards", __name__)

readers = role_required("operator", "admin", "auditor")
operator_only = role_required("operator")
MAX_NUMBER_LENGTH = 40
PREVIEW_MAX_AGE = 31_536_000  # a year, in seconds
PAGE_SIZE = 50
COUNT_CAP = 1000
# The start of a card number as typed (tasks.cards.CARD_NUMBER, any case): letters, then
# optionally a dash and digits ("tc0001" is read as TC-0001). Digits alone cannot be one range.
TYPED_PREFIX = re.compile(r"([A-Z]{1,8})(-?)([0-9]{0,12})")
DIGITS_ONLY = re.compile(r"[0-9]{1,12}")
# How long a start waits for the engine to reach the process's first step before showing it.
SETTLE_SECONDS = 1.5
# The printer spools each order's files in a folder of its own (tasks.production: order-<id>).
SPOOL_ORDER = re.compile(r"order-([1-9][0-9]{0,17})")


class NumberPrefixError(ValueError):
    """What was typed cannot start a card number; the message says what to type."""


def read_prefix(typed: str) -> str:
    """The card number prefix in ``typed``, as numbers are written (capitals, with the dash)."""
    text = typed.strip().upper()
    if len(text) > MAX_NUMBER_LENGTH:
        raise NumberPrefixError(f"A card number has at most {MAX_NUMBER_LENGTH} characters.")
    if text.isascii() and DIGITS_ONLY.fullmatch(text):
        # Digits alone get the letters every card number here starts with, as the card picker does.
        with read_only(services().sessions) as session:
            letters = number_letters(session, requested_only=False)
        try:
            return NumberPrefix(None, text).written(letters, "Card number", "cards")
        except TermError as error:
            raise NumberPrefixError(str(error)) from None
    match = TYPED_PREFIX.fullmatch(text) if text.isascii() else None
    if match is None:
        raise NumberPrefixError("Type a card number or its start: 1 to 8 letters, a dash and up to 12 "
                                "digits, such as TC-000123 or tc-00012.")
    letters, dash, digits = match.groups()
    return f"{letters}-{digits}" if dash or digits else letters


@bp.route("/cards")
@readers
def lookup():
    """Find cards by number, in any case, or by the start of it: an exact number goes straight to
    its history; otherwise a page of the matching cards, by number."""
    typed = request.args.get("number", "")
    if not typed.strip():
        return render_template("cards_lookup.html", number="", error=None, matches=None)
    try:
        prefix = read_prefix(typed)
    except NumberPrefixError as error:
        return render_template("cards_lookup.html", number=typed[:MAX_NUMBER_LENGTH], error=str(error),
                               matches=None), 400
    after = request.args.get("after", "")
    after = after if len(after) <= MAX_NUMBER_LENGTH and CARD_NUMBER.fullmatch(after) else None
    with read_only(services().sessions) as session:
        matches = cards_by_prefix(session, prefix, after, PAGE_SIZE + 1)
        if after is None and matches and matches[0].number == prefix:
            return redirect(url_for("cards.history", number=prefix))
        total = count_by_prefix(session, prefix, COUNT_CAP)
    next_after = matches[PAGE_SIZE - 1].number if len(matches) > PAGE_SIZE else None
    return render_template("cards_lookup.html", number=prefix, error=None, matches=matches[:PAGE_SIZE],
                           total=total, cap=COUNT_CAP, after=after, next_after=next_after)


@bp.route("/cards/<number>")
@readers
def history(number: str):
    """Everything recorded about the card, oldest first, each order linked for whoever may see it."""
    if number != number.upper() and CARD_NUMBER.fullmatch(number.upper()):
        return redirect(url_for("cards.history", number=number.upper()))
    with read_only(services().sessions) as session:
        try:
            record = card_history(session, number)
        except NotFoundError as error:
            abort(404, str(error))
        process_names = dict(session.execute(select(Definition.process_id, Definition.name)).all())
        hold = hold_of(session, record.card.id)
        entries = card_entries(session, record.card.state) if current_user.role == "operator" else []
    links = {order.id: order_url(order.id, order.instance_id, order.created_by)
             for order in record.orders.values()}
    return render_template("card_history.html", record=record, card=record.card, process_names=process_names,
                           order_links=links, hold=hold, entries=entries)


@bp.route("/cards/<number>/start/<process_id>", methods=("POST",))
@operator_only
def start_process(number: str, process_id: str):
    """Start a process of the card menu on this card, if its state allows and no other open process
    holds it, and go to the process's first step; otherwise back to the card, told why."""
    if len(number) > MAX_NUMBER_LENGTH or not CARD_NUMBER.fullmatch(number):
        abort(404, "There is no such card.")
    with read_only(services().sessions) as session:
        card = session.scalar(select(Card).where(Card.number == number))
        entry = start_entry(session, "card", process_id) if len(process_id) <= 200 else None
    if card is None:
        abort(404, f"There is no card {number}.")
    if entry is None:
        abort(404, "No such process can be started on a card; it may have been removed from the card menu.")
    try:
        instance_id = services().runtime.start(
            entry.process_id, current_user.name, {"card": {"card_id": card.id, "number": card.number}},
            claim=lambda session, instance_id: _claim(session, card.id, entry, instance_id))
    except (CardflowError, RuntimeFailure) as error:
        flash(f"{error} Nothing was started.", "error")
        return redirect(url_for("cards.history", number=number), code=303)
    services().runner.wait(instance_id, timeout=SETTLE_SECONDS)
    return redirect(url_for("batch_orders.order", instance_id=instance_id), code=303)


def _claim(session, card_id: int, entry: StartEntry, instance_id: str) -> None:
    """In the starting transaction: the card (locked) must still be in a state the process starts
    from, and free; then the new instance holds it."""
    card = session.scalar(select(Card).where(Card.id == card_id).with_for_update())
    if card.state not in entry.card_states:
        states = " or ".join(entry.card_states)
        raise CardflowError(f"Card {card.number} is {card.state}; \u201c{entry.label}\u201d starts on a card "
                            f"that is {states}.")
    hold_card(session, card, instance_id, entry.process_id, entry.label, current_user.name)


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


def _spooled_order_owner(name: str) -> str:
    """Who started the order whose spool folder ``name`` is in; 404 when it is in no order's."""
    match = SPOOL_ORDER.fullmatch(name.split("/", 1)[0])
    with read_only(services().sessions) as session:
        owner = session.scalar(select(Order.created_by).where(Order.id == int(match[1]))) if match else None
    if owner is None:
        abort(404, "There is no such card preview.")
    return owner


@bp.route("/spool/<path:name>")
@login_required
def spool_file(name: str):
    """A file the printer spooled (card preview images, PDFs); confined to the spool folder, and
    only for whoever may see its order."""
    folder = services().settings.spool_path
    if not name.lower().endswith((".png", ".pdf")):
        abort(404, "Only card previews are served here.")
    require_order_access(_spooled_order_owner(name))
    if not _plain_file_inside(folder, name):
        abort(404, "There is no such card preview.")
    # Each attempt spools new files (card-<id>-attempt-<n>): a name never changes content, so the
    # browser keeps it; private, since only those who may see the order may fetch it.
    response = send_from_directory(folder, name, max_age=PREVIEW_MAX_AGE)
    response.cache_control.public = False
    response.cache_control.private = True
    response.cache_control.immutable = True
    return response
