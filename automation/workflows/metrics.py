"""The connector checks as Prometheus metrics (docs/adr/0017), read from the database at scrape time:
the checks run on Celery workers, /metrics is served by the web processes, and the table is what
they share (a gauge set in a worker would never reach the scrape)."""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)
_registered = False
LABELS = ["connector", "target"]


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    return (
        GaugeMetricFamily("office_connector_check_ok", "1 when the newest synthetic check passed, else 0",
                          labels=LABELS),
        GaugeMetricFamily("office_connector_check_latency_seconds", "Duration of the newest synthetic check",
                          labels=LABELS),
        GaugeMetricFamily("office_connector_check_timestamp_seconds",
                          "When the newest synthetic check ran (Unix time); alert when it grows old", labels=LABELS),
    )


class ConnectorCheckCollector:
    def describe(self):
        return _families()  # names only: registering must not query the database

    def collect(self):
        from .selectors import connector_checks_latest

        ok, latency, checked = _families()
        try:
            rows = connector_checks_latest()
        except Exception:  # the scrape still answers with everything else
            logger.warning("connector checks could not be read for /metrics", exc_info=True)
            rows = []
        for row in rows:
            labels = [row.connector, row.target]
            ok.add_metric(labels, 1.0 if row.ok else 0.0)
            latency.add_metric(labels, row.latency_ms / 1000)
            checked.add_metric(labels, row.checked_at.timestamp())
        return [ok, latency, checked]


def collector_register() -> None:
    """Once per process (AppConfig.ready may run again in tests)."""
    global _registered
    if not _registered:
        REGISTRY.register(ConnectorCheckCollector())
        _registered = True
