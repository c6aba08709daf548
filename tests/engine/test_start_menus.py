"""Deploy refuses a start menu a process declares wrongly, each with its line and reason; the
declaration is part of what a version is."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bootstrap import published_widgets
from engine.deploy_errors import DeployError
from engine.process_validation import validate_process_bytes
from engine.start_menus import read_declaration

REPO = Path(__file__).resolve().parents[2]
LOCK = (REPO / "processes" / "TempCardsProcLock.bpmn").read_text()
DECLARED = ('        <spiffworkflow:property name="menu" value="card" />\n'
            '        <spiffworkflow:property name="label" value="Lock temporary card" />\n'
            '        <spiffworkflow:property name="cardStates" value="assigned,unassigned" />\n')
OPERATORS = {"card_lock"}


def declaring(properties: str) -> bytes:
    """The shipped Lock process with ``properties`` as its start menu declaration."""
    assert DECLARED in LOCK
    return LOCK.replace(DECLARED, properties).encode()


def prop(name: str, value: str) -> str:
    return f'        <spiffworkflow:property name="{name}" value="{value}" />\n'


def validate(data: bytes):
    return validate_process_bytes(data, "lock.bpmn", REPO / "forms", OPERATORS, published_widgets().names())


def reasons(data: bytes) -> list[tuple[int | None, str]]:
    with pytest.raises(DeployError) as refused:
        validate(data)
    return [(problem.line, problem.reason) for problem in refused.value.problems]


def test_the_shipped_declaration_is_read_as_written():
    assert read_declaration(LOCK).menu == "card"
    assert read_declaration(LOCK).card_states == ("assigned", "unassigned")
    assert read_declaration(LOCK).label == "Lock temporary card"
    request = (REPO / "processes" / "TempCardsProcRequest.bpmn").read_text()
    assert (read_declaration(request).menu, read_declaration(request).card_states) == ("quick-search", ())


@pytest.mark.parametrize(("properties", "reason"), [
    (prop("menu", "admin") + prop("label", "x"),
     "TempCardsProcLock: unknown menu 'admin'; use one of batch-orders, quick-search, card"),
    (prop("menu", "") + prop("cardStates", "assigned"), "TempCardsProcLock: property menu has no value"),
    (prop("menu", "card"), "TempCardsProcLock: a process on the card menu declares the card states it starts "
                           "from (cardStates, such as assigned,unassigned)"),
    (prop("menu", "quick-search") + prop("cardStates", "assigned"),
     "TempCardsProcLock: cardStates only applies to a process on the card menu (menu=card)"),
    (prop("menu", "card") + prop("cardStates", "assigned, Unassigned"),
     "TempCardsProcLock: cardStates: 'Unassigned' is not a card state; give lower-case state words separated "
     "by commas, such as assigned,unassigned"),
    (prop("menu", "card") + prop("cardStates", "assigned;drop table cards"),
     "TempCardsProcLock: cardStates: 'assigned;drop table cards' is not a card state; give lower-case state "
     "words separated by commas, such as assigned,unassigned"),
    (prop("menu", "card") + prop("cardStates", "assigned,,unassigned"),
     "TempCardsProcLock: cardStates: '' is not a card state; give lower-case state words separated by "
     "commas, such as assigned,unassigned"),
    (prop("menu", "card") + prop("cardStates", "assigned,assigned"),
     "TempCardsProcLock: cardStates names a state twice"),
    (prop("menu", "card") + prop("cardStates", "assigned") + prop("menu", "card"),
     "TempCardsProcLock: property menu is declared twice"),
    (prop("label", "Lock"), "TempCardsProcLock: label without a menu; add the property menu (batch-orders, "
                            "quick-search, card)"),
    (prop("menu", "card") + prop("cardStates", "assigned") + prop("Menu", "card"),
     "TempCardsProcLock: unknown process property 'Menu'; a process declares menu, label, cardStates"),
    (prop("menu", "quick-search") + prop("label", "L" * 81),
     "TempCardsProcLock: label must be 1 to 80 printable characters"),
    (prop("menu", "quick-search") + prop("label", "Lock&#10;card"),
     "TempCardsProcLock: label must be 1 to 80 printable characters"),
])
def test_a_bad_declaration_is_refused_with_its_line(properties, reason):
    found = reasons(declaring(properties))
    assert reason in [text for _line, text in found], found
    assert all(line is not None and line > 2 for line, _text in found)


def test_a_process_without_a_declaration_appears_in_no_menu():
    assert read_declaration(LOCK.replace(DECLARED, "")) is None
    assert validate(declaring("")).process_id == "TempCardsProcLock"


def test_the_declaration_is_part_of_the_version():
    shipped = validate(LOCK.encode()).content_hash
    relabelled = validate(declaring(prop("menu", "card") + prop("label", "Lock card")
                                    + prop("cardStates", "assigned,unassigned"))).content_hash
    restated = validate(declaring(prop("menu", "card") + prop("label", "Lock temporary card")
                                  + prop("cardStates", "assigned"))).content_hash
    assert len({shipped, relabelled, restated}) == 3
    assert validate(LOCK.encode()).content_hash == shipped
