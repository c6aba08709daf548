"""Card states and the transitions between them: the rules, in plain Python.

``requested`` -> ``unassigned`` (produced) or ``failed`` (production failed; repeat possible).
Later use cases add assignment, withdrawal, locking, aborting and expiry.
"""

from __future__ import annotations

import re
from enum import StrEnum

from tasks.errors import CardflowError, TransitionError

# A prefix of capital letters, a dash and digits: nothing that could be read as a path or markup.
CARD_NUMBER = re.compile(r"[A-Z]{1,8}-[0-9]{1,12}")
MAX_NUMBER_LENGTH = 40


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


def check_card_number(number: str) -> None:
    """Raise CardflowError unless ``number`` is a well-formed card number (``TC-000123``)."""
    if not isinstance(number, str) or len(number) > MAX_NUMBER_LENGTH or not CARD_NUMBER.fullmatch(number):
        shown = repr(number)[:MAX_NUMBER_LENGTH + 10]
        raise CardflowError(f"{shown} is not a valid card number: use 1 to 8 capital letters, a dash and "
                            "1 to 12 digits, like TC-000123.")
