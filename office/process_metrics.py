"""Prometheus metrics of the processes that serve no HTTP of their own: Celery workers and beat, the
transcriber and the ingester. Each serves them on OFFICE_METRICS_PORT when set (its port is in
office/processes.py; `deploy/prometheus/prometheus.yml` scrapes them). The web serves `/metrics` itself.

Celery workers fork a pool, and a child's counters never reach the parent's memory: with
PROMETHEUS_MULTIPROC_DIR set, prometheus_client keeps every process's values in files there and the
parent's endpoint adds them up (its multiprocess mode).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess, start_http_server
from prometheus_client.core import GaugeMetricFamily

from office.processes import PROCESSES

logger = logging.getLogger(__name__)

CELERY_TASKS = Counter("office_celery_tasks_total", "Celery tasks finished, by outcome", ["task", "state"])
CELERY_TASK_SECONDS = Histogram(
    "office_celery_task_seconds", "Celery task run time", ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
_task_started: dict[str, float] = {}
# Celery's Redis transport keeps priorities 3, 6 and 9 in their own lists next to the queue's own.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def celery_queues() -> list[str]:
    return sorted({queue for process in PROCESSES for queue in process.queues})


class CeleryQueueCollector:
    """Tasks waiting per queue, read from the broker at scrape time (served by beat: one replica)."""

    def describe(self):
        return [GaugeMetricFamily("office_celery_queue_length", "Tasks waiting in each Celery queue", labels=["queue"])]

    def collect(self):
        import redis

        family = GaugeMetricFamily("office_celery_queue_length", "Tasks waiting in each Celery queue", labels=["queue"])
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
        try:
            for queue in celery_queues():
                family.add_metric([queue], sum(client.llen(queue + suffix) for suffix in _PRIORITY_SUFFIXES))
        except redis.RedisError as exc:
            logger.warning("queue lengths unavailable: %s", exc)
            return
        finally:
            client.close()
        yield family


def scrape_time_collectors() -> list:
    """The collectors that read shared state when scraped (queues, the SFU), named in
    OFFICE_SCRAPE_TIME_COLLECTORS so that apps above `office` can add theirs; served by beat alone."""
    from django.utils.module_loading import import_string

    return [import_string(path)() for path in settings.OFFICE_SCRAPE_TIME_COLLECTORS]


def clear_multiprocess_dir() -> None:
    """Drop a previous run's values (a restarted container keeps its volume); the worker's parent
    calls this before it forks any child, and keeps its own files."""
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    if directory:
        for stale in Path(directory).glob("*.db"):
            if not stale.name.endswith(f"_{os.getpid()}.db"):
                stale.unlink(missing_ok=True)


def serve_process_metrics(*, collectors=()) -> int | None:
    """Serve this process's metrics on OFFICE_METRICS_PORT (no-op when unset); returns the port."""
    port = settings.OFFICE_METRICS_PORT
    if not port:
        return None
    registry = REGISTRY
    if settings.PROMETHEUS_MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    for collector in collectors:
        registry.register(collector)
    start_http_server(port, addr=settings.OFFICE_METRICS_HOST, registry=registry)
    logger.info("metrics served", extra={"metrics_port": port})
    return port


def task_started(task_id: str) -> None:
    _task_started[task_id] = time.monotonic()


def task_finished(task_id: str, task_name: str, state: str) -> None:
    started = _task_started.pop(task_id, None)
    if started is not None:
        CELERY_TASK_SECONDS.labels(task_name).observe(time.monotonic() - started)
    CELERY_TASKS.labels(task_name, state or "UNKNOWN").inc()


def pool_child_exited(pid: int) -> None:
    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.mark_process_dead(pid)
