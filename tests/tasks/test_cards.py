"""The card rules: which state changes are allowed."""

import pytest

from tasks.cards import ALLOWED, FINAL, CardState, check_transition
from tasks.errors import TransitionError


@pytest.mark.parametrize("source,target", [
    ("requested", "unassigned"), ("requested", "failed"), ("failed", "unassigned"),
    ("failed", "requested"), ("unassigned", "failed"), ("unassigned", "assigned"),
    ("assigned", "unassigned"), ("unassigned", "locked"), ("requested", "aborted"),
])
def test_allowed_transitions(source, target):
    check_transition("TC-1", source, target)


@pytest.mark.parametrize("source,target", [
    ("requested", "assigned"), ("unassigned", "requested"), ("locked", "unassigned"),
    ("aborted", "requested"), ("expired", "unassigned"), ("assigned", "requested"),
])
def test_forbidden_transitions_name_the_card_and_states(source, target):
    with pytest.raises(TransitionError, match=f"Card TC-1 is {source}; it cannot become {target}"):
        check_transition("TC-1", source, target)


def test_unknown_state_is_refused():
    with pytest.raises(TransitionError, match="unknown card state"):
        check_transition("TC-1", "requested", "stolen")


def test_final_states_are_exactly_locked_aborted_expired():
    assert FINAL == {CardState.LOCKED, CardState.ABORTED, CardState.EXPIRED}
    assert set(ALLOWED) == set(CardState)
