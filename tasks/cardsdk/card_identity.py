"""The identity of one physical card: a random GUID and a FASC-N of its own, fixed per attempt.

Every production attempt is a new physical card, so each gets a fresh UUID v4 (never derived from
the database id: two installations, or a misprint and its replacement, must not share one) and a
FASC-N whose credential number is the card's id and whose credential series and issue count the
card's earlier physical attempts, so a door system tells a revoked misprint from its replacement.
Both are made in Python when the attempt row is inserted: no extra statement per card.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from tasks.cardsdk.fascn import Fascn

CREDENTIAL_NUMBERS = 1_000_000  # six digits
# Series (one digit) and issue (one digit, starting at 1) together count physical cards.
ISSUES_PER_CARD = 90
NON_FEDERAL_AGENCY = "9999"


class CardIdentityConfigError(ValueError):
    """The FASC-N agency or system code in the configuration is not four digits."""


@dataclass(frozen=True)
class CardIdentity:
    """What an attempt records and the chip carries; ``fascn`` is None when it cannot be made
    (``problem`` says why, in the operator's words, and encoding refuses the card)."""

    card_uuid: uuid.UUID
    fascn: Fascn | None
    problem: str | None = None

    @property
    def fascn_digits(self) -> str | None:
        """The FASC-N as the attempt row stores it."""
        return self.fascn.digits if self.fascn else None


@dataclass(frozen=True)
class CardIdentityIssuer:
    """The installation's FASC-N agency and system codes (configuration: CARDFLOW_FASCN_AGENCY_CODE,
    CARDFLOW_FASCN_SYSTEM_CODE); 9999 is the code of an issuer outside the federal government."""

    agency_code: str = NON_FEDERAL_AGENCY
    system_code: str = NON_FEDERAL_AGENCY

    def __post_init__(self) -> None:
        """Refuse codes that are not four digits, naming the setting."""
        for name, value in (("CARDFLOW_FASCN_AGENCY_CODE", self.agency_code),
                            ("CARDFLOW_FASCN_SYSTEM_CODE", self.system_code)):
            if not (isinstance(value, str) and len(value) == 4 and value.isascii() and value.isdigit()):
                raise CardIdentityConfigError(f"{name} must be 4 digits (0000 to 9999), not {value!r}.")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> CardIdentityIssuer:
        """The codes from the environment (the same ``CARDFLOW_*`` configuration as the rest), 9999
        when unset; a bad value stops the host at start with the setting's name."""
        env = os.environ if env is None else env
        return cls(env.get("CARDFLOW_FASCN_AGENCY_CODE", "").strip() or NON_FEDERAL_AGENCY,
                   env.get("CARDFLOW_FASCN_SYSTEM_CODE", "").strip() or NON_FEDERAL_AGENCY)

    def new(self, card_id: int, earlier_attempts: int) -> CardIdentity:
        """The identity of the next physical card for ``card_id``, which had ``earlier_attempts``."""
        card_uuid = uuid.uuid4()
        if not 0 < card_id < CREDENTIAL_NUMBERS:
            return CardIdentity(card_uuid, None, f"Card id {card_id} does not fit the six digits of a "
                                "FASC-N credential number; this installation cannot encode it.")
        if not 0 <= earlier_attempts < ISSUES_PER_CARD:
            return CardIdentity(card_uuid, None, f"This card was produced {earlier_attempts} times; a "
                                f"FASC-N can tell only {ISSUES_PER_CARD} physical cards of one card apart.")
        fascn = Fascn(
            agency_code=self.agency_code,
            system_code=self.system_code,
            credential_number=f"{card_id:06d}",
            credential_series=str(earlier_attempts % 10),
            individual_credential_issue=str(earlier_attempts // 10 + 1),
            # Temporary cards have no person yet; a non-federal issuer is "commercial" (3).
            organizational_category="3" if self.agency_code == NON_FEDERAL_AGENCY else "1",
            organizational_identifier=self.agency_code,
        )
        return CardIdentity(card_uuid, fascn)
