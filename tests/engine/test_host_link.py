"""The pipe between a page process and its host: what the host accepts, and the connection board."""

from __future__ import annotations

import json
import threading
from multiprocessing import Pipe

import pytest

from engine.host_link import ForwardedJobs, HostDesk, HostLink
from engine.web_processes import NOT_SERVING, ConnectionBoard


class RecordingJobs:
    """The host's job host, reduced to what it was asked."""

    def __init__(self):
        self.calls: list[tuple] = []

    def advance(self, instance_id):
        self.calls.append(("advance", instance_id))

    def external(self, queue, kind, args):
        self.calls.append(("external", queue, kind, args))

    def depth(self, queue):
        self.calls.append(("depth", queue))
        return 3


@pytest.fixture
def linked():
    """A page process's ForwardedJobs wired to a HostDesk over a real pipe."""
    jobs = RecordingJobs()
    desk = HostDesk(jobs, lambda: "# HELP cardflow_orders_open x\n# TYPE cardflow_orders_open gauge\n"
                                  "cardflow_orders_open 4.0\n")
    host_end, page_end = Pipe(duplex=True)
    thread = threading.Thread(target=desk.serve, args=(host_end,), daemon=True)
    thread.start()
    forwarded = ForwardedJobs(HostLink(page_end))
    yield forwarded, jobs, page_end
    forwarded.close()
    thread.join(5)
    host_end.close()


def test_work_and_questions_reach_the_host(linked):
    forwarded, jobs, _ = linked
    forwarded.advance("instance-1")
    forwarded.external("cardflow.pool.default", "produce_card", {"order_id": 1, "card_id": 2})
    assert forwarded.depth("cardflow.pool.default") == 3  # answered after the two jobs, in order
    card_job = ("external", "cardflow.pool.default", "produce_card", {"order_id": 1, "card_id": 2})
    assert jobs.calls == [("advance", "instance-1"), card_job, ("depth", "cardflow.pool.default")]


@pytest.mark.parametrize("message", [
    [], "advance", {"op": "advance"}, {"op": "advance", "instance": 7}, {"op": "advance", "instance": ""},
    {"op": "advance", "instance": "x" * 257}, {"op": "external", "queue": "q", "kind": "k", "args": []},
    {"op": "external", "queue": None, "kind": "k", "args": {}}, {"op": "shell", "command": "rm -rf /"},
    {"op": "__class__"},
])
def test_the_host_refuses_a_malformed_message_and_does_nothing(message):
    jobs = RecordingJobs()
    with pytest.raises(ValueError):
        HostDesk(jobs, str).handle(message)
    assert jobs.calls == []


def test_a_bad_message_does_not_end_the_link(linked):
    forwarded, jobs, page_end = linked
    page_end.send_bytes(b"not json")
    page_end.send_bytes(json.dumps({"op": "nothing"}).encode())
    assert forwarded.depth("q") == 3
    assert jobs.calls == [("depth", "q")]


def test_a_late_answer_is_not_taken_for_the_next_question():
    host_end, page_end = Pipe(duplex=True)
    link = HostLink(page_end)
    host_end.send_bytes(json.dumps({"ask": 0, "depth": 99}).encode())  # to a question given up on

    def answer():
        question = json.loads(host_end.recv_bytes())
        host_end.send_bytes(json.dumps({"ask": question["ask"], "depth": 1}).encode())

    thread = threading.Thread(target=answer)
    thread.start()
    assert link.ask({"op": "depth", "queue": "q"})["depth"] == 1
    thread.join(5)
    host_end.close()
    page_end.close()


def test_the_page_process_reads_the_hosts_metrics(linked):
    from prometheus_client import CollectorRegistry, generate_latest

    from engine.host_link import HostMetrics

    forwarded, _jobs, _ = linked
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HostMetrics(forwarded.host))
    assert "cardflow_orders_open 4.0" in generate_latest(registry).decode()


def test_a_dead_host_leaves_the_depth_unknown():
    host_end, page_end = Pipe(duplex=True)
    host_end.close()
    forwarded = ForwardedJobs(HostLink(page_end))
    assert forwarded.depth("q") is None
    forwarded.advance("instance-1")  # logged, not raised: the host's sweeper sends it again
    forwarded.close()


def test_a_process_accepts_only_while_it_is_among_the_least_busy():
    board = ConnectionBoard.create(3)
    other = ConnectionBoard(board.fd, 3)  # another process maps the same file
    assert board.may_accept(0)  # nobody serves yet: all equal
    board.post(0, 4)
    other.post(1, 2)
    other.post(2, NOT_SERVING)  # not started yet
    assert other.may_accept(1) and not board.may_accept(0)
    other.post(1, 4)
    assert board.may_accept(0) and other.may_accept(1)
