"""A booked meeting's agenda in the browser: alice and bob (desks in Atlas) see the drafted agenda in the
Agenda panel; alice rewords, reorders, removes and adds items and saves; bob's panel follows live;
bob's edit of the old version is refused (409) and his panel shows hers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from assistant.models import ActionItem
from iot import services
from iot.models import Agenda
from rooms import services as room_services
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True)


def test_participants_edit_the_agenda_and_the_room_sees_it(office, people, sign_in):
    # given desks in Atlas, two open action items there and a meeting booked in 10 minutes, drafted
    atlas = office["atlas"]
    room_services.desk_create(office_map=office["map"], label="A1", x=4, y=3, owner=people["alice"])
    room_services.desk_create(office_map=office["map"], label="A2", x=8, y=3, owner=people["bob"])
    for text in ("Fix the crash on older phones", "Write the release notes"):
        ActionItem.objects.create(room=atlas, text=text, confidence=0.8, dedupe_key=text, model_id="rules")
    start = timezone.now().replace(microsecond=0) + dt.timedelta(minutes=10)
    services.booking_create(user=people["alice"], room=atlas, title="Launch sync", start=start,
                            end=start + dt.timedelta(minutes=30))
    assert services.agendas_post_due() == 1
    agenda = Agenda.objects.get()

    alice = sign_in("alice", PASSWORD)
    bob = sign_in("bob", PASSWORD)
    uncaught = []
    for page in (alice, bob):
        page.on("pageerror", lambda error: uncaught.append(error))
        page.wait_for_selector(f'#agenda-panel:not([hidden])[data-agenda="{agenda.pk}"][data-version="1"]')
    assert alice.locator("#agenda-title").inner_text() == "Launch sync"
    assert alice.locator("#agenda-items .agenda-item").count() == 2

    # when alice rewords the first item, moves the second up, adds one and removes nothing else, and saves
    alice.locator("#agenda-items .agenda-text-input").nth(0).fill("Fix the crash (Android 10 and older)")
    alice.locator("#agenda-items .agenda-item").nth(1).get_by_role("button", name="Move item 2 up").click()
    alice.fill("#agenda-add-input", "Demo the new build")
    alice.press("#agenda-add-input", "Enter")
    # (bob starts an edit of the version he has)
    bob.locator("#agenda-items .agenda-text-input").nth(0).fill("Bob's wording")
    alice.click("#agenda-save")
    alice.wait_for_selector('#agenda-panel[data-version="2"]')

    # then it is stored in her order, and bob is told a newer version was saved (his typing kept)
    agenda.refresh_from_db()
    assert [i["text"] for i in agenda.items] == [
        "Write the release notes (proposed)", "Fix the crash (Android 10 and older)", "Demo the new build"]
    bob.wait_for_function("document.querySelector('#agenda-status').textContent.includes('saved a newer version')")
    # and bob saving his edit of version 1 is refused: his panel shows hers
    bob.click("#agenda-save")
    bob.wait_for_selector('#agenda-panel[data-version="2"]')
    bob.wait_for_function("document.querySelector('#notice').textContent.includes('Someone saved the agenda before you')")
    assert bob.locator("#agenda-items .agenda-text-input").nth(1).input_value() == "Fix the crash (Android 10 and older)"
    agenda.refresh_from_db()
    assert agenda.version == 2

    # and when bob removes the last item and saves, alice's panel follows live
    bob.locator("#agenda-items .agenda-item").nth(2).get_by_role("button", name="Remove item 3").click()
    bob.click("#agenda-save")
    alice.wait_for_selector('#agenda-panel[data-version="3"]')
    assert alice.locator("#agenda-items .agenda-item").count() == 2
    assert uncaught == []
    ARTIFACTS.mkdir(exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "agenda.png"))
