"""The card picker keeps the operator's selection across pages and searches (on both databases):
the page buttons and Search post the page's ticks first, "Select this page" and "Clear selection"
change it without leaving the step, the page says how many are selected and lists them, and
Issue reserves exactly the selection. Hostile posts change nothing and say why."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from engine.db import unit_of_work
from tasks.demo import add_requested_cards
from tasks.store import Card, Reservation, Selection
from tests.web.conftest import csrf_token
from tests.web.console_steps import issue, title

TASK_FORM = re.compile(r'<form method="post" action="([^"]+/tasks/[^"]+)" class="task-form">')


@pytest.fixture
def searching(login, services):
    """An operator at Search cards among 62 requested cards (two pages of 50 and 12)."""
    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, 62, "Test Organisation")
    op = login()
    return op, op.start()


def boxes(page: str) -> dict[int, bool]:
    """The page's card check boxes: card id -> ticked."""
    found = re.findall(r'<input type="checkbox" name="card" value="([0-9]+)"[^>]*?( checked)?>', page)
    return {int(card_id): bool(ticked) for card_id, ticked in found}


def shown_ids(page: str) -> list[int]:
    """The cards the page posts as shown (those it lists that can be ticked)."""
    found = re.findall(r'<input type="hidden" name="shown" value="([0-9]+)">', page)
    return [int(card_id) for card_id in found]


def selected_line(page: str) -> str:
    """The "N selected" line, as read."""
    match = re.search(r'<div class="picker-selection".*?<p class="count" role="status">(.*?)</p>', page, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def page_button(page: str, rel: str) -> str:
    """Where the page button ``rel`` (first, prev, next, last) posts."""
    return html.unescape(re.search(rf'data-page="{rel}"\s+formaction="([^"]+)"', page).group(1))


def press(op, page: str, pairs: list, url: str | None = None):
    """Post the step's form drawn on ``page`` with ``pairs``, to ``url`` (a button's formaction)."""
    target = url or html.unescape(TASK_FORM.search(page).group(1))
    return op.client.post(target, data=MultiDict([*pairs, ("csrf_token", csrf_token(page))]))


def follow(op, response) -> str:
    """The page a 303 after an in-step button leads to."""
    assert response.status_code == 303, response.get_data(as_text=True)
    return op.get(response.headers["Location"]).get_data(as_text=True)


def ticks(card_ids, shown) -> list:
    """A post's card ticks and the cards its page showed."""
    return [("card", str(card_id)) for card_id in card_ids] + [("shown", str(card_id)) for card_id in shown]


def staged(services) -> list[int]:
    """The selected card ids of every order."""
    with unit_of_work(services.sessions) as session:
        return sorted(session.scalars(select(Selection.card_id)))


def test_ticks_are_kept_across_pages_and_unticks_remove(searching, services):
    op, instance_id = searching
    first = op.order_page(instance_id)
    on_first = list(boxes(first))
    assert len(on_first) == 50 and shown_ids(first) == on_first
    assert selected_line(first).startswith("0 selected")
    second = follow(op, press(op, first, [("action", "keep"), *ticks(on_first[:2], on_first)],
                              page_button(first, "next")))
    assert len(boxes(second)) == 12 and not any(boxes(second).values())
    assert selected_line(second) == "2 selected" and staged(services) == sorted(on_first[:2])
    on_second = list(boxes(second))
    back = follow(op, press(op, second, [("action", "keep"), *ticks(on_second[-1:], on_second)],
                            page_button(second, "prev")))
    assert [card_id for card_id, ticked in boxes(back).items() if ticked] == on_first[:2]
    assert selected_line(back) == "3 selected"
    # Unticking a card the page showed takes it out; the other page's tick stays.
    again = follow(op, press(op, back, [("action", "keep"), *ticks(on_first[1:2], on_first)],
                             page_button(back, "next")))
    assert selected_line(again) == "2 selected" and staged(services) == sorted([on_first[1], on_second[-1]])
    assert boxes(again)[on_second[-1]] is True


def test_select_this_page_lists_the_selection_and_clear_empties_it(login, searching, services):
    other = login("op2")
    issue(other, other.start(), [10])
    op, instance_id = searching
    first = op.order_page(instance_id, number="TC-00001")
    assert list(boxes(first)) == list(range(10, 20)) and shown_ids(first) == list(range(11, 20))
    assert "(taken by order 2)" in first
    page = follow(op, press(op, first, [("action", "select_page"), *ticks([], shown_ids(first))]))
    assert selected_line(page) == "9 selected" and staged(services) == list(range(11, 20))
    assert boxes(page) == {10: False, **{card_id: True for card_id in range(11, 20)}}
    listed = re.search(r'<details class="selected-cards">(.*?)</details>', page, re.S).group(1)
    assert "Show the selected cards" in listed and "<li>TC-000011</li>" in listed
    assert "<li>TC-000010</li>" not in listed
    cleared = follow(op, press(op, page, [("action", "clear"), *ticks([3], shown_ids(page))]))
    assert selected_line(cleared).startswith("0 selected") and staged(services) == []
    assert not any(boxes(cleared).values()) and "Show the selected cards" not in cleared


def test_search_keeps_the_ticks_and_shows_the_new_search(searching, services):
    op, instance_id = searching
    first = op.order_page(instance_id)
    response = press(op, first, [("action", "search"), ("number", " tc-00006 "), ("from", ""),
                                 *ticks([1, 2], shown_ids(first))])
    assert response.status_code == 303
    assert parse_qs(urlsplit(response.headers["Location"]).query) == {"number": ["tc-00006"]}
    found = follow(op, response)
    assert list(boxes(found)) == [60, 61, 62] and selected_line(found) == "2 selected"
    assert 'value="TC-00006"' in found and staged(services) == [1, 2]


def test_issue_reserves_exactly_the_selection(searching, services):
    op, instance_id = searching
    first = op.order_page(instance_id)
    on_first = list(boxes(first))
    second = follow(op, press(op, first, [("action", "keep"), *ticks(on_first[5:8], on_first)],
                              page_button(first, "next")))
    on_second = list(boxes(second))
    response = press(op, second, [("action", "issue"), *ticks(on_second[:1], on_second)])
    assert response.status_code == 303, response.get_data(as_text=True)
    selected = op.order_page(instance_id)
    assert title(selected) == "Selected cards" and "<strong>4</strong> cards reserved" in selected
    with unit_of_work(services.sessions) as session:
        reserved = sorted(session.scalars(select(Reservation.card_id)))
    assert reserved == sorted(on_first[5:8] + on_second[:1]) and staged(services) == []


def test_issue_with_nothing_ticked_here_but_a_selection_elsewhere(searching, services):
    op, instance_id = searching
    first = op.order_page(instance_id)
    second = follow(op, press(op, first, [("action", "keep"), *ticks([1], shown_ids(first))],
                              page_button(first, "next")))
    assert press(op, second, [("action", "issue"), *ticks([], shown_ids(second))]).status_code == 303
    assert title(op.order_page(instance_id)) == "Selected cards"


def test_unticking_the_whole_selection_leaves_nothing_to_issue(searching, services):
    op, instance_id = searching
    first = op.order_page(instance_id)
    page = follow(op, press(op, first, [("action", "keep"), *ticks([1], shown_ids(first))]))
    response = press(op, page, [("action", "issue"), *ticks([], shown_ids(page))])
    assert response.status_code == 400 and "Select at least one card" in response.text
    assert staged(services) == [1]


def snapshot(services, instance_id: str) -> tuple:
    """What a post could change: the ready step, staged and reserved cards, every card."""
    task = services.runtime.ready_task(instance_id)
    with unit_of_work(services.sessions) as session:
        return (task.task_id if task else None,
                sorted(session.execute(select(Selection.order_id, Selection.card_id)).all()),
                session.scalar(select(func.count()).select_from(Reservation)),
                sorted(session.execute(select(Card.number, Card.state)).all()))


@pytest.mark.parametrize("action", ["keep", "select_page", "issue"])
@pytest.mark.parametrize(("pairs", "message"), [
    ([("card", "1"), ("card", "10")], "Card TC-000010 is already taken by order 2; choose other cards."),
    ([("card", "1 OR 1=1")], "holds a value that is not a card"),
    ([("shown", "-3")], "holds a value that is not a card"),
    ([("card", "\u0661")], "holds a value that is not a card"),
    ([("card", "99999999999999999999")], "holds a value that is not a card"),
    ([("card", "999")], "Unknown card id(s): 999. Search again."),
    ([("shown", str(n)) for n in range(501)], "more cards than a page shows"),
    ([("card", "1")] * 501, "more cards than a page shows"),
])
def test_hostile_posts_are_refused_and_change_nothing(login, searching, services, action, pairs, message):
    other = login("op2")
    issue(other, other.start(), [10])
    op, instance_id = searching
    page = follow(op, press(op, op.order_page(instance_id), [("action", "keep"), *ticks([2], [])]))
    before = snapshot(services, instance_id)
    response = press(op, page, [("action", action), ("number", "TC"), *pairs])
    assert response.status_code == 400 and message in html.unescape(response.text)
    assert "Nothing was changed." in response.text and "<h1>Search cards</h1>" in response.text
    assert snapshot(services, instance_id) == before


def test_a_search_no_one_types_is_refused(searching, services):
    op, instance_id = searching
    page = op.order_page(instance_id)
    before = snapshot(services, instance_id)
    response = press(op, page, [("action", "search"), ("number", "1" * 5000), *ticks([1], [])])
    assert response.status_code == 400 and "A search field holds more than 200 characters" in response.text
    assert snapshot(services, instance_id) == before


def test_an_in_step_post_to_a_stale_step_changes_nothing(searching, services):
    op, instance_id = searching
    page = op.order_page(instance_id)
    before = snapshot(services, instance_id)
    stale = re.sub(r"/tasks/[^?\"]+", "/tasks/not-the-task", html.unescape(TASK_FORM.search(page).group(1)))
    for action in ("keep", "select_page", "clear", "search"):
        response = press(op, page, [("action", action), *ticks([1], [1])], stale)
        assert response.status_code == 409 and "The page was out of date" in response.text
    assert snapshot(services, instance_id) == before


def test_an_in_step_post_without_its_token_changes_nothing(searching, services):
    op, instance_id = searching
    page = op.order_page(instance_id)
    before = snapshot(services, instance_id)
    url = html.unescape(TASK_FORM.search(page).group(1))
    response = op.client.post(url, data=MultiDict([("action", "select_page"), *ticks([], [1, 2])]))
    assert response.status_code == 400 and snapshot(services, instance_id) == before


def test_the_step_is_shown_again_on_this_site_whatever_the_query_says(searching):
    op, instance_id = searching
    page = op.order_page(instance_id)
    url = html.unescape(TASK_FORM.search(page).group(1))
    hostile = f"{url}?_external=1&_scheme=javascript&_anchor=x&number=TC-0000&instance_id=other"
    response = press(op, page, [("action", "keep"), *ticks([1], [])], hostile)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(f"/orders/{instance_id}?") and "javascript" not in location
    assert parse_qs(urlsplit(location).query) == {"number": ["TC-0000"]} and "#" not in location
