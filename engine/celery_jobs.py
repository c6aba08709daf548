"""The broker host of the ``Jobs`` contract: engine steps and station jobs as Celery tasks.

``CeleryJobs`` is what a process with ``CARDFLOW_BROKER_URL`` hands work to (the web server and
every station worker alike); ``worker_app`` is the Celery app a ``cardflow worker`` runs, with
the task bodies bound to its ``Services``. Messages carry ids only (JSON, never pickle): the
database holds the truth, so a job delivered twice finds its card claimed or done, and one lost
(a Redis restart: Redis keeps nothing on disk here) is sent again by the sweeper's
``redispatch_lost_jobs`` and ``resume_stalled``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable

from celery import Celery
from kombu import Exchange, Queue

from engine.jobs import RemoteJobs

log = logging.getLogger(__name__)

ADVANCE = "cardflow.advance"
EXTERNAL = "cardflow.external"
ENGINE_QUEUE = "cardflow.engine"
# Several installations (or test runs) may share one broker: each puts this before its queue
# names, so none consumes another's jobs. Empty by default.
QUEUE_PREFIX_ENV = "CARDFLOW_QUEUE_PREFIX"
QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
PREFIX = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?")
# An instance another host holds for a moment (a request completing a task, another worker's
# step): tried again this many times, backing off; past that, the holder advances it itself and
# the sweeper resumes it if the holder died.
ADVANCE_RETRIES = 5
ADVANCE_BACKOFF = 0.2
DEPTH_TIMEOUT = 2.0


def queue_prefix(env: dict[str, str] | None = None) -> str:
    """``CARDFLOW_QUEUE_PREFIX``, checked: letters, digits, '.', '_' or '-'."""
    prefix = (os.environ if env is None else env).get(QUEUE_PREFIX_ENV, "").strip()
    if not PREFIX.fullmatch(prefix):
        raise ValueError(f"{QUEUE_PREFIX_ENV} must be 1-64 letters, digits, '.', '_' or '-'.")
    return prefix


def broker_queue(name: str, prefix: str = "") -> Queue:
    """The durable queue ``prefix + name`` on a durable direct exchange of the same name.

    Names become Redis keys and AMQP queue names: only a safe alphabet is let through (station
    and pool names are already checked by ``load_stations``).
    """
    full = f"{prefix}.{name}" if prefix else name
    if not QUEUE_NAME.fullmatch(full):
        raise ValueError(f"bad queue name {full!r}: 1-200 letters, digits, '.', '_' or '-'")
    # Durable queue and exchange: a RabbitMQ restart keeps both, and the persistent messages
    # in them (task_default_delivery_mode below).
    return Queue(full, Exchange(full, type="direct", durable=True), routing_key=full, durable=True)


def make_app(broker_url: str, name: str = "cardflow") -> Celery:
    """A Celery app for ``broker_url`` (redis://... or amqp://...) with cardflow's settings."""
    app = Celery(name, broker=broker_url, set_as_current=False)
    app.conf.update(
        # Acknowledge a job when it has finished, not when it starts: a worker killed before it
        # claims the card leaves the job to the broker, which hands it to another worker.
        task_acks_late=True,
        # ...but a job whose worker died mid-card is never silently run again by Celery: the
        # card's claim lapses and a sweeper records the attempt as interrupted (the printer may
        # have printed it). A redelivery anyway (RabbitMQ requeues on a dropped connection) only
        # finds the card claimed and does nothing: claims are fenced in the database.
        task_reject_on_worker_lost=False,
        # One job at a time per thread: a worker never hoards cards another station could
        # produce now, so an order's cards spread over every station of the pool.
        worker_prefetch_multiplier=1,
        # Redis hands an unacknowledged job to another worker after this long: longer than any
        # card (a real printer takes 15 to 24 s), so a slow card is not delivered twice.
        broker_transport_options={"visibility_timeout": 3600},
        # Persistent messages in durable queues: a RabbitMQ restart loses no job. Redis on this
        # machine keeps nothing on disk; what a restart loses, the sweepers send again.
        task_default_delivery_mode="persistent",
        task_create_missing_queues=True,
        # JSON only: a pickle from the broker would run code in every worker.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # A worker started before the broker waits for it instead of exiting.
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        # Outcomes live in the database; nobody reads Celery results.
        task_ignore_result=True,
        result_backend=None,
        # A lost broker connection does not stop a card half made; its late ack is lost, the
        # redelivered job finds the card claimed or done.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # cardflow's own logging (text or JSON on stderr, secrets masked) stays in charge.
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        # Stations do not talk to each other through the broker: the database coordinates them.
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    return app


class CeleryJobs(RemoteJobs):
    """``Jobs`` on a broker: engine steps on ``cardflow.engine``, station jobs on their pool's
    queue, consumed by ``cardflow worker`` processes on any machine."""

    def __init__(self, broker_url: str, idle: Callable[[str], bool] | None = None,
                 prefix: str | None = None):
        self.prefix = queue_prefix() if prefix is None else prefix
        if not PREFIX.fullmatch(self.prefix):
            raise ValueError("a queue prefix is 1-64 letters, digits, '.', '_' or '-'")
        super().__init__(idle)
        self.app = make_app(broker_url)
        self._closed = False

    def queue(self, name: str) -> Queue:
        """The broker queue of the logical queue ``name`` (with this installation's prefix)."""
        return broker_queue(name, self.prefix)

    def _send(self, task: str, args: list, queue: str) -> None:
        if self._closed:
            return
        try:
            self.app.send_task(task, args=args, queue=self.queue(queue))
        except ValueError:
            raise
        except Exception as error:
            # The database already holds the work: a sweeper sends it again once the broker is
            # back (stalled instances, pending cards of an empty queue). The URL is not logged:
            # it may hold a password.
            log.warning("the broker refused a %s job for queue %s (%s); the sweepers send it again",
                        task, queue, type(error).__name__)

    def advance(self, instance_id: str) -> None:
        """Run the instance's due engine steps on whichever worker takes the job."""
        self._send(ADVANCE, [instance_id], ENGINE_QUEUE)

    submit = advance  # the runner's name for it

    def external(self, queue: str, kind: str, args: dict) -> None:
        """Queue the external job ``kind`` on ``queue`` (a station pool's, see ``pool_queue``)."""
        self._send(EXTERNAL, [kind, args], queue)

    def depth(self, queue: str) -> int | None:
        """Ready messages in ``queue``: 0 when it does not exist yet, None when the broker does
        not answer."""
        name = self.queue(queue).name
        try:
            with self.app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=DEPTH_TIMEOUT)
                channel = connection.channel()
                try:
                    return channel.queue_declare(queue=name, passive=True).message_count
                except connection.channel_errors:
                    return 0  # never declared (AMQP), or empty (Redis drops empty lists)
                finally:
                    try:
                        channel.close()
                    except Exception:  # AMQP closes the channel itself on a passive miss
                        pass
        except Exception as error:
            log.warning("depth of queue %s unknown (%s)", queue, type(error).__name__)
            return None

    def close(self) -> None:
        """Stop sending and close the broker connections (jobs already sent stay queued)."""
        self._closed = True
        self.app.close()

    def shutdown(self) -> None:
        """Alias of ``close`` (the runner's old name)."""
        self.close()


def worker_app(services, handlers: dict) -> Celery:
    """The Celery app of a station worker: the task bodies bound to ``services`` (built with
    ``in_process=False``, so the next jobs they cause go to the broker too) and the external
    job ``handlers`` by kind (the composition root's ``external_jobs``)."""
    from engine.jobs import JobDeferred
    from engine.leases import InstanceBusy

    app = make_app(services.settings.broker_url)

    @app.task(name=ADVANCE, bind=True, max_retries=ADVANCE_RETRIES)
    def advance(self, instance_id: str) -> None:
        try:
            services.runtime.advance(instance_id)
        except InstanceBusy:
            if self.request.retries >= ADVANCE_RETRIES:
                log.info("instance %s stays with the host that holds it", instance_id,
                         extra={"instance_id": instance_id})
                return
            raise self.retry(countdown=ADVANCE_BACKOFF * 2 ** self.request.retries) from None
        except Exception:  # the runtime records instance errors; this is the last line
            log.exception("advancing instance %s failed", instance_id, extra={"instance_id": instance_id})

    @app.task(name=EXTERNAL, bind=True)
    def external(self, kind: str, args: dict) -> None:
        handler = handlers.get(kind)
        if handler is None:
            log.error("unknown job kind %r dropped", kind)
            return
        try:
            handler(args)
        except JobDeferred as deferred:
            # The station is paused: the job comes back to the same queue later, for as long as
            # the pause lasts (nothing was claimed).
            raise self.retry(countdown=deferred.delay, max_retries=None) from None
        except Exception:  # the job records its own failures; this is the last line
            log.exception("job %s %s failed", kind, args, extra=_ids(args))

    return app


def _ids(args: dict) -> dict:
    return {key: args[key] for key in ("order_id", "card_id") if key in args}
