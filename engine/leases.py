"""One lock per instance, kept in the database so it holds across threads and processes.

A lease expires instead of locking forever when its holder dies; a live holder renews it. Engine
steps are short (production runs at the stations, not under the lease), so the lease is short
too: a dead holder's instance is free again within seconds. The lease's owner id is its fencing
token: the runtime saves an instance only where ``locked_by`` is still its owner, so a holder
that was paused past its lease can no longer write after another took the instance over.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session, sessionmaker

from engine.db import unit_of_work
from engine.store import Instance, utcnow

log = logging.getLogger(__name__)

LEASE_SECONDS = 20


class InstanceBusy(Exception):
    """Another runner or request is working on this instance right now."""


class LeaseLost(Exception):
    """This holder's lease lapsed and another took the instance: it must not write."""


def _take(sessions: sessionmaker[Session], instance_id: str, owner: str, fresh: bool) -> bool:
    """Take (or, with ``fresh`` False, renew) the lease; True when this owner holds it."""
    now = utcnow()
    free = or_(Instance.locked_by.is_(None), Instance.locked_until < now, Instance.locked_by == owner)
    with unit_of_work(sessions) as session:
        result = session.execute(
            update(Instance)
            .where(Instance.id == instance_id, free if fresh else Instance.locked_by == owner)
            .values(locked_by=owner, locked_until=now + timedelta(seconds=LEASE_SECONDS))
        )
        return result.rowcount == 1


def _release(sessions: sessionmaker[Session], instance_id: str, owner: str) -> None:
    with unit_of_work(sessions) as session:
        session.execute(
            update(Instance)
            .where(Instance.id == instance_id, Instance.locked_by == owner)
            .values(locked_by=None, locked_until=None)
        )


@contextmanager
def instance_lease(sessions: sessionmaker[Session], instance_id: str, wait: float = 0.0) -> Iterator[str]:
    """Hold the instance's lease for the block, renewing it while the block runs long.

    ``wait``: how long to keep trying while another holds it (a person's request waits out an
    engine step that is just ending, rather than being told to try again).
    """
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    while not _take(sessions, instance_id, owner, fresh=True):
        if time.monotonic() >= deadline:
            raise InstanceBusy(f"Order process {instance_id} is busy; try again in a moment.")
        time.sleep(0.05)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE_SECONDS / 4):
            try:
                if not _take(sessions, instance_id, owner, fresh=False):
                    log.warning("lease of instance %s lost; its writes will be refused", instance_id)
                    return
            except Exception:  # a database hiccup: try again at the next beat, never die silently
                log.exception("renewing the lease of instance %s failed; retrying", instance_id)

    renewer = threading.Thread(target=renew, name=f"lease-{instance_id[:8]}", daemon=True)
    renewer.start()
    try:
        yield owner
    finally:
        stop.set()
        renewer.join()
        try:
            _release(sessions, instance_id, owner)
        except Exception:  # the lease then lapses by itself within LEASE_SECONDS
            log.exception("releasing the lease of instance %s failed", instance_id)
