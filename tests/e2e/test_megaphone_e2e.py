"""The megaphone and a knock in two real browsers (ADR 0022): dana (an admin, and on the Vault's
list here) records a clip and announces it; bob's page shows the banner and plays it. Bob, at the
Vault's door, knocks; dana lets him in; his next step takes him inside."""

from __future__ import annotations

import pytest

from rooms import services
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_announces_and_a_knock_is_let_in(office, people, sign_in_with_microphone):
    # given dana on the Vault's list, and bob's desk just below the Vault's door (20,6)
    services.room_set_members(room=office["vault"], user_ids=[people["alice"].id, people["dana"].id])
    services.desk_create(office_map=office["map"], label="B", x=20, y=7, owner=people["bob"])
    dana = sign_in_with_microphone("dana", PASSWORD)
    bob = sign_in_with_microphone("bob", PASSWORD)
    assert bob.locator("#megaphone-toggle").count() == 0  # the control is for admins only

    # when dana records a short clip with the megaphone and announces it to the whole map
    dana.click("#megaphone-toggle")
    dana.fill("#megaphone-text", "Fire drill at three")
    dana.click("#megaphone-record")
    dana.wait_for_timeout(1500)
    dana.click("#megaphone-record")
    dana.wait_for_selector("#megaphone-clip:has-text('clip:')")
    ARTIFACTS.mkdir(exist_ok=True)
    dana.screenshot(path=str(ARTIFACTS / "megaphone-form-dana.png"))
    dana.click("#megaphone-send")

    # then bob's page shows the banner with her name and text, and plays (or offers to play) the clip
    banner = bob.wait_for_selector(".megaphone-banner:has-text('Fire drill at three')")
    assert "Dana Admin" in banner.inner_text()
    bob.wait_for_function("['playing', 'blocked'].includes(document.querySelector('.megaphone-banner').dataset.audio)")
    bob.screenshot(path=str(ARTIFACTS / "megaphone-banner-bob.png"))

    # when bob, at the door, knocks
    bob.click("#knock-button")
    bob.wait_for_selector("#knock-bar:has-text('Knocking on Vault')")
    # then dana is asked, and lets him in
    prompt = dana.wait_for_selector(".knock-prompt:has-text('Bob Baker is knocking on Vault')")
    dana.wait_for_timeout(300)  # the prompt fades in
    dana.screenshot(path=str(ARTIFACTS / "megaphone-knock-prompt-dana.png"))
    prompt.query_selector(".knock-let-in").click()
    bob.wait_for_selector("#notice:has-text('Dana Admin let you into Vault')")
    # and his next step takes him inside
    bob.keyboard.press("ArrowUp")
    bob.wait_for_function(f"window.officeClient.state.you.room === {office['vault'].id}")
    bob.wait_for_timeout(400)
    assert bob.evaluate("[window.officeClient.state.you.x, window.officeClient.state.you.y]") == [20, 6]
    assert bob.locator(".notice-error").count() == 0  # nothing inside refuses the guest with an error
    bob.screenshot(path=str(ARTIFACTS / "megaphone-knock-let-in-bob.png"))
