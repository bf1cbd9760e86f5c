"""An admin opens the outcome dashboard and the sensors page in a real browser: uPlot charts (vendored
in static/vendor/uplot/) with axes, the legend and a tooltip at the cursor, and a time range."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import pytest
from django.utils import timezone

from assistant.models import ModelCall
from iot import services as iot_services
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS
from transcription.models import Meeting

pytestmark = pytest.mark.django_db(transaction=True)

CANVAS_DRAWN = """canvas => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
  return false;
}"""


def _recent_work(room):
    """A meeting two days ago and a model call a day ago, inside the page's default 30 days."""
    two_days_ago = timezone.now() - dt.timedelta(days=2)
    with mock.patch("django.utils.timezone.now", return_value=two_days_ago):
        meeting = Meeting.objects.create(room=room)
    Meeting.objects.filter(pk=meeting.pk).update(ended_at=two_days_ago + dt.timedelta(minutes=90))
    with mock.patch("django.utils.timezone.now", return_value=timezone.now() - dt.timedelta(days=1)):
        ModelCall.objects.create(purpose="summary", tier="large", model_id="big", endpoint="http://llm/v1",
                                 prompt_name="summary", prompt_version="v1", room=room, status="ok", latency_ms=900,
                                 prompt_tokens=1200, completion_tokens=300)


def test_an_admin_reads_the_outcome_charts_and_the_sensor_charts(office, people, sign_in, live_office):
    # given some recent work in Atlas, a thermometer there with readings over the last hour, and dana signed in
    _recent_work(office["atlas"])
    sensor, _creds = iot_services.sensor_create(room=office["atlas"], kind="temperature", name="Atlas thermometer",
                                                device_id="atlas-thermo")
    now = timezone.now()
    for minutes, celsius in ((50, 21.0), (40, 21.5), (30, 22.4), (20, 23.1), (10, 22.8), (1, 22.2)):
        iot_services.reading_ingest(sensor=sensor, payload=json.dumps({"celsius": celsius}).encode(), source="webhook",
                                    received_at=now - dt.timedelta(minutes=minutes))
    dana = sign_in("dana", PASSWORD)

    # when she follows the top bar's Outcomes link
    dana.locator("nav.site-nav").get_by_role("link", name="Outcomes", exact=True).click()
    dana.wait_for_url(f"{live_office}/outcomes/")
    dana.wait_for_selector("#outcomes-page[data-ready='1']")
    # then every section is a drawn chart with its axis caption and its legend
    cards = dana.locator(".outcome-card")
    assert cards.count() == 10
    meetings = dana.locator('.outcome-card[data-section="meetings"]')
    canvas = meetings.locator("canvas").first
    canvas.wait_for()
    assert canvas.evaluate(CANVAS_DRAWN)
    assert meetings.locator(".chart-axis-caption").inner_text() == "hours per day"
    assert "Meeting hours" in meetings.locator(".u-legend").inner_text()
    assert meetings.locator('[data-figure="meeting_hours"] dd').inner_text() == "1.5 h"
    items = dana.locator('.outcome-card[data-section="action_items"] .u-legend').inner_text()
    assert all(label in items for label in ("Proposed", "Approved", "Edited", "Rejected", "Done"))
    # and the cost, with no price configured, reads unknown
    assert dana.locator('.outcome-card[data-section="model_cost"] [data-figure="cost"] dd').inner_text() == "unknown"
    # and hovering a chart shows the day and its value at the cursor
    box = meetings.locator(".u-over").bounding_box()
    dana.mouse.move(box["x"] + box["width"] - 30, box["y"] + box["height"] / 2)
    tip = meetings.locator(".chart-tip")
    tip.wait_for(state="visible")
    assert "Meeting hours:" in tip.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    dana.screenshot(path=str(ARTIFACTS / "outcomes.png"), full_page=True)

    # when she picks the last 7 days
    dana.locator(".range-option", has_text="7 days").click()
    dana.wait_for_function("document.getElementById('outcomes-range').textContent.includes('(7 days)')")
    # then the charts are drawn again over a week, and the address says so
    assert "days=7" in dana.url
    assert dana.locator(".outcome-card canvas").first.evaluate(CANVAS_DRAWN)

    # when she opens the sensors page
    dana.goto(f"{live_office}/sensors/")
    dana.wait_for_selector("#sensors-page[data-ready='1']")
    card = dana.locator(f'.sensor-card[data-sensor="{sensor.id}"]')
    chart_canvas = card.locator(".sensor-chart canvas").first
    chart_canvas.wait_for()
    # then the thermometer's readings are a drawn uPlot chart with its legend, and the tooltip gives a reading
    assert chart_canvas.evaluate(CANVAS_DRAWN)
    assert "Temperature" in card.locator(".u-legend").inner_text()
    box = card.locator(".u-over").bounding_box()
    dana.mouse.move(box["x"] + box["width"] - 4, box["y"] + box["height"] / 2)
    card.locator(".chart-tip").wait_for(state="visible")
    assert "°C" in card.locator(".chart-tip").inner_text()
    # and a time range redraws it over the last hour
    dana.select_option("#sensor-range", "hour")
    card.locator(".sensor-chart[data-range='hour'] canvas").first.wait_for()
    assert card.locator(".sensor-chart[data-range='hour'] canvas").first.evaluate(CANVAS_DRAWN)
    dana.mouse.move(10, 10)
    dana.screenshot(path=str(ARTIFACTS / "sensors-chart.png"), full_page=True)
