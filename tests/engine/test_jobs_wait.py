"""A post that waits for the in-process engine reads the database when an advance finishes, not
every few milliseconds: while cards are produced, polling took the interpreter from the station."""

from __future__ import annotations

import threading
import time

from engine.jobs import InProcessJobs
from engine.runner import Runner


class Instance:
    """An instance the test moves on by hand: ``done`` is what the database would say."""

    def __init__(self):
        self.done = False
        self.looks = 0
        self.go = threading.Event()

    def advance(self, _instance_id: str) -> None:
        self.go.wait(10)
        self.done = True

    def idle(self, _instance_id: str) -> bool:
        self.looks += 1
        return self.done


def waiting(jobs: InProcessJobs, timeout: float = 10) -> tuple[threading.Thread, list]:
    answer: list = []
    thread = threading.Thread(target=lambda: answer.append(jobs.wait("i-1", timeout)))
    thread.start()
    return thread, answer


def test_a_wait_ends_when_the_runner_has_advanced_the_instance_and_reads_little_meanwhile():
    instance = Instance()
    jobs = InProcessJobs(Runner(instance.advance), {}, idle=instance.idle)
    try:
        jobs.advance("i-1")
        thread, answer = waiting(jobs)
        time.sleep(1.0)
        assert thread.is_alive() and instance.looks == 0  # the runner is at it: nothing to read
        instance.go.set()
        thread.join(5)
        assert answer == [True] and instance.looks == 1
    finally:
        jobs.close()


def test_an_instance_waiting_for_a_message_is_read_a_few_times_a_second_then_at_its_advance():
    instance = Instance()
    instance.go.set()
    jobs = InProcessJobs(Runner(instance.advance), {}, idle=instance.idle)
    try:
        thread, answer = waiting(jobs)  # the instance waits for its cards: not idle, runner idle
        time.sleep(1.0)
        assert thread.is_alive()
        assert 1 <= instance.looks <= 1 / InProcessJobs.LOOK_AGAIN_SECONDS + 2  # not 50 times (every 20 ms)
        jobs.advance("i-1")  # the last card's outcome posts the message and advances the instance
        thread.join(5)
        assert answer == [True] and instance.done
    finally:
        jobs.close()


def test_a_wait_gives_up_at_its_timeout():
    instance = Instance()
    jobs = InProcessJobs(Runner(instance.advance), {}, idle=instance.idle)
    try:
        began = time.monotonic()
        assert jobs.wait("i-1", timeout=0.3) is False
        assert time.monotonic() - began < 5
    finally:
        jobs.close()
