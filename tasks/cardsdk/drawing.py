"""Drawing cards in processes of their own while their chips are encoded.

Drawing (tasks.cardsdk.printer ``stage``: drawing and writing the card's files under hidden
names) is Python as much as image code and file creation: on a thread it
slowed the encoding it was meant to overlap, as both need the interpreter lock. In a process it
runs beside the encoding. A station thread talks to its drawing process over a pipe itself:
``concurrent.futures.ProcessPoolExecutor`` hands requests and results through threads of its
own, which wait for the interpreter lock behind the busy station thread (4.5 ms a card measured).

A host starts one drawing process when it starts (``warm``), since starting one takes about a
second (the child imports the drawing code): the first card of the day is not that second late.
Each serves one card at a time; threads producing at once get one each, started as needed. If
one dies, the card is drawn in the station's own thread and the next card gets a new process.
The spawn start method imports the program's main module in the child, as multiprocessing
always does: scripts that produce cards in-process keep their work under
``if __name__ == "__main__":``.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from tasks.cardsdk.job import CardJob

log = logging.getLogger(__name__)

Draw = Callable[[CardJob, str], Any]
# Run in the drawing process after each card it answered, to get ready for the next (None: it ends).
Ahead = Callable[[CardJob | None], None]


def _draw_forever(connection: Connection, draw: Draw, ahead: Ahead | None) -> None:
    """The drawing process: draw each card asked for, answer (True, drawn) or (False, error),
    then get ready for the next card (``ahead``) while the station goes on with this one."""
    while True:
        try:
            job, attempt_label = connection.recv()
        except (EOFError, OSError):
            if ahead is not None:
                ahead(None)
            return  # the station's process ended
        try:
            answer = (True, draw(job, attempt_label))
        except Exception as error:  # the station raises it as if it had drawn the card itself
            answer = (False, error)
        connection.send(answer)
        if ahead is not None:
            try:
                ahead(job)
            except Exception as error:  # only a head start lost: the next card does it all
                log.warning("the drawing process could not get ready for the next card: %s", error)


class _Drawer:
    """One drawing process and the station's end of its pipe."""

    def __init__(self, draw: Draw, ahead: Ahead | None):
        context = multiprocessing.get_context("spawn")
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=_draw_forever, args=(theirs, draw, ahead), daemon=True,
                                       name="cardflow-drawing")
        self.process.start()
        theirs.close()

    def close(self) -> None:
        self.connection.close()
        self.process.join(timeout=1)
        if self.process.is_alive():
            self.process.kill()


class Drawing:
    """A card being drawn: ``result()`` gives the drawing (or raises what drawing raised);
    ``discard()`` when the card will not be printed. One of them is called exactly once."""

    def __init__(self, drawers: Drawers, drawer: _Drawer | None, job: CardJob, attempt_label: str):
        self._drawers, self._drawer, self._job, self._label = drawers, drawer, job, attempt_label

    def result(self) -> Any:
        drawer, self._drawer = self._drawer, None
        if drawer is None:
            return self._drawers.draw(self._job, self._label)
        try:
            ok, value = drawer.connection.recv()
        except (EOFError, OSError):
            log.warning("the drawing process of card %s ended; the card is drawn here", self._job.card_number)
            drawer.close()
            return self._drawers.draw(self._job, self._label)
        self._drawers.give_back(drawer)
        if ok:
            return value
        raise value

    def discard(self) -> None:
        try:
            drawn = self.result()
        except Exception:  # the card is not printed: what its drawing raised does not matter
            return
        self._drawers.discard(drawn)


class Drawers:
    """The drawing processes of one printer, started as cards need them and kept idle between."""

    def __init__(self, draw: Draw, discard: Callable[[Any], None] = lambda drawn: None, apart: bool = True,
                 ahead: Ahead | None = None):
        self.draw = draw
        # Throws away what ``draw`` made for a card that will not be printed.
        self.discard = discard
        self.ahead = ahead
        # False for a printer that draws nothing itself: a process would cost it a round trip
        # through a pipe (most of what such a card costs the station), and save nothing.
        self.apart = apart
        self._idle: list[_Drawer] = []
        self._lock = threading.Lock()

    def start(self, job: CardJob, attempt_label: str) -> Drawing:
        """Start drawing ``job``'s card; falls back to drawing it in ``result()`` if no process can."""
        if not self.apart:
            return Drawing(self, None, job, attempt_label)
        with self._lock:
            drawer = self._idle.pop() if self._idle else None
        try:
            if drawer is None:
                drawer = _Drawer(self.draw, self.ahead)
            # The guard is the station's own (a database check): drawing never needs it.
            drawer.connection.send((replace(job, guard=None), attempt_label))
        except (OSError, ValueError, EOFError) as error:
            log.warning("no drawing process for card %s (%s); the card is drawn here", job.card_number, error)
            if drawer is not None:
                drawer.close()
            drawer = None
        return Drawing(self, drawer, job, attempt_label)

    def warm(self) -> None:
        """Start a drawing process now, if none is idle, so the next card finds it ready."""
        with self._lock:
            if self._idle or not self.apart:
                return
        try:
            drawer = _Drawer(self.draw, self.ahead)
        except OSError as error:
            log.warning("no drawing process could be started ahead (%s); the first card starts one", error)
            return
        self.give_back(drawer)

    def give_back(self, drawer: _Drawer) -> None:
        with self._lock:
            self._idle.append(drawer)
