"""What the SFU carries, for Prometheus: read from Janus at scrape time by the one process that serves
scrape-time collectors (Celery beat, `OFFICE_SCRAPE_TIME_COLLECTORS`), so a figure is counted once
however many web nodes there are."""

from __future__ import annotations

import logging

from prometheus_client.core import GaugeMetricFamily

from .sfu import JanusSfu, SfuRefused, SfuUnavailable, sfu_configured

logger = logging.getLogger(__name__)

SOURCES = ("microphone", "camera", "screen")


def feed_source(display: str) -> str:
    """A page publishes its microphone as "<user>", its camera and screen as "<user>:camera|screen"."""
    _, _, source = display.partition(":")
    source = source or "microphone"
    return source if source in SOURCES else "other"


class SfuCollector:
    def describe(self):
        return list(self._families())

    @staticmethod
    def _families():
        return (
            GaugeMetricFamily("office_sfu_up", "1 when the SFU answered this scrape"),
            GaugeMetricFamily("office_sfu_rooms", "Office rooms whose media goes through the SFU now"),
            GaugeMetricFamily("office_sfu_publishers", "Feeds published in the SFU, by source",
                              labels=["source"]),
        )

    def collect(self):
        if not sfu_configured():
            return
        up, rooms, publishers = self._families()
        counts = dict.fromkeys((*SOURCES, "other"), 0)
        try:
            sfu = JanusSfu.from_settings()
            room_ids = sfu.office_rooms()
            for room_id in room_ids:
                for participant in sfu.participants(room_id):
                    if participant.publisher:
                        counts[feed_source(participant.display)] += 1
        except (SfuUnavailable, SfuRefused) as exc:
            logger.warning("SFU metrics unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        rooms.add_metric([], len(room_ids))
        for source, count in counts.items():
            publishers.add_metric([source], count)
        yield from (up, rooms, publishers)
