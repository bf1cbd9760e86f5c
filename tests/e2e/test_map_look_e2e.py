"""The office map as people see it: labels that never overlap, sensor badges, tap to walk and pinch on
a phone, and the minimap of a large floor; in real Chromium against a real Daphne."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from iot import services as iot_services
from rooms import services
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}

# Placed label boxes must be pairwise disjoint (the same test as static/office/map/labels.js).
LABELS_DISJOINT = """labels => labels.every((a, i) => labels.every((b, j) => i === j
    || !(a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h)))"""


def sign_in_on(context, base_url: str, username: str):
    page = context.new_page()
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#office-app")
    page.wait_for_function("document.querySelector('#connection-state')?.textContent.trim() === 'connected'"
                           " && window.officeClient.state.ready && window.__officeMap != null")
    return page


def record_reading(sensor, payload: bytes) -> None:
    """Store a reading through the iot service, off the test's thread: Playwright keeps an event loop
    on this one, where the on-commit announcement (async_to_sync) may not run."""
    def ingest():
        try:
            iot_services.reading_ingest(sensor=sensor, payload=payload, source="webhook")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(ingest).result(timeout=10)


def labels(page) -> list[dict]:
    return page.evaluate("window.__officeMap.labels()")


def test_label_placement_keeps_boxes_apart_and_drops_low_priority_first(sign_in, office):
    # given a page with the map modules loaded
    page = sign_in("alice", PASSWORD)

    # when ten names, a desk label and an obstacle all want the same spot
    result = page.evaluate("""() => {
        const requests = [];
        for (let i = 0; i < 10; i++) requests.push({id: `p${i}`, w: 70, h: 16, ax: 200, ay: 200, aw: 26, ah: 30,
                                                    priority: 50, rings: 2});
        requests.push({id: 'desk', w: 60, h: 14, ax: 200, ay: 200, aw: 28, ah: 28, priority: 10,
                       sides: ['below', 'above']});
        requests.unshift({id: 'me', w: 50, h: 16, ax: 205, ay: 205, aw: 26, ah: 30, priority: 100});
        return window.__officeMap.placeLabels(requests, {obstacles: [{x: 150, y: 160, w: 20, h: 20}],
                                                          bounds: {x: 0, y: 0, w: 400, h: 400}});
    }""")

    # then what is placed never overlaps, nor the obstacle, nor leaves the bounds
    placed = result["placed"]
    assert page.evaluate(LABELS_DISJOINT, placed)
    for box in placed:
        assert not (box["x"] < 170 and 150 < box["x"] + box["w"] and box["y"] < 180 and 160 < box["y"] + box["h"])
        assert box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["w"] <= 400 and box["y"] + box["h"] <= 400
    # and my name goes first, directly below me, then the other names, the desk label last
    assert placed[0]["id"] == "me" and placed[0]["side"] == "below"
    assert len(placed) >= 5 and all(box["id"] != "desk" for box in placed[:-1])

    # when a person's name and a desk label both can only go below the same tile
    result = page.evaluate("""() => window.__officeMap.placeLabels([
        {id: 'desk', w: 60, h: 14, ax: 100, ay: 100, aw: 28, ah: 28, priority: 10, sides: ['below']},
        {id: 'bob', w: 60, h: 16, ax: 100, ay: 100, aw: 28, ah: 28, priority: 50, sides: ['below']},
    ])""")
    # then the name wins and the desk label is dropped
    assert [box["id"] for box in result["placed"]] == ["bob"] and result["dropped"] == ["desk"]


def test_the_map_reads_as_an_office_on_a_desktop_and_on_a_phone(browser, live_office, office, people, sign_in):
    atlas = office["atlas"]
    # given alice's desk on the spawn tile and bob's beside it: each starts at their desk, under their name
    services.desk_create(office_map=office["map"], label="D1", x=10, y=15, owner=people["alice"])
    services.desk_create(office_map=office["map"], label="D2", x=11, y=15, owner=people["bob"])
    services.desk_create(office_map=office["map"], label="Hot desk", x=14, y=15)
    sensor, _ = iot_services.sensor_create(room=atlas, kind="occupancy", name="Atlas counter", device_id="atlas-count")
    alice = sign_in("alice", PASSWORD)
    bob = sign_in("bob", PASSWORD)
    assert alice.evaluate("[window.officeClient.state.you.x, window.officeClient.state.you.y]") == [10, 15]
    assert bob.evaluate("[window.officeClient.state.you.x, window.officeClient.state.you.y]") == [11, 15]

    # then alice's map shows both names and the free desk's label, and no two labels overlap though
    # the desks sit under their owners (a desk label gives way to a name)
    alice.wait_for_function(
        "ids => { const got = window.__officeMap.labels().map(l => l.id);"
        " return ids.every(id => got.includes(id)); }",
        arg=[f"person:{people['alice'].id}", f"person:{people['bob'].id}", "desk:14,15"])
    assert alice.evaluate(LABELS_DISJOINT, labels(alice))

    # when bob says he is busy, then his ring on alice's map turns busy
    bob_id = people["bob"].id
    bob.select_option("#status-select", "busy")
    alice.wait_for_function(
        "id => window.__officeMap.avatars().some(a => a.user === id && a.status === 'busy')", arg=bob_id)
    # when voice.js hears bob (its meter holds a speaker for a moment), then his avatar shows it
    alice.evaluate("id => window.officeClient.voice.speakingUntil.set(id, Date.now() + 3000)", bob_id)
    alice.wait_for_function(
        "id => window.__officeMap.avatars().some(a => a.user === id && a.speaking)", arg=bob_id)

    # when Atlas's people counter reports two people
    record_reading(sensor, b'{"count": 2}')
    # then a badge on Atlas says 2 of its 3 seats are taken, and labels still keep clear of it
    alice.wait_for_function(
        "id => window.__officeMap.badges().some(b => b.room === id && b.label === '2/3')", arg=atlas.id,
        timeout=10000)
    assert alice.evaluate(LABELS_DISJOINT, labels(alice))
    ARTIFACTS.mkdir(exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "map-look-desktop.png"))

    # given carol on a phone: the map fills the screen, people and chat wait behind a button
    phone = browser.new_context(**PHONE)
    try:
        carol = sign_in_on(phone, live_office, "carol")
        canvas = carol.locator("#office-canvas").bounding_box()
        assert canvas["width"] >= 380 and canvas["height"] >= 640
        assert not carol.locator("#chat-input").is_visible()
        # ...and the assistant waits folded at the top (its head only), a tap away
        assert carol.get_attribute("#assistant-toggle", "aria-expanded") == "false"
        assert carol.locator("#assistant-panel").bounding_box()["height"] < 0.1 * 844
        carol.click("#assistant-toggle")
        carol.wait_for_selector("#assistant-body:not([hidden])")
        assert carol.locator("#assistant-panel").bounding_box()["height"] > 0.1 * 844
        carol.click("#assistant-toggle")
        carol.wait_for_selector("#assistant-body", state="hidden")
        start = carol.evaluate("[window.officeClient.state.you.x, window.officeClient.state.you.y]")
        target = [start[0] + 3, start[1] - 2]

        # when she taps a tile three to the right and two up
        x, y = carol.evaluate(
            "([x, y]) => { const r = document.querySelector('#office-canvas').getBoundingClientRect();"
            " const [sx, sy] = window.__officeMap.tileToScreen(x, y); return [r.left + sx, r.top + sy]; }", target)
        carol.touchscreen.tap(x, y)
        # then her avatar walks there, and alice sees her arrive
        carol.wait_for_function(
            "([x, y]) => window.officeClient.state.you.x === x && window.officeClient.state.you.y === y",
            arg=target, timeout=10000)
        alice.wait_for_selector(
            f'#who-list li[data-user-id="{people["carol"].id}"][data-x="{target[0]}"][data-y="{target[1]}"]')
        assert carol.evaluate(LABELS_DISJOINT, labels(carol))

        # when she spreads two fingers on the map
        cdp = phone.new_cdp_session(carol)
        cx, cy = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [
            {"x": cx - 30, "y": cy, "id": 1}, {"x": cx + 30, "y": cy, "id": 2}]})
        for step in range(1, 6):
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
                {"x": cx - 30 - 12 * step, "y": cy, "id": 1}, {"x": cx + 30 + 12 * step, "y": cy, "id": 2}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        # then the map zooms in
        assert carol.evaluate("window.__officeMap.zoom()") > 1.5
        carol.wait_for_timeout(250)
        carol.screenshot(path=str(ARTIFACTS / "map-look-phone.png"))

        # when she opens people and chat, then the sheet covers the map
        carol.click("#panels-toggle")
        carol.wait_for_function("document.querySelector('#chat-input').getBoundingClientRect().bottom <= innerHeight")
        assert carol.locator("#chat-input").is_visible()
        carol.wait_for_timeout(250)
        carol.screenshot(path=str(ARTIFACTS / "map-look-phone-panels.png"))
    finally:
        phone.close()


def test_a_large_floor_has_a_minimap_that_pans_the_view(live_office, office, people, sign_in):
    # given a 120 x 80 floor with rooms scattered over it
    big = services.office_map_create(name="Campus", slug="campus", width=120, height=80, spawn_x=5, spawn_y=5)
    services.room_create(office_map=big, name="Hall", kind="open", x=0, y=0, width=120, height=80)
    for i, (x, y) in enumerate([(10, 10), (60, 12), (95, 50), (20, 60)]):
        services.room_create(office_map=big, name=f"Room {i + 1}", kind="meeting", x=x, y=y, width=10, height=7,
                             doors=[[x + 4, y + 6]], capacity=6)
    alice = sign_in("alice", PASSWORD)

    # when alice opens it
    alice.goto(f"{live_office}/office/{big.id}/")
    alice.wait_for_function("window.officeClient?.state.ready && window.officeClient.state.mapId === "
                            f"{big.id} && window.__officeMap != null")
    # then the minimap shows the whole floor
    minimap = alice.locator("#map-minimap")
    minimap.wait_for(state="visible")
    box = minimap.bounding_box()
    assert box["width"] > 100 and box["height"] > 50

    # when she clicks its far corner, then the view pans there, away from her
    before = alice.evaluate("window.__officeMap.camera()")
    alice.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.85)
    alice.wait_for_function("x => window.__officeMap.camera().x > x + 20", arg=before["x"])
    alice.wait_for_timeout(200)
    alice.screenshot(path=str(ARTIFACTS / "map-look-minimap.png"))

    # when she walks a step, then the view comes back to her
    alice.keyboard.press("ArrowRight")
    alice.wait_for_function("window.__officeMap.camera().pan === null && window.__officeMap.camera().x < 10")
