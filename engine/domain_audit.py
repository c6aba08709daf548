"""What the card domain writes, as audit entries: part of the composition root (it knows both the
engine's trail and ``tasks``' tables, which never know each other).

Each card state change, production attempt and its outcome, issued or revoked certificate,
release of PIN/PUK custody and order end becomes an entry of the same transaction, so the trail
can never miss or invent one. Entries hold numbers and reasons, never a secret.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from engine.audit_chain import Entry, append_entries, register_deriver
from engine.store import AuditEvent
from tasks.cardsdk.records import CertificateIssued, CustodyRelease, IssuedCertificate
from tasks.recording import AttemptRecorded, CardMoved
from tasks.store import Card, CardEvent, Order, ProductionAttempt
from tasks.trail import TRAIL


def _changed(obj: object, attribute: str) -> bool:
    """True when ``attribute`` of a loaded row was given a new value in this flush."""
    return inspect(obj).attrs[attribute].history.has_changes()


def _card_number(session: Session, card_id: int | None) -> str | None:
    """The number of card ``card_id`` (the trail names cards by number)."""
    if card_id is None:
        return None
    with session.no_autoflush:
        card = session.get(Card, card_id)
    return card.number if card else None


def _order(session: Session, order_id: int | None) -> Order | None:
    """Order ``order_id`` (for its instance and its operator), or None."""
    if order_id is None:
        return None
    with session.no_autoflush:
        return session.get(Order, order_id)


def _instance_of(session: Session, order_id: int | None) -> str | None:
    """The process instance of order ``order_id``."""
    order = _order(session, order_id)
    return order.instance_id if order else None


def card_moved_entry(moved: CardMoved) -> Entry:
    """The entry for a card's state change."""
    return Entry(actor=moved.actor, action="card state changed", order_id=moved.order_id,
                 instance_id=moved.instance_id, card=moved.card_number,
                 detail={"from": moved.from_state, "to": moved.to_state, "reason": moved.reason,
                         "process_id": moved.process_id, "process_version": moved.process_version})


def attempt_entry(attempt: AttemptRecorded) -> Entry:
    """The entry for a production attempt that started or ended."""
    detail: dict = {"attempt": attempt.attempt}
    if attempt.outcome != "started":
        detail["outcome"] = attempt.outcome
        detail.update({key: value for key, value in (("error", attempt.error), ("serial", attempt.serial))
                       if value})
    return Entry(actor="station", action=f"attempt {attempt.outcome}", order_id=attempt.order_id,
                 instance_id=attempt.instance_id, card=attempt.card_number, detail=detail)


def certificate_issued_entry(issued: CertificateIssued) -> Entry:
    """The entry for a certificate the CA issued and recorded."""
    return Entry(actor="ca", action="certificate issued", card=issued.card_number,
                 detail={"serial": issued.serial, "type": issued.certificate_type, "slot": issued.slot,
                         "attempt": issued.attempt_ref, "subject": issued.subject,
                         "not_after": issued.not_after.isoformat()})


_FACT_ENTRIES = {CardMoved: card_moved_entry, AttemptRecorded: attempt_entry,
                 CertificateIssued: certificate_issued_entry}


def record_trail(session: Session, facts: Sequence[CardMoved | AttemptRecorded | CertificateIssued]) -> None:
    """The entries for what a hot path wrote without ORM objects, in the same transaction."""
    append_entries(session, [_FACT_ENTRIES[type(fact)](fact) for fact in facts])


def _from_new(session: Session, obj: object) -> AuditEvent | None:
    """The entry for a row being inserted, or None when it is nothing to audit."""
    if isinstance(obj, CardEvent):
        return card_moved_entry(CardMoved(
            _card_number(session, obj.card_id), obj.actor, obj.order_id,
            obj.instance_id or _instance_of(session, obj.order_id),
            obj.process_id, obj.process_version, obj.from_state, obj.to_state, obj.reason)).as_event()
    if isinstance(obj, ProductionAttempt):
        return attempt_entry(AttemptRecorded(_card_number(session, obj.card_id), obj.order_id,
                                             _instance_of(session, obj.order_id), obj.attempt,
                                             "started")).as_event()
    if isinstance(obj, CustodyRelease):
        return AuditEvent(actor=obj.released_by, action="custody released",
                          card=_card_number(session, obj.card_id),
                          detail={"attempt": obj.attempt_ref, "released": obj.kinds})
    return None


def _from_change(session: Session, obj: object) -> AuditEvent | None:
    """The entry for a row being updated, or None when the change is nothing to audit."""
    if isinstance(obj, Order) and _changed(obj, "status") and obj.status != "open":
        return AuditEvent(actor=obj.created_by, action=f"order {obj.status}", order_id=obj.id,
                          instance_id=obj.instance_id,
                          detail={"process_id": obj.process_id, "process_version": obj.process_version,
                                  "options": obj.options_name, "options_version": obj.options_version})
    if isinstance(obj, ProductionAttempt) and _changed(obj, "outcome") and obj.outcome != "started":
        return attempt_entry(AttemptRecorded(_card_number(session, obj.card_id), obj.order_id,
                                             _instance_of(session, obj.order_id), obj.attempt, obj.outcome,
                                             obj.error, obj.physical_serial)).as_event()
    if isinstance(obj, ProductionAttempt) and _changed(obj, "spoiled_reason") and obj.spoiled_reason:
        order = _order(session, obj.order_id)
        return AuditEvent(actor=order.created_by if order else "operator", action="card spoiled",
                          order_id=obj.order_id, instance_id=order.instance_id if order else None,
                          card=_card_number(session, obj.card_id),
                          detail={"attempt": obj.attempt, "reason": obj.spoiled_reason})
    if isinstance(obj, IssuedCertificate) and _changed(obj, "revoked_at") and obj.revoked_at is not None:
        return AuditEvent(actor="ca", action="certificate revoked", card=obj.card_number,
                          detail={"serial": obj.serial, "type": obj.certificate_type,
                                  "reason": obj.revocation_reason})
    return None


def _name_orders(session: Session) -> None:
    """Give the engine's entries about an order's instance (a step completed, an error) the order's
    number, so filtering the trail by order finds the order's steps too."""
    orders: dict[str, int | None] = {}
    for entry in [obj for obj in session.new if isinstance(obj, AuditEvent)]:
        if entry.instance_id and entry.order_id is None:
            if entry.instance_id not in orders:
                with session.no_autoflush:
                    orders[entry.instance_id] = session.scalar(
                        select(Order.id).where(Order.instance_id == entry.instance_id))
            entry.order_id = orders[entry.instance_id]


def derive_domain_entries(session: Session) -> Iterator[AuditEvent]:
    """The entries for everything of the card domain this session is about to write."""
    _name_orders(session)
    for obj in list(session.new):
        entry = _from_new(session, obj)
        if entry is not None:
            yield entry
    for obj in list(session.dirty):
        entry = _from_change(session, obj)
        if entry is not None:
            yield entry


def _derive(session: Session) -> list[AuditEvent]:
    return list(derive_domain_entries(session))


def wire_domain_audit(sessions: sessionmaker[Session]) -> None:
    """Have the sessions of ``sessions`` turn the card domain's writes into audit entries: the
    rows they flush, and the facts the hot paths record without ORM objects."""
    register_deriver(sessions, _derive)
    sessions.configure(info={**(sessions.kw.get("info") or {}), TRAIL: record_trail})
