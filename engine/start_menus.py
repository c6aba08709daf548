"""Start menus: where a deployed process's start button appears, as its definition declares it.

A process declares it on its ``<bpmn:process>`` element, with the extension properties
spiff-arena writes for tasks::

    <bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="menu" value="card" />
      <spiffworkflow:property name="label" value="Lock temporary card" />
      <spiffworkflow:property name="cardStates" value="assigned,unassigned" />
    </spiffworkflow:properties></bpmn:extensionElements>

``menu`` is one of MENUS; ``label`` the button's text (default: the process name); ``cardStates``
(only with ``menu=card``) the card states it may start from. Deploy refuses anything else
(``check_start_menu``), so the console draws its menus from data alone: no process id is
written in Python. What a version declares is read from its BPMN once (a stored version never
changes; its content hash covers the declaration) and kept.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.spiff import parse_xml
from engine.store import CurrentVersion, Definition

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN, "spiffworkflow": SPIFF}
PROCESS_PROPERTIES = "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"

# batch-orders: the BATCH ORDERS page; quick-search: the console's Quick search > Temporary card;
# card: a card's page, acting on that card.
MENUS = ("batch-orders", "quick-search", "card")
NAMES = ("menu", "label", "cardStates")
# A card state as the card domain writes them (lower case words); which states exist is the
# domain's business, the engine only keeps the words well formed.
STATE_WORD = re.compile(r"[a-z][a-z_]{0,19}")
MAX_LABEL = 80
# Declarations kept, by content hash (a few versions of a few processes).
KEPT = 256


@dataclass(frozen=True)
class StartEntry:
    """One start button: the process it starts, its text, and (menu=card) the card states it needs."""

    process_id: str
    label: str
    card_states: tuple[str, ...] = ()


@dataclass(frozen=True)
class Declaration:
    """What a process version declares: its menu, its label (None: the process name), its states."""

    menu: str
    label: str | None
    card_states: tuple[str, ...]


def _executable(root: etree._Element) -> etree._Element | None:
    """The executable process of a BPMN document (the first, as deploy allows only one)."""
    for process in root.iterfind("bpmn:process", NS):
        if process.get("isExecutable") == "true":
            return process
    return None


def start_properties(root: etree._Element) -> dict[str, str]:
    """The start menu properties the executable process of ``root`` declares, by name."""
    process = _executable(root)
    if process is None:
        return {}
    return {prop.get("name"): prop.get("value") or "" for prop in process.iterfind(PROCESS_PROPERTIES, NS)
            if prop.get("name") in NAMES}


def check_start_menu(process: etree._Element) -> list[tuple[int | None, str]]:
    """Why the start menu ``process`` declares cannot be used, as (line, reason); [] when fine."""
    owner = process.get("id")
    found: dict[str, etree._Element] = {}
    problems: list[tuple[int | None, str]] = []
    for prop in process.iterfind(PROCESS_PROPERTIES, NS):
        name = prop.get("name")
        if name not in NAMES:
            problems.append((prop.sourceline, f"{owner}: unknown process property {name!r}; "
                                              f"a process declares {', '.join(NAMES)}"))
        elif name in found:
            problems.append((prop.sourceline, f"{owner}: property {name} is declared twice"))
        else:
            found[name] = prop
    values = {name: (prop.get("value") or "").strip() for name, prop in found.items()}
    for name, prop in found.items():
        reason = _value_problem(name, values[name], values)
        if reason:
            problems.append((prop.sourceline, f"{owner}: {reason}"))
    if "menu" not in found and found:
        problems.append((process.sourceline, f"{owner}: {', '.join(found)} without a menu; "
                                             f"add the property menu ({', '.join(MENUS)})"))
    if values.get("menu") == "card" and "cardStates" not in found:
        problems.append((found["menu"].sourceline, f"{owner}: a process on the card menu declares the "
                                                   "card states it starts from (cardStates, such as "
                                                   "assigned,unassigned)"))
    return problems


def _value_problem(name: str, value: str, values: dict[str, str]) -> str | None:
    """Why one property's value is unusable, or None."""
    if not value:
        return f"property {name} has no value"
    if name == "menu" and value not in MENUS:
        return f"unknown menu {value[:40]!r}; use one of {', '.join(MENUS)}"
    if name == "label" and (len(value) > MAX_LABEL or not value.isprintable()):
        return f"label must be 1 to {MAX_LABEL} printable characters"
    if name == "cardStates":
        if values.get("menu") != "card":
            return "cardStates only applies to a process on the card menu (menu=card)"
        words = [word.strip() for word in value.split(",")]
        bad = [word for word in words if not STATE_WORD.fullmatch(word)]
        if bad:
            return (f"cardStates: {bad[0][:40]!r} is not a card state; give lower-case state words "
                    "separated by commas, such as assigned,unassigned")
        if len(set(words)) != len(words):
            return "cardStates names a state twice"
    return None


def read_declaration(bpmn_xml: str) -> Declaration | None:
    """What a deployed process's BPMN declares (None: it appears in no menu)."""
    properties = start_properties(parse_xml(bpmn_xml.encode("utf-8")).getroot())
    menu = properties.get("menu", "").strip()
    if menu not in MENUS:
        return None
    states = tuple(word.strip() for word in properties.get("cardStates", "").split(",") if word.strip())
    return Declaration(menu, properties.get("label", "").strip() or None, states)


class _Declarations:
    """Declarations by content hash, each read from its BPMN once; thread-safe, bounded."""

    def __init__(self, size: int = KEPT):
        self._size = size
        self._found: OrderedDict[str, Declaration | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, definition_id: int, content_hash: str) -> Declaration | None:
        with self._lock:
            if content_hash in self._found:
                self._found.move_to_end(content_hash)
                return self._found[content_hash]
        bpmn = session.scalar(select(Definition.bpmn_xml).where(Definition.id == definition_id))
        found = read_declaration(bpmn)
        with self._lock:
            self._found[content_hash] = found
            while len(self._found) > self._size:
                self._found.popitem(last=False)
        return found


_DECLARATIONS = _Declarations()
_MENUS_KEY = "cardflow_start_menus"
_CURRENT = (select(Definition.id, Definition.process_id, Definition.name, Definition.content_hash)
            .join(CurrentVersion, (CurrentVersion.kind == "process")
                  & (CurrentVersion.name == Definition.process_id)
                  & (CurrentVersion.version == Definition.version)))


def start_entries(session: Session, menu: str) -> list[StartEntry]:
    """The start buttons of ``menu``: the current version of every process that declares it, by label."""
    return list(_menus(session).get(menu, ()))


def _menus(session: Session) -> dict[str, tuple[StartEntry, ...]]:
    """Every menu's entries, read once per transaction: a page draws the header's menu and its own
    from one read (the current versions a transaction sees do not change while it runs)."""
    transaction = session.get_transaction()
    kept = session.info.get(_MENUS_KEY)
    found = kept[1] if kept is not None and transaction is not None and kept[0] is transaction else None
    if found is None:
        menus: dict[str, list[StartEntry]] = {}
        for row in session.execute(_CURRENT).all():
            declared = _DECLARATIONS.get(session, row.id, row.content_hash)
            if declared is not None:
                menus.setdefault(declared.menu, []).append(
                    StartEntry(row.process_id, declared.label or row.name, declared.card_states))
        found = {menu: tuple(sorted(entries, key=lambda entry: (entry.label.casefold(), entry.process_id)))
                 for menu, entries in menus.items()}
        session.info[_MENUS_KEY] = (session.get_transaction(), found)
    return found


def start_entry(session: Session, menu: str, process_id: str) -> StartEntry | None:
    """The entry of ``menu`` that starts ``process_id``, or None (not deployed, or not on it)."""
    return next((entry for entry in start_entries(session, menu) if entry.process_id == process_id), None)


def card_entries(session: Session, state: str) -> list[StartEntry]:
    """The card menu's entries that may start on a card in ``state``."""
    return [entry for entry in start_entries(session, "card") if state in entry.card_states]
