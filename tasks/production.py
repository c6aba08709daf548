"""Producing an order's cards as external work: one job a card, claimed by a station, fenced.

"Produce cards" and "Repeat production" only dispatch: they mark the batch (``cards_outstanding``)
and queue one job per pending card on the order's station pool; the instance then waits at its
"cards produced" catch event, holding nothing. A station worker claims a card (its fencing token
goes up), records the attempt as started, does the physical work outside any transaction, and
records the outcome only if its token still holds. The outcome that brings the batch to zero
posts the instance's message in the same transaction.

A claim lapses when its worker stops renewing it (killed, paused, cut off). Any host's sweeper
then records the attempt as interrupted, fails the card for Repeat production (never a silent
retry: the printer may have printed it), and queues the revocation of its certificates in the
same transaction. Revocations are drained by every host, so a crash between recording and
revoking leaves nothing valid.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import bindparam, case, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tasks.cards import CardState
from tasks.cardsdk.card_identity import CardIdentityIssuer
from tasks.cardsdk.job import CardJob, CardSdkError
from tasks.cardsdk.station import Station
from tasks.orders import get_open_order
from tasks.queries import progress
from tasks.recording import Actor, AttemptRecorded, CardMoved, move_card, write_move
from tasks.store import (
    Card,
    Order,
    OrderCard,
    ProductionAttempt,
    RevocationRequest,
    StationStatus,
    utcnow,
)
from tasks.trail import record_facts

log = logging.getLogger(__name__)

INTERRUPTED = "Production was interrupted (the system stopped mid-card); check the printer and repeat."
LAPSED = ("Production was interrupted: station {station} stopped answering mid-card; check its "
          "printer and repeat.")
# The message the process's catch event waits for, and the job kind the stations run.
CARDS_PRODUCED = "cards produced"
PRODUCE_CARD = "produce card"
CLAIM_SECONDS = 6.0

Enqueue = Callable[[str, str, dict], None]  # (queue, kind, args)
PostMessage = Callable[[Session, str, str, dict], None]  # (session, instance id, name, payload)
WithdrawMessages = Callable[[Session, str, str], None]  # (session, instance id, name)


class ClaimLost(CardSdkError):
    """This worker's claim on the card lapsed and another host took it over: record nothing."""


class StationPaused(Exception):  # noqa: N818 - a state, not a failure
    """The station is paused by an admin: its jobs wait."""


def pool_queue(pool: str) -> str:
    """The broker queue of a station pool."""
    return f"cardflow.pool.{pool}"


@dataclass
class ProductionContext:
    """What producing needs: the station of this host, where to spool, and the engine's hooks
    (given by the composition root, so this module knows no engine)."""

    sessions: sessionmaker[Session]
    station: Station
    spool_root: Path
    organisation: str
    user: str
    enqueue: Enqueue = field(default=lambda queue, kind, args: None)
    post_message: PostMessage = field(default=lambda session, instance_id, name, payload: None)
    # Withdraws the instance's undelivered messages of a name (a new batch voids an earlier one's).
    withdraw_messages: WithdrawMessages = field(default=lambda session, instance_id, name: None)
    advance: Callable[[str], None] = field(default=lambda instance_id: None)
    worker: str = "local"
    pool: str = "default"
    claim_seconds: float = CLAIM_SECONDS
    # Gives each physical card (attempt) its GUID and FASC-N (codes: CARDFLOW_FASCN_*).
    card_identity: CardIdentityIssuer = field(default_factory=CardIdentityIssuer.from_env)
    keeper: ClaimKeeper = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.keeper = ClaimKeeper(self)


@dataclass(frozen=True)
class Claim:
    """A card this worker holds: the fencing token its writes must still match, and what its
    outcome's records need (read once, when claiming)."""

    order_id: int
    card_id: int
    token: int
    attempt: int
    instance_id: str
    job: CardJob
    card_state: str
    actor: str
    process_id: str
    process_version: int


def attempt_ref(order_id: int, card_id: int, attempt: int) -> str:
    """The tag that custody and CA records carry for one attempt."""
    return f"order-{order_id}/card-{card_id}/attempt-{attempt}"


# -- dispatching (the service tasks) ---------------------------------------------------------

def dispatch_order(ctx: ProductionContext, order_id: int) -> dict[str, int]:
    """Queue one job per pending card of the order; the last outcome sends "cards produced"."""
    with ctx.sessions.begin() as session:
        order = get_open_order(session, order_id)
        pending = _start_batch(session, ctx, order)
    return _send_jobs(ctx, order, pending)


def repeat_order(ctx: ProductionContext, order_id: int) -> dict[str, int]:
    """Spoil the misprinted cards the operator picked (their revocation queued in the same
    transaction), then dispatch the picked cards again, in the same transaction: the batch is
    re-armed together with the cards it counts."""
    with ctx.sessions.begin() as session:
        order = get_open_order(session, order_id)
        picked = session.scalars(select(OrderCard).where(
            OrderCard.order_id == order_id, OrderCard.repeat_requested.is_(True))).all()
        for item in picked:
            latest = _latest_attempt(session, order_id, item.card_id)
            if item.misprint_reason and latest is not None and latest.spoiled_at is None:
                latest.spoiled_reason, latest.spoiled_at = item.misprint_reason, utcnow()
                _queue_revocation(session, attempt_ref(order_id, item.card_id, latest.attempt),
                                  f"misprint: {item.misprint_reason}")
            item.status, item.repeat_requested = "pending", False
        pending = _start_batch(session, ctx, order)
    drain_revocations(ctx)  # before the jobs: a misprint's certificates go before its reprint's come
    return _send_jobs(ctx, order, pending)


def _start_batch(session: Session, ctx: ProductionContext, order: Order) -> list[int]:
    """Arm the order's batch; returns the pending cards to queue.

    The batch counts every card without an outcome: those waiting and those at a station right
    now. A step runs again when its host died after dispatching and before the engine saved the
    step: the cards the first run's stations hold then still come with an outcome each, and the
    batch must wait for them. For the same reason the undelivered "cards produced" of an earlier
    batch or run is withdrawn: only this batch's end may end the instance's wait.
    """
    _close_stray_attempts(session, order, ctx.user)
    # The audit entries written so far take the chain's lock before the order's row is locked:
    # the order in which every card's outcome takes them (never a deadlock with one).
    session.flush()
    # Outcomes count down under this lock: one that has not counted down yet waits for this
    # transaction and finds its card counted; one that has is in the count already.
    session.execute(select(Order.id).where(Order.id == order.id).with_for_update())
    without_outcome = dict(session.execute(
        select(OrderCard.status, func.count()).where(
            OrderCard.order_id == order.id, OrderCard.status.in_(("pending", "claimed")))
        .group_by(OrderCard.status)).all())
    pending = list(session.scalars(select(OrderCard.card_id).where(
        OrderCard.order_id == order.id, OrderCard.status == "pending").order_by(OrderCard.card_id)))
    session.execute(update(Order).where(Order.id == order.id).values(
        cards_outstanding=sum(without_outcome.values()), dispatched_at=utcnow()))
    ctx.withdraw_messages(session, order.instance_id, CARDS_PRODUCED)
    if not without_outcome:  # nothing to produce: the batch is complete at once
        ctx.post_message(session, order.instance_id, CARDS_PRODUCED, progress(session, order.id))
    return pending


def _send_jobs(ctx: ProductionContext, order: Order, pending: list[int]) -> dict[str, int]:
    queue = pool_queue(order.station_pool)
    for card_id in pending:
        ctx.enqueue(queue, PRODUCE_CARD, {"order_id": order.id, "card_id": card_id})
    return {"dispatched": len(pending)}


def _latest_attempt(session: Session, order_id: int, card_id: int) -> ProductionAttempt | None:
    return session.scalar(select(ProductionAttempt).where(
        ProductionAttempt.order_id == order_id, ProductionAttempt.card_id == card_id)
        .order_by(ProductionAttempt.attempt.desc()).limit(1))


def _close_stray_attempts(session: Session, order: Order, user: str) -> None:
    """Attempts left started on a card nobody claims (a crash before claims existed) fail."""
    same_card = ((OrderCard.order_id == ProductionAttempt.order_id)
                 & (OrderCard.card_id == ProductionAttempt.card_id))
    stray = session.scalars(select(ProductionAttempt).join(OrderCard, same_card).where(
        ProductionAttempt.order_id == order.id, ProductionAttempt.outcome == "started",
        OrderCard.status != "claimed")).all()
    for attempt in stray:
        _interrupt(session, order, attempt, INTERRUPTED, user)
        session.get(OrderCard, (order.id, attempt.card_id)).status = "failed"


def _interrupt(session: Session, order: Order, attempt: ProductionAttempt, reason: str, user: str) -> None:
    """Record an attempt as interrupted and spoiled, fail its card, queue its revocation."""
    now = utcnow()
    attempt.outcome, attempt.error, attempt.finished_at = "interrupted", reason, now
    attempt.spoiled_reason, attempt.spoiled_at = "interrupted", now
    card = session.get(Card, attempt.card_id)
    move_card(session, card, CardState.FAILED, Actor(user, order), f"Production failed: {reason}")
    _queue_revocation(session, attempt_ref(order.id, attempt.card_id, attempt.attempt), "interrupted")


def _queue_revocation(session: Session, ref: str, reason: str) -> None:
    session.add(RevocationRequest(attempt_ref=ref, reason=reason[:200]))


# -- one card at a station (the job) -----------------------------------------------------------

def produce_card(ctx: ProductionContext, order_id: int, card_id: int) -> str:
    """The job: claim the card, produce it, record the outcome under the claim's token.

    Returns what happened ("produced", "failed", "skipped" when the card is not claimable: done,
    claimed by a live worker or its order closed, "lost" when the claim lapsed meanwhile).
    Raises StationPaused, before claiming anything, while the station is paused.
    """
    claim = _claim(ctx, order_id, card_id)
    if claim is None:
        return "skipped"
    ctx.keeper.hold(claim)
    try:
        try:
            result, error = ctx.station.produce(claim.job, f"a{claim.attempt}"), None
        except ClaimLost:
            result, error = None, None
        except CardSdkError as failure:
            result, error = None, str(failure)
        except Exception as failure:  # a defect, not a card problem: the card fails, the order goes on
            log.exception("producing card %s failed unexpectedly", claim.job.card_number,
                          extra=_log_ids(ctx, claim))
            result, error = None, f"Unexpected error in the station ({type(failure).__name__}); see the log."
    finally:
        ctx.keeper.release(claim)
    return _record_outcome(ctx, claim, result, error)


# The per-card path's statements, built once (building a statement costs more than running it)
# and run on the session's connection with plain rows: an ORM flush would cost a card several
# times the SQL it sends. Their audit entries go through ``record_facts`` (tasks.trail).
_cards, _orders, _items = Card.__table__, Order.__table__, OrderCard.__table__
_attempts, _stations = ProductionAttempt.__table__, StationStatus.__table__
_CLAIM = (
    update(_items)
    .where(_items.c.order_id == bindparam("b_order"), _items.c.card_id == bindparam("b_card"),
           _items.c.status == "pending",
           exists().where(_orders.c.id == bindparam("b_order"), _orders.c.status == "open"),
           ~exists().where(_stations.c.name == bindparam("b_station"), _stations.c.paused.is_(True)))
    .values(status="claimed", claim_token=_items.c.claim_token + 1, claimed_by=bindparam("b_worker"),
            claimed_until=bindparam("b_until"))
    .returning(_items.c.claim_token))
_CLAIMED_CARD = select(
    _cards.c.number, _cards.c.organisation, _cards.c.state, _orders.c.options, _orders.c.instance_id,
    _orders.c.created_by, _orders.c.process_id, _orders.c.process_version,
    select(func.max(_attempts.c.attempt))
    .where(_attempts.c.order_id == bindparam("b_order"), _attempts.c.card_id == bindparam("b_card"))
    .scalar_subquery().label("last_attempt"),
    # Physical cards made for this card so far, in any order: the next one's FASC-N series.
    select(func.count()).where(_attempts.c.card_id == bindparam("b_card"))
    .scalar_subquery().label("card_attempts"),
).select_from(_cards.join(_orders, _orders.c.id == bindparam("b_order"))).where(
    _cards.c.id == bindparam("b_card"))
_START_ATTEMPT = insert(_attempts)
_RELEASE = (
    update(_items)
    .where(_items.c.order_id == bindparam("b_order"), _items.c.card_id == bindparam("b_card"),
           _items.c.claim_token == bindparam("b_token"), _items.c.status == "claimed")
    .values(status=bindparam("b_status"), claimed_by=None, claimed_until=None))
_END_ATTEMPT = (
    update(_attempts)
    .where(_attempts.c.order_id == bindparam("b_order"), _attempts.c.card_id == bindparam("b_card"),
           _attempts.c.attempt == bindparam("b_attempt"))
    .values(outcome=bindparam("b_outcome"), error=bindparam("b_error"), physical_serial=bindparam("b_serial"),
            files=bindparam("b_files", type_=_attempts.c.files.type), finished_at=bindparam("b_at")))
_CLAIM_HELD = (select(_items.c.claim_token, _items.c.status)
               .where(_items.c.order_id == bindparam("b_order"), _items.c.card_id == bindparam("b_card"))
               .with_for_update())
_COUNT_PRODUCED = (update(_stations).where(_stations.c.name == bindparam("b_name"))
                   .values(cards_produced=_stations.c.cards_produced + 1))
_COUNT_FAILED = (update(_stations).where(_stations.c.name == bindparam("b_name"))
                 .values(cards_failed=_stations.c.cards_failed + 1, last_error=bindparam("b_error"),
                         last_error_at=bindparam("b_at")))
_COUNT_DOWN = (update(_orders).where(_orders.c.id == bindparam("b_order"))
               .values(cards_outstanding=_orders.c.cards_outstanding - 1)
               .returning(_orders.c.cards_outstanding))


def _claim(ctx: ProductionContext, order_id: int, card_id: int) -> Claim | None:
    """Take the card if it waits (a duplicate job finds it taken) and start its attempt.

    Raises StationPaused when the claim failed because an admin paused this station.
    """
    with ctx.sessions.begin() as session:
        connection = session.connection()
        now = utcnow()
        ids = {"b_order": order_id, "b_card": card_id}
        token = connection.execute(_CLAIM, {**ids, "b_station": ctx.station.name, "b_worker": ctx.worker,
                                            "b_until": now + timedelta(seconds=ctx.claim_seconds)}).scalar()
        if token is None:
            if station_paused(ctx, session):
                raise StationPaused(ctx.station.name)
            return None
        row = connection.execute(_CLAIMED_CARD, ids).one()
        number = (row.last_attempt or 0) + 1
        identity = ctx.card_identity.new(card_id, row.card_attempts)
        connection.execute(_START_ATTEMPT, {
            "order_id": order_id, "card_id": card_id, "attempt": number, "outcome": "started", "files": [],
            "started_at": now, "station": ctx.station.name, "worker": ctx.worker,
            "card_uuid": identity.card_uuid, "fascn": identity.fascn_digits})
        record_facts(session, [AttemptRecorded(row.number, order_id, row.instance_id, number, "started")])
        options = row.options
        job = CardJob(
            card_id=card_id, card_number=row.number, organisation=row.organisation or ctx.organisation,
            valid_until=(now + timedelta(days=options["validity_days"])).date(),
            attempt_ref=attempt_ref(order_id, card_id, number),
            spool_dir=ctx.spool_root / f"order-{order_id}",
            encode=options["encode_card"], certificates=tuple(options["certificates"]),
            pin_length=options["pin_length"], puk_length=options["puk_length"],
            validity_days=options["validity_days"], guard=_claim_guard(order_id, card_id, token),
            card_uuid=identity.card_uuid, fascn=identity.fascn.pack() if identity.fascn else None,
            identity_problem=identity.problem)
        return Claim(order_id, card_id, token, number, row.instance_id, job, row.state,
                     ctx.user or row.created_by, row.process_id, row.process_version)


def _claim_guard(order_id: int, card_id: int, token: int) -> Callable[[Session], None]:
    """The check the CA runs in the transaction that records a certificate: a worker whose
    claim lapsed gets no certificate recorded (the row lock orders it against a takeover)."""

    def still_claimed(session: Session) -> None:
        row = session.connection().execute(_CLAIM_HELD, {"b_order": order_id, "b_card": card_id}).first()
        if row is None or row.claim_token != token or row.status != "claimed":
            raise ClaimLost("This station's claim on the card lapsed; another host took the card over.")

    return still_claimed


class ClaimKeeper:
    """Keeps this host's claims alive while its station works (a real printer takes 15 to 24 s a
    card): one thread for all of them, running only while some are held, so a card pays for no
    thread of its own.

    It renews each claim only under its token, survives database errors (it tries again at the
    next beat), and drops a claim once it is lost: the outcome write then finds out.
    """

    def __init__(self, ctx: ProductionContext):
        self.ctx = ctx
        self._held: dict[tuple[int, int], Claim] = {}
        self._lock = threading.Lock()
        self._running = False
        self._beat = threading.Event()  # never set: its wait is the pause between beats

    def hold(self, claim: Claim) -> None:
        with self._lock:
            self._held[claim.order_id, claim.card_id] = claim
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="cardflow-claim-keeper", daemon=True).start()

    def release(self, claim: Claim) -> None:
        with self._lock:
            self._held.pop((claim.order_id, claim.card_id), None)

    def _still_held(self, claim: Claim) -> bool:
        with self._lock:
            return self._held.get((claim.order_id, claim.card_id)) is claim

    def _run(self) -> None:
        while True:
            self._beat.wait(self.ctx.claim_seconds / 4)
            with self._lock:
                claims = list(self._held.values())
                if not claims:
                    self._running = False
                    return
            for claim in claims:
                self._renew(claim)

    def _renew(self, claim: Claim) -> None:
        try:
            with self.ctx.sessions.begin() as session:
                renewed = session.connection().execute(_RENEW, {
                    "b_order": claim.order_id, "b_card": claim.card_id, "b_token": claim.token,
                    "b_until": utcnow() + timedelta(seconds=self.ctx.claim_seconds)}).rowcount
            if not renewed and self._still_held(claim):
                log.warning("claim on card %s of order %s lost", claim.card_id, claim.order_id,
                            extra=_log_ids(self.ctx, claim))
                self.release(claim)
        except Exception:
            log.exception("renewing the claim on card %s failed; retrying", claim.card_id,
                          extra=_log_ids(self.ctx, claim))


_RENEW = (update(_items)
          .where(_items.c.order_id == bindparam("b_order"), _items.c.card_id == bindparam("b_card"),
                 _items.c.claim_token == bindparam("b_token"), _items.c.status == "claimed")
          .values(claimed_until=bindparam("b_until")))


def _log_ids(ctx: ProductionContext, claim: Claim) -> dict:
    """The ids a log line about a card carries (never its PIN or keys)."""
    return {"order_id": claim.order_id, "card_id": claim.card_id, "station": ctx.station.name,
            "instance_id": claim.instance_id}


def _record_outcome(ctx: ProductionContext, claim: Claim, result, error: str | None) -> str:
    """Record the outcome if the claim still holds; otherwise record nothing and queue the
    revocation of whatever this attempt got issued."""
    batch_done = False
    outcome = "produced" if result is not None else "failed"
    with ctx.sessions.begin() as session:
        held = session.connection().execute(_RELEASE, {
            "b_order": claim.order_id, "b_card": claim.card_id, "b_token": claim.token,
            "b_status": outcome}).rowcount
        if not held:
            # The sweeper took the card over (and recorded the attempt as interrupted); certificates
            # issued before the takeover are in its revocation, but queue ours again to be sure.
            _queue_revocation(session, claim.job.attempt_ref, "claim lapsed")
            outcome = "lost"
        else:
            _write_outcome(session, ctx, claim, result, error)
            _count_station(session, ctx, outcome, error)
            batch_done = _settle_one(session, ctx, claim.order_id, claim.instance_id)
    log.info("card %s of order %s: %s", claim.job.card_number, claim.order_id, outcome,
             extra=_log_ids(ctx, claim))
    if outcome == "lost":
        drain_revocations(ctx)
    elif batch_done:
        ctx.advance(claim.instance_id)
    return outcome


def _write_outcome(session: Session, ctx: ProductionContext, claim: Claim, result, error: str | None) -> None:
    """The attempt's outcome, the card's new state and their audit entries."""
    attempt = AttemptRecorded(claim.job.card_number, claim.order_id, claim.instance_id, claim.attempt,
                              "produced" if result is not None else "failed", error,
                              result.physical_serial if result is not None else None)
    valid_until = None
    if result is None:
        files, target, why = [], CardState.FAILED, f"Production failed: {error}"
    else:
        files = [str(Path(f).relative_to(ctx.spool_root)) for f in result.files]
        valid_until = datetime.combine(claim.job.valid_until, time.max, tzinfo=UTC)
        target = CardState.UNASSIGNED
        why = "Produced" if claim.attempt == 1 else f"Produced again (attempt {claim.attempt})"
        why = f"{why} on station {ctx.station.name}, physical card {result.physical_serial}."
    session.connection().execute(_END_ATTEMPT, {
        "b_order": claim.order_id, "b_card": claim.card_id, "b_attempt": claim.attempt,
        "b_outcome": attempt.outcome, "b_error": error, "b_serial": attempt.serial, "b_files": files,
        "b_at": utcnow()})
    moved = CardMoved(claim.job.card_number, claim.actor, claim.order_id, claim.instance_id, claim.process_id,
                      claim.process_version, claim.card_state, target, why)
    write_move(session, claim.card_id, moved, valid_until)
    record_facts(session, [moved, attempt])


def _settle_one(session: Session, ctx: ProductionContext, order_id: int, instance_id: str) -> bool:
    """One more card of the batch has an outcome; the last one posts "cards produced" (once:
    a count below zero would post again and end the next batch's wait early)."""
    left = session.connection().execute(_COUNT_DOWN, {"b_order": order_id}).scalar()
    if left == 0:
        ctx.post_message(session, instance_id, CARDS_PRODUCED, progress(session, order_id))
        return True
    if left is not None and left < 0:
        log.error("order %s counted down below zero (%s): an outcome outside its batch", order_id, left,
                  extra={"order_id": order_id, "instance_id": instance_id})
    return False


def _count_station(session: Session, ctx: ProductionContext, outcome: str, error: str | None) -> None:
    """Count the outcome on the station's row, creating the row for the station's first card."""
    if not _count(session, ctx, outcome, error):  # the station's first card, before its first heartbeat
        try:
            with session.begin_nested():  # another host (or the heartbeat) may create it at the same moment
                session.connection().execute(insert(StationStatus.__table__).values(
                    name=ctx.station.name, pool=ctx.pool, paused=False, worker=ctx.worker,
                    heartbeat_at=utcnow(), cards_produced=0, cards_failed=0))
        except IntegrityError:
            pass
        _count(session, ctx, outcome, error)


def _count(session: Session, ctx: ProductionContext, outcome: str, error: str | None) -> int:
    if outcome == "produced":
        return session.connection().execute(_COUNT_PRODUCED, {"b_name": ctx.station.name}).rowcount
    return session.connection().execute(_COUNT_FAILED, {"b_name": ctx.station.name, "b_error": error,
                                                        "b_at": utcnow()}).rowcount


# -- what every host's sweeper does ------------------------------------------------------------

def reap_lapsed_claims(ctx: ProductionContext, limit: int = 50, previous_process: bool = False) -> int:
    """Take over cards whose claim lapsed: the attempt is interrupted, the card failed for
    Repeat production, its certificates queued for revocation, the batch counted down.

    With ``previous_process`` (a station host starting), the claims of an earlier process of the
    same station on the same machine count as lapsed at once: a station's devices serve one
    process, so that one is dead or stopped, and if only stopped, its fencing token stops it.
    """
    done_instances: list[str] = []
    settling: list[tuple[int, str]] = []
    with ctx.sessions.begin() as session:
        now = utcnow()
        lapsed_or_ours = OrderCard.claimed_until < now
        if previous_process:
            station_host = ctx.worker.rsplit(":", 1)[0] + ":"
            earlier = OrderCard.claimed_by.startswith(station_host, autoescape=True)
            lapsed_or_ours = or_(lapsed_or_ours, earlier & (OrderCard.claimed_by != ctx.worker))
        lapsed = session.scalars(select(OrderCard).where(
            OrderCard.status == "claimed", lapsed_or_ours)
            .order_by(OrderCard.claimed_until).limit(limit).with_for_update(skip_locked=True)).all()
        for item in lapsed:
            order = session.get(Order, item.order_id)
            station = item.claimed_by or "unknown"
            item.status, item.claim_token = "failed", item.claim_token + 1
            item.claimed_by, item.claimed_until = None, None
            attempt = _latest_attempt(session, item.order_id, item.card_id)
            log.warning("claim of %s on card %s of order %s lapsed; attempt interrupted", station,
                        item.card_id, item.order_id,
                        extra={"order_id": item.order_id, "card_id": item.card_id, "station": station})
            if attempt is not None and attempt.outcome == "started":
                _interrupt(session, order, attempt, LAPSED.format(station=attempt.station or station),
                           order.created_by)
            if order.status == "open":
                settling.append((order.id, order.instance_id))
        # The audit entries take the chain's lock before the orders' rows are locked, as every
        # card's outcome takes them (the other way round, a reap and an outcome deadlock).
        session.flush()
        for order_id, instance_id in sorted(settling):
            if _settle_one(session, ctx, order_id, instance_id):
                done_instances.append(instance_id)
    drain_revocations(ctx)
    for instance_id in done_instances:
        ctx.advance(instance_id)
    return len(lapsed)


def drain_revocations(ctx: ProductionContext, limit: int = 100) -> int:
    """Revoke the certificates of queued attempts (idempotent: any host may drain any request)."""
    with ctx.sessions() as session:
        queued = session.execute(select(RevocationRequest.id, RevocationRequest.attempt_ref,
                                        RevocationRequest.reason)
                                 .where(RevocationRequest.done_at.is_(None))
                                 .order_by(RevocationRequest.id).limit(limit)).all()
    for request_id, ref, reason in queued:
        if ctx.station.encoder is None:  # this host has no CA: another host drains it
            return 0
        revoked = ctx.station.spoil(ref, reason)
        revoked = len(revoked) if isinstance(revoked, list) else revoked
        with ctx.sessions.begin() as session:
            session.execute(update(RevocationRequest).where(RevocationRequest.id == request_id)
                            .values(done_at=utcnow(), revoked=revoked))
    return len(queued)


def redispatch_lost_jobs(ctx: ProductionContext, queue_depth: Callable[[str], int | None],
                         quiet_seconds: float = 10.0) -> int:
    """Queue again the pending cards of orders whose pool queue is empty although cards still
    wait (a broker restart without persistence lost them): a duplicate job only finds its card
    taken, so re-sending is safe."""
    now = utcnow()
    with ctx.sessions() as session:
        waiting = session.execute(select(Order.id, Order.station_pool).where(
            Order.status == "open", Order.cards_outstanding > 0,
            or_(Order.dispatched_at.is_(None),
                Order.dispatched_at < now - timedelta(seconds=quiet_seconds)))).all()
        # A paused station holds its deferred jobs itself: its pool's queue looks empty.
        paused_pools = set(session.scalars(select(StationStatus.pool).group_by(StationStatus.pool)
                                           .having(func.min(case((StationStatus.paused, 1), else_=0)) == 1)))
    # The broker is asked with no transaction open: a slow broker must not hold a database lock.
    pools = {pool for _order_id, pool in waiting if pool not in paused_pools}
    empty = {pool for pool in pools if queue_depth(pool_queue(pool)) == 0}
    resend: list[tuple[str, int, int]] = []
    with ctx.sessions.begin() as session:
        for order_id, pool in waiting:
            if pool not in empty:
                continue
            pending = session.scalars(select(OrderCard.card_id).where(
                OrderCard.order_id == order_id, OrderCard.status == "pending")
                .order_by(OrderCard.card_id)).all()
            if pending:
                session.execute(update(Order).where(Order.id == order_id).values(dispatched_at=now))
                resend.extend((pool_queue(pool), order_id, card_id) for card_id in pending)
    for queue, order_id, card_id in resend:
        ctx.enqueue(queue, PRODUCE_CARD, {"order_id": order_id, "card_id": card_id})
    return len(resend)


def station_paused(ctx: ProductionContext, session: Session | None = None) -> bool:
    """Whether an admin paused this host's station."""
    query = select(StationStatus.paused).where(StationStatus.name == ctx.station.name)
    if session is not None:
        return bool(session.scalar(query))
    with ctx.sessions() as own:
        return bool(own.scalar(query))


def heartbeat(ctx: ProductionContext) -> None:
    """Tell the console and /healthz that this host's station is alive."""
    with ctx.sessions.begin() as session:
        row = session.get(StationStatus, ctx.station.name)
        if row is None:
            session.add(StationStatus(name=ctx.station.name, pool=ctx.pool, paused=False, worker=ctx.worker,
                                      heartbeat_at=utcnow(), cards_produced=0, cards_failed=0))
        else:
            row.pool, row.worker, row.heartbeat_at = ctx.pool, ctx.worker, utcnow()
