"""Virtual cards that misbehave on cue, for fault-injection tests."""

from __future__ import annotations

from tasks.cardsdk.piv.transport import InProcessTransport
from tasks.cardsdk.piv.virtual_card import VirtualPivCard


class FaultyCard(VirtualPivCard):
    """A virtual card that misbehaves on its ``fail_at``-th command of INS ``ins``."""

    def __init__(self, ins: int, answer: bytes | None, occurrence: int = 1) -> None:
        """``answer`` None means the card is pulled out at that moment."""
        super().__init__()
        self.fault = (ins, answer, occurrence)
        self.seen = 0

    def transmit(self, raw: bytes) -> bytes:
        """Answer normally until the fault triggers."""
        ins, answer, occurrence = self.fault
        if raw[1] == ins and not raw[0] & 0x10:
            self.seen += 1
            if self.seen == occurrence:
                if answer is None:
                    self.removed = True
                else:
                    return answer
        return super().transmit(raw)


class FaultySource:
    """A card source handing out one faulty card."""

    def __init__(self, card: VirtualPivCard) -> None:
        """Keep the card."""
        self.card = card

    def next_card(self) -> InProcessTransport:
        """The faulty card."""
        return InProcessTransport(self.card)
