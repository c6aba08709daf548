"""The auditor's console: the trail with its filters, keyset pages and exports; orders; one order's
record with the path its process took."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright import sync_api
from sqlalchemy import func, select

from engine.db import unit_of_work
from engine.instance_path import instance_path
from engine.store import AuditEvent, AuditHead, Definition, OptionVersion
from tasks.store import Order, ProductionAttempt
from tests.web.conftest import PASSWORD
from tests.web.console_steps import title

TRAIL = "/audit/"
# Where an order waiting at "Review production" has been, in the shipped process.
REACHED_REVIEW = ["StartEvent_Start", "Activity_OpenOrder", "Gateway_ToSearch", "Activity_SearchCards",
                  "Gateway_IssueOrCancel", "Activity_Reserve", "Gateway_Reserved", "Activity_SelectedCards",
                  "Gateway_NextOrCancel", "Activity_Produce", "Gateway_ToReview", "Event_CardsProduced"]
# Recorded before any page script runs, so nothing the page does can hide a violation.
RECORD_CSP = ("window.cspViolations = [];"
              "document.addEventListener('securitypolicyviolation',"
              " (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));")
EXPORT_COLUMNS = ["id", "at", "actor", "action", "instance_id", "order_id", "card", "detail", "prev_hash",
                  "hash"]
ROW_NUMBER = re.compile(r'<td data-label="(?:Entry|Order)"[^>]*>(?:<a [^>]+>Order )?(\d+)')


def shown_ids(page: str) -> list[int]:
    """The entry (or order) numbers of a trail or orders page, top to bottom."""
    return [int(number) for number in ROW_NUMBER.findall(page)]


def link(page: str, rel: str) -> str | None:
    """The pager's Older (``next``) or Newer (``prev``) link."""
    match = re.search(rf'<a rel="{rel}" href="([^"]+)"', page)
    return html.unescape(match.group(1)) if match else None


def newest_ids(services, *conditions, limit: int = 50) -> list[int]:
    """The ids of the newest entries matching ``conditions``, as the trail should list them."""
    with unit_of_work(services.sessions) as session:
        return list(session.scalars(select(AuditEvent.id).where(*conditions)
                                    .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)))


def last_id(services) -> int:
    """The id of the trail's last entry (ids run 1, 2, ... without gaps: also their number)."""
    with unit_of_work(services.sessions) as session:
        return session.scalar(select(func.max(AuditEvent.id)))


def add_entries(services, count: int, start: datetime, action: str = "test event") -> list[int]:
    """``count`` entries a minute apart from ``start``; their ids."""
    with unit_of_work(services.sessions) as session:
        entries = [AuditEvent(actor="tester", action=action, at=start + timedelta(minutes=n), detail={"n": n})
                   for n in range(count)]
        session.add_all(entries)
    return [entry.id for entry in entries]


def diagram_data(page: str) -> dict:
    """What the order page gives its diagram script."""
    return json.loads(re.search(r'<script type="application/json" id="diagram-data">(.*?)</script>',
                                page, re.S).group(1))


def error_of(page: str, field: str) -> str | None:
    """The message shown under filter ``field``."""
    match = re.search(rf'<p class="error" id="f-{field}-error">([^<]+)</p>', page)
    return html.unescape(match.group(1)) if match else None


def test_an_auditor_starts_on_the_trail(login, reviewing):
    auditor = login("aud", "auditor")
    assert auditor.get("/").headers["Location"] == TRAIL
    page = auditor.get(TRAIL).text
    assert title(page) == "Audit trail" and ">AUDIT</a>" in page and "BATCH ORDERS" not in page
    last = last_id(auditor.services)
    assert f"The trail holds {last} entries" in page and "No head has been signed yet." in page


def test_the_trail_names_the_last_signed_head(login, services):
    add_entries(services, 5, datetime(2022, 3, 1, tzinfo=UTC))
    with unit_of_work(services.sessions) as session:
        head = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
        session.add(AuditHead(entry_id=head.id - 2, hash="ab" * 32, reason="instance 42 ended",
                              signed_at=datetime(2022, 3, 1, 0, 3, tzinfo=UTC), key_id="cd" * 32,
                              signature="c2ln"))
    page = login("aud", "auditor").get(TRAIL).text
    assert (f"Last signed head: entry {head.id - 2} on 2022-03-01 00:03:00 UTC (instance 42 ended)"
            in " ".join(page.split()))
    assert f'<code title="{"ab" * 32}">abababababab</code>' in page
    # Ids run 1, 2, ... without gaps, so the numbers are counts.
    last = last_id(services)
    assert f"The trail holds {last} entries" in page and f"{last - head.id + 2} entries since." in page


def test_the_trail_lists_entries_newest_first_with_their_links(login, services, reviewing):
    auditor = login("aud", "auditor")
    page = auditor.get(TRAIL).text
    assert shown_ids(page) == newest_ids(services)
    assert '<a href="/cards/TC-000010">TC-000010</a>' in page and '<a href="/audit/orders/1">1</a>' in page
    with unit_of_work(services.sessions) as session:
        produced = session.scalar(select(AuditEvent).where(AuditEvent.action == "attempt produced")
                                  .order_by(AuditEvent.id).limit(1))
    assert f'<code class="hash" title="{produced.hash}">{produced.hash[:10]}</code>' in page
    assert f"attempt 1, serial {produced.detail['serial']}" in page
    assert "Search cards: issue" in page  # a task completed entry, summarised


@pytest.mark.parametrize(("args", "condition"), [
    ({"card": "TC-000010"}, AuditEvent.card == "TC-000010"),
    ({"order": "1"}, AuditEvent.order_id == 1),
    ({"user": "op"}, AuditEvent.actor == "op"),
    ({"action": "task completed"}, AuditEvent.action == "task completed"),
    ({"card": "TC-000011", "action": "attempt produced"},
     (AuditEvent.card == "TC-000011") & (AuditEvent.action == "attempt produced")),
])
def test_the_trail_filters_by_card_order_user_and_event(login, services, reviewing, args, condition):
    auditor = login("aud", "auditor")
    response = auditor.get(TRAIL, query_string=args)
    assert response.status_code == 200
    expected = newest_ids(services, condition)
    assert expected and shown_ids(response.text) == expected


def test_the_trail_filters_by_time_from_included_to_before_excluded(login, services):
    ids = add_entries(services, 30, datetime(2020, 1, 1, tzinfo=UTC))
    auditor = login("aud", "auditor")
    page = auditor.get(TRAIL, query_string={"since": "2020-01-01T00:10", "until": "2020-01-01T00:20"}).text
    assert shown_ids(page) == ids[10:20][::-1]
    # The form shows the range back as the date-time fields read it.
    assert 'value="2020-01-01T00:10"' in page and 'value="2020-01-01T00:20"' in page
    page = auditor.get(TRAIL, query_string={"until": "2020-01-01T00:05:00Z", "user": "tester"}).text
    assert shown_ids(page) == ids[:5][::-1]


def test_the_trail_pages_by_keyset_older_and_newer(login, services):
    ids = add_entries(services, 120, datetime(2021, 6, 1, tzinfo=UTC))
    auditor = login("aud", "auditor")
    first = auditor.get(TRAIL, query_string={"action": "test event"}).text
    assert shown_ids(first) == ids[::-1][:50] and link(first, "prev") is None
    assert link(first, "next") == f"/audit/?before={ids[70]}&action=test+event"
    second = auditor.get(link(first, "next")).text
    assert shown_ids(second) == ids[::-1][50:100]
    third = auditor.get(link(second, "next")).text
    assert shown_ids(third) == ids[::-1][100:] and link(third, "next") is None
    assert shown_ids(auditor.get(link(third, "prev")).text) == shown_ids(second)
    back = auditor.get(link(second, "prev")).text
    assert shown_ids(back) == shown_ids(first) and link(back, "prev") is None
    assert "page=" not in first + second + third


def test_the_trail_is_newest_first_by_time_then_id(login, services):
    later = add_entries(services, 3, datetime(2021, 6, 1, tzinfo=UTC))
    earlier = add_entries(services, 2, datetime(2020, 6, 1, tzinfo=UTC))  # written after, dated before
    page = login("aud", "auditor").get(TRAIL, query_string={"action": "test event"}).text
    assert shown_ids(page) == later[::-1] + earlier[::-1]


@pytest.mark.parametrize(("args", "field", "message"), [
    ({"order": "abc"}, "order", "An order number is digits only"),
    ({"order": "\u00b2"}, "order", "An order number is digits only"),
    ({"order": "-4"}, "order", "An order number is digits only"),
    ({"order": "99999999999999"}, "order", "An order number is digits only"),
    ({"since": "yesterday"}, "since", "'yesterday' is no time"),
    ({"until": "2026-13-01"}, "until", "'2026-13-01' is no time"),
    ({"since": "0001-01-01T00:00+01:00"}, "since", "is no time"),
    ({"since": "2026-05-02", "until": "2026-05-01"}, "until", "must be after its start"),
    ({"card": "C" * 41}, "card", "A card number"),
    ({"user": "op\x00"}, "user", "A user name"),
    ({"action": "x" * 101}, "action", "Pick an event type"),
])
def test_a_bad_filter_is_refused_next_to_its_field(login, services, args, field, message):
    auditor = login("aud", "auditor")
    for url in (TRAIL, "/audit/export.csv", "/audit/export.json"):
        response = auditor.get(url, query_string=args)
        assert response.status_code == 400, url
        page = response.text
        assert message in error_of(page, field), page
        assert f'aria-describedby="f-{field}-error"' in page
        assert "<table" not in page and "Nothing is shown until the filter is corrected" in page


def test_exports_stream_the_filtered_trail_as_csv_and_json(login, services, reviewing):
    auditor = login("aud", "auditor")
    expected = sorted(newest_ids(services, AuditEvent.card == "TC-000010"))  # exports run by id
    with auditor.get("/audit/export.csv", query_string={"card": "TC-000010"}) as response:
        assert response.status_code == 200 and response.is_streamed
        assert response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"] == 'attachment; filename="audit-trail.csv"'
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == EXPORT_COLUMNS
    assert [int(row[0]) for row in rows[1:]] == expected
    assert {row[6] for row in rows[1:]} == {"TC-000010"}
    assert json.loads(rows[1][7]) == {"attempt": 1}
    with auditor.get("/audit/export.json", query_string={"card": "TC-000010", "action": "attempt produced"}) \
            as response:
        assert response.status_code == 200 and response.is_streamed
        assert response.headers["Content-Disposition"] == 'attachment; filename="audit-trail.json"'
        entries = json.loads(response.get_data(as_text=True))
    assert [entry["id"] for entry in entries] == sorted(newest_ids(
        services, AuditEvent.card == "TC-000010", AuditEvent.action == "attempt produced"))
    assert entries[0]["detail"]["outcome"] == "produced" and len(entries[0]["hash"]) == 64
    page = auditor.get(TRAIL, query_string={"card": "TC-000010"}).text
    for kind in ("csv", "json"):
        assert f'href="/audit/export.{kind}?card=TC-000010"' in page


def test_orders_list_newest_first_with_versions_and_card_counts(login, services, reviewing):
    auditor = login("aud", "auditor")
    page = auditor.get("/audit/orders").text
    assert shown_ids(page) == [1]
    assert "Issue multiple temporary cards" in page and "TempCardsScriptOptions" in page
    assert '<span class="order-status status-open">open</span>' in page
    assert '<td data-label="Operator">op</td>' in page
    assert "2 <span class=\"help\">(2 produced)</span>" in page
    assert shown_ids(auditor.get("/audit/orders?status=open&operator=op").text) == [1]
    assert shown_ids(auditor.get("/audit/orders?status=completed").text) == []
    assert shown_ids(auditor.get("/audit/orders?operator=somebody").text) == []
    refused = auditor.get("/audit/orders?status=lost")
    assert refused.status_code == 400 and "Pick a status from the list" in refused.text


def test_orders_page_by_keyset(login, services):
    with unit_of_work(services.sessions) as session:
        orders = [Order(instance_id=str(uuid.uuid4()), process_id="TempCardsBoProcIssueMultiple",
                        process_version=1, options_name="TempCardsScriptOptions", options_version=1,
                        options={}, status="completed", created_by="op")
                  for _ in range(60)]
        session.add_all(orders)
    ids = sorted(order.id for order in orders)
    auditor = login("aud", "auditor")
    first = auditor.get("/audit/orders?status=completed").text
    assert shown_ids(first) == ids[::-1][:50]
    second = auditor.get(link(first, "next")).text
    assert shown_ids(second) == ids[::-1][50:] and link(second, "next") is None
    assert shown_ids(auditor.get(link(second, "prev")).text) == ids[::-1][:50]


def test_the_order_page_shows_the_path_to_review_production(login, services, reviewing):
    _, instance_id = reviewing
    auditor = login("aud", "auditor")
    page = auditor.get("/audit/orders/1").text
    data = diagram_data(page)
    assert data["current"] == ["Activity_Review"] and data["stopped"] is False
    assert data["completed"] == REACHED_REVIEW and data["cancelled"] == []
    assert 'id="TempCardsBoProcIssueMultiple"' in data["xml"]
    path = instance_path(services.sessions, instance_id)
    assert (path.completed, path.current, path.status) == (REACHED_REVIEW, ["Activity_Review"], "running")


def test_the_order_page_shows_versions_options_attempts_and_trail(login, services, reviewing):
    op, instance_id = reviewing
    misprint = [("action", "repeat"), ("misprint", "10"), ("reason_10", "smudged photo")]
    assert op.submit(instance_id, misprint).status_code == 303
    assert title(op.order_page(instance_id)) == "Review production"
    auditor = login("aud", "auditor")
    page = auditor.get("/audit/orders/1").text
    with unit_of_work(services.sessions) as session:
        process = session.scalar(select(Definition)
                                 .where(Definition.process_id == "TempCardsBoProcIssueMultiple"))
        options = session.scalar(select(OptionVersion).where(OptionVersion.name == "TempCardsScriptOptions"))
        serials = {(attempt.card_id, attempt.attempt): attempt.physical_serial
                   for attempt in session.scalars(select(ProductionAttempt))}
    assert f'title="{process.content_hash}">{process.content_hash[:12]}</code>' in page
    assert f'title="{options.content_hash}">{options.content_hash[:12]}</code>' in page
    assert "version 1" in page and "it equals the values of that version as deployed" in page
    assert '<th scope="row">pin_length</th><td>6</td>' in page
    assert '<th scope="row">certificates</th><td>PIV Authentication</td>' in page
    card = re.search(r'<tbody class="card-attempts" id="card-TC-000010">(.*?)</tbody>', page, re.S).group(1)
    assert card.count("<tr") == 2 and "smudged photo" in card
    assert serials[(10, 1)] in card and serials[(10, 2)] in card
    assert "Search cards: issue" in page and "Review production: repeat" in page
    assert 'href="/audit/?order=1"' in page
    data = diagram_data(page)
    assert data["current"] == ["Activity_Review"] and "Activity_Repeat" in data["completed"]


def test_the_path_of_a_completed_order_ends_at_its_end_event(login, services, reviewing):
    op, instance_id = reviewing
    assert op.submit(instance_id, {"action": "complete", "confirm_ok": "true"}).status_code == 303
    assert title(op.order_page(instance_id)) == "Order completed"
    path = instance_path(services.sessions, instance_id)
    assert path.current == [] and path.status == "completed"
    assert path.completed[-3:] == ["Gateway_ReviewDecision", "Activity_Complete", "EndEvent_Completed"]
    page = login("aud", "auditor").get("/audit/orders/1").text
    assert '<span class="order-status status-completed">completed</span>' in page


def test_an_unknown_order_is_not_found(login):
    response = login("aud", "auditor").get("/audit/orders/4242")
    assert response.status_code == 404 and "There is no order 4242." in response.text


@pytest.mark.browser
def test_the_order_diagram_marks_the_path_in_the_browser(live_url, chromium, make_user, reviewing):
    make_user("aud", "auditor", PASSWORD)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(RECORD_CSP)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_url}/login")
    page.get_by_label("User name").fill("aud")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    sync_api.expect(page.locator("h1")).to_have_text("Audit trail")
    errors.clear()  # the login page's missing favicon is no error of these pages
    page.get_by_role("link", name="Orders").click()
    page.get_by_role("link", name="Order 1").click()
    canvas = page.locator("#diagram-canvas")
    sync_api.expect(canvas).to_have_attribute("data-state", "ready")
    sync_api.expect(page.get_by_role("status")).to_have_text("Now at: Review production.")

    def marked(marker: str) -> list[str]:
        return sorted(canvas.locator(f".djs-element.{marker}").evaluate_all(
            "(nodes) => nodes.map((node) => node.dataset.elementId)"))

    assert marked("path-current") == ["Activity_Review"]
    assert marked("path-completed") == sorted(REACHED_REVIEW)
    assert marked("path-stopped") == marked("path-cancelled") == []
    # The marker's style wins over the one bpmn-js sets on the shape.
    stroke = canvas.locator(".djs-element[data-element-id='Activity_Review'] .djs-visual > rect").first
    assert stroke.evaluate("(node) => getComputedStyle(node).stroke") == "rgb(31, 95, 191)"
    assert page.evaluate("window.cspViolations") == [] and errors == []
    context.close()
