"""An admin watches the sensors page in a real browser while a device reports over the signed webhook."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from iot import services
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True)


def post_signed_reading(base_url: str, device_id: str, secret: str, payload: dict) -> int:
    """What a device does: POST the JSON with a timestamp and its HMAC-SHA256 signature."""
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        f"{base_url}/api/iot/webhook/{device_id}", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-Office-Timestamp": timestamp,
                 "X-Office-Signature": services.webhook_signature(secret, timestamp, body)},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def nav_link(page, name: str):
    return page.locator("nav.site-nav").get_by_role("link", name=name, exact=True)


def test_an_admin_sees_a_sensor_reading_arrive_live_and_moves_between_pages(office, people, sign_in, live_office):
    # given a projector registered in Atlas, and dana (admin) signed in to the office
    sensor, creds = services.sensor_create(room=office["atlas"], kind="projector", name="Atlas projector",
                                           device_id="atlas-projector")
    dana = sign_in("dana", PASSWORD)
    assert nav_link(dana, "Office").get_attribute("aria-current") == "page"

    # when she follows the top bar's Sensors link
    nav_link(dana, "Sensors").click()
    dana.wait_for_url(f"{live_office}/sensors/")
    dana.wait_for_function("document.querySelector('#sensors-live')?.dataset.state === 'connected'")
    # then she sees the sensor, with no data yet, and Sensors marked as the current page
    card = dana.locator(f'.sensor-card[data-sensor="{sensor.id}"]')
    card.wait_for()
    assert "Atlas projector" in card.inner_text() and card.locator(".sensor-state").inner_text() == "no data yet"
    assert nav_link(dana, "Sensors").get_attribute("aria-current") == "page"

    # when the projector reports offline through the signed webhook
    assert post_signed_reading(live_office, "atlas-projector", creds.webhook_secret, {"state": "offline"}) == 201
    # then her page shows it without a reload
    dana.wait_for_function(
        "id => document.querySelector(`.sensor-card[data-sensor=\"${id}\"] .sensor-state`)?.textContent === 'offline'",
        arg=sensor.id, timeout=10000,
    )
    assert card.locator(".sensor-state").get_attribute("data-level") == "bad"
    ARTIFACTS.mkdir(exist_ok=True)
    dana.screenshot(path=str(ARTIFACTS / "sensors-dana.png"))

    # and the top bar takes her to the other pages, each marked as current
    for name, path in (("Tickets", "/tickets/"), ("Workflows", "/workflows/"), ("Notifications", "/notifications/")):
        nav_link(dana, name).click()
        dana.wait_for_url(f"{live_office}{path}")
        assert nav_link(dana, name).get_attribute("aria-current") == "page"
    nav_link(dana, "Office").click()
    dana.wait_for_selector("#office-app")
    dana.screenshot(path=str(ARTIFACTS / "office-topbar-dana.png"))
