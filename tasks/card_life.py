"""The temporary card's own life outside batch orders: requesting cards, locking a card, expiry.

Each state change is a CardEvent naming the process, its version and its instance (the audit
trail gets its entry from the same row, in the same transaction). A card process finds its card
through its hold (``tasks.card_holds``), never through a value a form could carry.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tasks.card_holds import held_card
from tasks.cards import CardState, check_card_number, check_transition
from tasks.cardsdk.records import IssuedCertificate
from tasks.errors import CardflowError
from tasks.options import OptionField
from tasks.production import ProductionContext, drain_revocations
from tasks.recording import Actor, move_card
from tasks.store import Assignment, Card, CardEvent, RevocationRequest, utcnow

REQUEST_OPTIONS = "TempCardsProcRequest"
REQUEST_LIMITS = range(1, 100)  # what an administrator may set as the most cards of one request
MAX_REASON = 200
# The states a card leaves for "expired" when its validity ends (the card rules allow no other).
EXPIRING = (CardState.UNASSIGNED, CardState.ASSIGNED)
EXPIRY_ACTOR = "expiry"


class ProcessContext(Protocol):
    """What a card process's handler knows of its instance (the engine's ServiceContext)."""

    instance_id: str
    process_id: str
    process_version: int
    user: str
    options: dict


def move_in_process(session: Session, card: Card, target: str, context: ProcessContext, reason: str) -> None:
    """Change ``card`` to ``target`` if the card rules allow it, recorded with the process, its
    version and its instance (the card's history and, through its row, the audit trail)."""
    check_transition(card.number, card.state, target)
    session.add(CardEvent(card_id=card.id, actor=context.user, process_id=context.process_id,
                          process_version=context.process_version, instance_id=context.instance_id,
                          from_state=card.state, to_state=target, reason=reason))
    card.state = target
    card.updated_at = utcnow()


# -- Request temporary cards --------------------------------------------------------------------

REQUEST_OPTION_FIELDS = (
    OptionField("max_amount", "Maximum amount", "integer", "The most cards one request may ask for.",
                minimum=REQUEST_LIMITS.start, maximum=REQUEST_LIMITS.stop - 1),
)


def validate_request_options(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Every problem of a TempCardsProcRequest option set, as (option name, reason) pairs."""
    problems = [(name, "unknown option; known options: max_amount")
                for name in values if name != "max_amount"]
    limit = values.get("max_amount")
    if "max_amount" not in values:
        problems.append(("max_amount", "missing; every option must be set"))
    elif not isinstance(limit, int) or isinstance(limit, bool) or limit not in REQUEST_LIMITS:
        problems.append(("max_amount", f"must be a whole number from {REQUEST_LIMITS.start} to "
                                       f"{REQUEST_LIMITS.stop - 1}, not {limit!r}"))
    return problems


def request_limit(options: dict) -> int:
    """The most cards one request may ask for, from the instance's option snapshot."""
    snapshot = options.get(REQUEST_OPTIONS)
    if snapshot is None:
        raise CardflowError(f"Option script {REQUEST_OPTIONS} is not deployed; run 'cardflow deploy'.")
    return snapshot["values"]["max_amount"]


def request_problem(amount: object, limit: int) -> str | None:
    """Why ``amount`` cannot be requested, said for the operator, or None."""
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= limit:
        return f"Amount: request 1 to {limit} cards at a time, not {amount!r}. Nothing was requested."
    return None


def request_cards(session: Session, amount: int, organisation: str, context: ProcessContext) -> list[str]:
    """Add ``amount`` requested cards numbered after the existing ones; their numbers."""
    start = (session.scalar(select(func.max(Card.id))) or 0) + 1
    numbers = []
    for card_id in range(start, start + amount):
        number = f"TC-{card_id:06d}"
        check_card_number(number)
        card = Card(id=card_id, number=number, state=CardState.REQUESTED, organisation=organisation)
        session.add(card)
        session.flush()
        session.add(CardEvent(card_id=card_id, actor=context.user, process_id=context.process_id,
                              process_version=context.process_version, instance_id=context.instance_id,
                              from_state=None, to_state=CardState.REQUESTED,
                              reason=f"Requested with {amount} card{'s' if amount != 1 else ''}."))
        numbers.append(number)
    return numbers


def run_request(sessions: sessionmaker[Session], params: dict, context: ProcessContext,
                organisation: str, attempts: int = 5) -> dict:
    """The ``cards_request`` step: {"ok", "numbers"} or {"ok": False, "error"} (nothing written).

    Numbers follow the highest card id; when another request takes the same numbers at the same
    moment, the database refuses ours and it is taken again after theirs.
    """
    problem = request_problem(params.get("amount"), request_limit(context.options))
    if problem:
        return {"ok": False, "error": problem}
    for attempt in range(attempts):
        try:
            with sessions.begin() as session:
                done = session.scalar(select(func.count()).select_from(CardEvent)
                                      .where(CardEvent.instance_id == context.instance_id))
                if done:  # this step ran before a crash: its cards exist, make none twice
                    return {"ok": True, "numbers": _numbers_of(session, context.instance_id)}
                numbers = request_cards(session, params["amount"], organisation, context)
                return {"ok": True, "numbers": numbers}
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _numbers_of(session: Session, instance_id: str) -> list[str]:
    """The numbers of the cards instance ``instance_id`` requested."""
    return list(session.scalars(select(Card.number).join(CardEvent, CardEvent.card_id == Card.id)
                                .where(CardEvent.instance_id == instance_id).order_by(Card.id)))


# -- Lock temporary card --------------------------------------------------------------------------

def revoke_card_certificates(session: Session, card: Card, reason: str) -> int:
    """Queue the revocation of every certificate of ``card`` not revoked yet, in the caller's
    transaction (any host drains the queue; revoking is idempotent). Returns the attempts queued."""
    refs = session.scalars(select(IssuedCertificate.attempt_ref).distinct()
                           .where(IssuedCertificate.card_number == card.number,
                                  IssuedCertificate.revoked_at.is_(None))).all()
    for ref in refs:
        session.add(RevocationRequest(attempt_ref=ref, reason=reason[:200]))
    return len(refs)


def lock_reason(reason: object) -> str:
    """The lock's reason as recorded; CardflowError when it is missing or too long."""
    text = " ".join(reason.split()) if isinstance(reason, str) else ""
    if not text or len(text) > MAX_REASON or not text.isprintable():
        raise CardflowError(f"Give the reason for locking the card in 1 to {MAX_REASON} characters.")
    return text


def lock_card(session: Session, context: ProcessContext, reason: object) -> dict:
    """The ``card_lock`` step: the held card becomes locked, its certificates queued for revocation."""
    text = lock_reason(reason)
    card = held_card(session, context.instance_id)
    move_in_process(session, card, CardState.LOCKED, context, f"Locked: {text}")
    return {"number": card.number, "revocations": revoke_card_certificates(session, card, "card locked")}


# -- Expiry --------------------------------------------------------------------------------------

def expire_cards(sessions: sessionmaker[Session], now: datetime | None = None, limit: int = 500) -> int:
    """Move the cards whose validity ended to ``expired`` (recorded, audited); how many moved.

    Idempotent and safe on every host at once: the rows are locked (PostgreSQL skips those another
    host is expiring; SQLite has one writer), and a card already expired is no longer found.
    """
    now = now or utcnow()
    with sessions.begin() as session:
        cards = session.scalars(select(Card).where(Card.state.in_(EXPIRING), Card.valid_until < now)
                                .order_by(Card.valid_until, Card.id).limit(limit)
                                .with_for_update(skip_locked=True)).all()
        for card in cards:
            reason = f"Validity ended on {card.valid_until:%Y-%m-%d %H:%M} UTC."
            move_card(session, card, CardState.EXPIRED, Actor(EXPIRY_ACTOR), reason)
        # An expired card is out of its holder's hands: the assignment ends (the holder page's list).
        session.execute(update(Assignment).where(Assignment.card_id.in_([card.id for card in cards] or [0]),
                                                 Assignment.ended_at.is_(None))
                        .values(ended_at=now, ended_by=EXPIRY_ACTOR, end_reason="Card expired."))
        return len(cards)


class ExpirySweep:
    """``expire_cards`` at most every ``every`` seconds: what the sweeper of every host runs."""

    def __init__(self, sessions: sessionmaker[Session], every: float = 60.0):
        self.sessions = sessions
        self.every = every
        self._due = 0.0

    def __call__(self) -> int:
        if time.monotonic() < self._due:
            return 0
        self._due = time.monotonic() + self.every
        return expire_cards(self.sessions)


# -- the published handlers ----------------------------------------------------------------------

def build_card_life_handlers(sessions: sessionmaker[Session], production: ProductionContext) -> dict:
    """``cards_request`` (params: amount) and ``card_lock`` (params: reason), bound to a database."""

    def cards_request(params: dict, context: ProcessContext) -> dict:
        return run_request(sessions, params, context, production.organisation)

    def card_lock(params: dict, context: ProcessContext) -> dict:
        with sessions.begin() as session:
            result = lock_card(session, context, params.get("reason"))
        drain_revocations(production)  # at once where this host has the CA; else the next sweep
        return result

    return {"cards_request": cards_request, "card_lock": card_lock}


def instance_card_changes(session: Session, instance_id: str, limit: int = 200) -> list:
    """The state changes process instance ``instance_id`` made (its summary), oldest first."""
    return session.execute(select(Card.number, CardEvent.from_state, CardEvent.to_state, CardEvent.reason,
                                  CardEvent.at)
                           .join(Card, Card.id == CardEvent.card_id)
                           .where(CardEvent.instance_id == instance_id)
                           .order_by(CardEvent.id).limit(limit)).all()
