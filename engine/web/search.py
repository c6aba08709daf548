"""SEARCH: find temporary cards (Status, card number, holder) or holders, and a holder's page.

Results come in keyset pages (the number or holder a page follows), so a page among a million
cards costs the same as the first. Every field is read as typed and refused with a message next
to it when it cannot be searched; nothing here changes anything. Operators, admins and auditors
read these pages; the card page (and its start buttons) is where work on a card begins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, abort, render_template, request

from engine.db import read_only
from engine.web.auth import role_required
from engine.web.context import services
from tasks.cards import CARD_NUMBER, MAX_NUMBER_LENGTH, CardState
from tasks.holders import HOLDER_KEY, find_holders, holder_cards, name_key
from tasks.object_search import COUNT_CAP, MAX_HOLDERS, CardQuery, number_letters, search_cards
from tasks.search_terms import TermError, read_number_prefix
from tasks.store import Holder

bp = Blueprint("search", __name__)

readers = role_required("operator", "admin", "auditor")
PAGE_SIZE = 50
MAX_TYPED = 200
OBJECTS = (("card", "Temporary card"), ("holder", "Holder"))
STATUSES = tuple((state.value, state.value.capitalize()) for state in CardState)


@dataclass
class SearchForm:
    """The SEARCH fields as typed, and what is wrong with each (field -> message)."""

    object: str = "card"
    status: str = ""
    number: str = ""
    holder: str = ""
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, args) -> SearchForm:
        """The fields in the query arguments; an unknown object type or status is a problem."""
        form = cls(object=args.get("object", "card"), status=args.get("status", ""),
                   number=args.get("number", "").strip()[:MAX_NUMBER_LENGTH + 10],
                   holder=args.get("holder", "").strip()[:MAX_TYPED + 1])
        if form.object not in dict(OBJECTS):
            form.problems["object"] = "Choose Temporary card or Holder."
            form.object = "card"
        if form.status and form.status not in dict(STATUSES):
            form.problems["status"] = "Choose a status from the list."
        if len(form.holder) > MAX_TYPED:
            form.problems["holder"] = f"Holder: enter at most {MAX_TYPED} characters."
        return form

    def links(self) -> dict[str, str]:
        """The search as query arguments of a page link."""
        return {name: value for name, value in (("object", self.object), ("status", self.status),
                                                ("number", self.number), ("holder", self.holder)) if value}


def _cursor(value: str) -> str | None:
    """A card number page cursor, or None when it is not one (a changed link: first page)."""
    return value if len(value) <= MAX_NUMBER_LENGTH and CARD_NUMBER.fullmatch(value) else None


def _card_query(session, form: SearchForm) -> CardQuery | None:
    """The card query of the form, or None when a field is wrong (recorded on the form)."""
    prefix = ""
    try:
        typed = read_number_prefix(form.number, "Card number")
        letters = number_letters(session) if typed is not None and typed.letters is None else ()
        if len(letters) > 1:
            raise TermError(f"Card number: card numbers here start with different letters ({letters[0]}-, "
                            f"{letters[1]}-, ...); type them too, such as {letters[0]}-{typed.digits}.")
        if typed is not None:
            prefix = typed.written(letters, "Card number")
    except TermError as error:
        form.problems["number"] = str(error)
    holder_ids = None
    if form.holder and "holder" not in form.problems:
        matches = find_holders(session, form.holder, limit=MAX_HOLDERS + 1)
        if len(matches) > MAX_HOLDERS:
            form.problems["holder"] = (f"More than {MAX_HOLDERS} holders match \u201c{form.holder}\u201d; "
                                       "type more of the name, or the holder's identifier.")
        holder_ids = tuple(match.id for match in matches)
    if form.problems:
        return None
    return CardQuery(form.status or None, prefix, holder_ids)


@bp.route("/search")
@readers
def index():
    """The SEARCH page: the fields, then a page of cards or holders when a search was asked for."""
    form = SearchForm.read(request.args)
    searched = "object" in request.args
    cards = holders = None
    next_after = None
    with read_only(services().sessions) as session:
        if searched and form.object == "card":
            query = _card_query(session, form)
            if query is not None:
                cards = search_cards(session, query, after=_cursor(request.args.get("after", "")),
                                     before=_cursor(request.args.get("before", "")), per_page=PAGE_SIZE)
        elif searched and not form.problems:
            after = _holder_cursor(session, request.args.get("after", ""))
            found = find_holders(session, form.holder, after=after, limit=PAGE_SIZE + 1)
            holders = found[:PAGE_SIZE]
            next_after = holders[-1].id if len(found) > PAGE_SIZE else None
    summary = [(message, name) for name, message in form.problems.items()]
    page = render_template("search.html", form=form, summary=summary, objects=OBJECTS, statuses=STATUSES,
                           cards=cards, holders=holders, next_after=next_after, cap=COUNT_CAP,
                           links=form.links(), paged="after" in request.args or "before" in request.args)
    return page, 400 if form.problems else 200


def _holder_cursor(session, value: str) -> tuple[str, int] | None:
    """The keyset position after holder ``value`` (an id), or None for the first page."""
    if not HOLDER_KEY.fullmatch(value):
        return None
    holder = session.get(Holder, int(value))
    return (name_key(holder.name), holder.id) if holder else None


@bp.route("/holders/<int:holder_id>")
@readers
def holder(holder_id: int):
    """A holder: who they are, and every card they hold or held, newest first."""
    with read_only(services().sessions) as session:
        found = session.get(Holder, holder_id)
        if found is None:
            abort(404, "There is no such holder; search for the holder again.")
        cards = holder_cards(session, holder_id)
    return render_template("holder.html", holder=found, cards=cards)

