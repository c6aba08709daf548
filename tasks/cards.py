"""Card states and the transitions between them: the rules, in plain Python.

``requested`` -> ``unassigned`` (produced) or ``failed`` (production failed; repeat possible).
Later use cases add assignment, withdrawal, locking, aborting and expiry.
"""

from __future__ import annotations

from enum import StrEnum

from tasks.errors import TransitionError


class CardState(StrEnum):
    """Every state a temporary card can be in."""

    REQUESTED = "requested"
    UNASSIGNED = "unassigned"
    FAILED = "failed"
    ASSIGNED = "assigned"
    LOCKED = "locked"
    ABORTED = "aborted"
    EXPIRED = "expired"


S = CardState

# from-state -> the states it may move to. Re-producing an unassigned card (a misprint) keeps it
# unassigned or makes it failed; a failed card goes back to requested when its order ends.
ALLOWED: dict[CardState, frozenset[CardState]] = {
    S.REQUESTED: frozenset({S.UNASSIGNED, S.FAILED, S.ABORTED}),
    S.FAILED: frozenset({S.UNASSIGNED, S.FAILED, S.REQUESTED}),
    S.UNASSIGNED: frozenset({S.UNASSIGNED, S.FAILED, S.ASSIGNED, S.LOCKED, S.EXPIRED}),
    S.ASSIGNED: frozenset({S.UNASSIGNED, S.LOCKED, S.EXPIRED}),
    S.LOCKED: frozenset(),
    S.ABORTED: frozenset(),
    S.EXPIRED: frozenset(),
}

FINAL = frozenset(state for state, targets in ALLOWED.items() if not targets)


def check_transition(number: str, current: str, target: str) -> None:
    """Raise TransitionError unless card ``number`` may go from ``current`` to ``target``."""
    try:
        source, goal = CardState(current), CardState(target)
    except ValueError as error:
        raise TransitionError(f"Card {number}: unknown card state ({error}).") from None
    if goal not in ALLOWED[source]:
        raise TransitionError(f"Card {number} is {source}; it cannot become {goal}.")
