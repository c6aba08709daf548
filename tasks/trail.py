"""How the records a hot path writes without ORM objects reach the audit trail.

The audit entries of ORM rows are derived when the session flushes (engine.domain_audit). A path
that writes with prepared statements instead (a card's production, the certificates the CA
issues) hands the facts it wrote to ``record_facts``, in the same transaction. The composition
root puts the trail in the ``info`` of its session factory, so this package never imports the
engine; sessions of another factory record no facts, as they derive no entries either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

# The key of ``Session.info`` under which the composition root puts the trail.
TRAIL = "cardflow_trail"
# (session, facts): adds the facts' audit entries to the session's transaction.
Trail = Callable[[Session, Sequence[object]], None]


def record_facts(session: Session, facts: Sequence[object]) -> None:
    """Add the audit entries of ``facts`` to ``session``'s transaction (if it has a trail)."""
    trail = session.info.get(TRAIL)
    if trail is not None and facts:
        trail(session, facts)
