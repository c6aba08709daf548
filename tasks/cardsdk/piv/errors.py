"""The Card SDK's errors, each with a message an operator can act on.

Every class derives from ``tasks.cardsdk.job.CardSdkError`` so production handlers need to catch
one type. Messages never contain a PIN, PUK or key.
"""

from __future__ import annotations

from tasks.cardsdk.job import CardSdkError


class NoReaderError(CardSdkError):
    """The configured card reader is not connected or not known to PC/SC."""


class NoCardError(CardSdkError):
    """The reader is there but holds no card."""


class CardRemovedError(CardSdkError):
    """The card left the reader (or stopped answering) while it was being encoded."""


class WrongFactoryKeyError(CardSdkError):
    """The card refused the profile's management key: wrong card stock or already personalised."""


class PinBlockedError(CardSdkError):
    """The PIN or PUK has no tries left."""


class WrongPinError(CardSdkError):
    """The card refused a PIN or PUK; ``tries_left`` says how many attempts remain."""

    def __init__(self, message: str, tries_left: int) -> None:
        """Keep the remaining tries next to the message."""
        super().__init__(message)
        self.tries_left = tries_left


class StatusWordError(CardSdkError):
    """The card answered a command with a status word the encoder did not expect."""

    def __init__(self, message: str, sw: int) -> None:
        """Keep the status word for callers that branch on it."""
        super().__init__(message)
        self.sw = sw


class MalformedResponseError(CardSdkError):
    """The card's answer could not be parsed (bad TLV, truncated, garbage)."""


class CaRefusedError(CardSdkError):
    """The certificate authority did not issue (or revoke) a certificate."""


class EncodingFailedError(CardSdkError):
    """Anything else that stopped the encoding; the message names the step."""


class CustodyError(CardSdkError):
    """Custody cannot store or open a card's secrets (missing, wrong key, tampered)."""
