"""The card domain's exceptions. Each message says what was wrong and what to do about it."""


class CardflowError(Exception):
    """Base of every error the card domain reports to a user."""


class NotFoundError(CardflowError):
    """A card or order that was asked for does not exist."""


class SelectionError(CardflowError):
    """Cards chosen for an order cannot be taken (unknown, wrong state, held by another order)."""


class TransitionError(CardflowError):
    """A card state change that the card rules do not allow."""


class OrderClosedError(CardflowError):
    """An order that has ended cannot be changed any more."""
