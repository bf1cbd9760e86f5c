"""Three members in real browsers (Debian's headless Chromium) against a real Daphne."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True)


def connection_is(page, state: str) -> None:
    page.wait_for_function(
        "state => document.querySelector('#connection-state').textContent.trim() === state", arg=state
    )


def test_members_meet_move_chat_reconnect_and_respect_private_rooms(office, people, sign_in):
    alice_id, carol_id = people["alice"].id, people["carol"].id
    open_thread = office["open"].chat_thread.id
    # given alice and bob signed in, both at the spawn point in the open space
    alice = sign_in("alice", PASSWORD)
    bob = sign_in("bob", PASSWORD)

    # when alice walks three tiles east, then bob's page shows her new position
    for _ in range(3):
        alice.keyboard.press("ArrowRight")
        alice.wait_for_timeout(260)
    bob.wait_for_selector(f'#who-list li[data-user-id="{alice_id}"][data-x="13"][data-y="15"]')

    # when bob writes in the room chat, then alice sees it
    bob.fill("#chat-input", "hello from bob")
    bob.press("#chat-input", "Enter")
    alice.wait_for_selector(f'#chat-log .chat-message[data-thread="{open_thread}"]:has-text("hello from bob")')

    # when alice's connection drops while bob writes twice more
    alice.evaluate("window.officeClient.socket.dropFor(3000)")
    connection_is(alice, "reconnecting")
    for body in ("while you were away 1", "while you were away 2"):
        bob.fill("#chat-input", body)
        bob.press("#chat-input", "Enter")
        bob.wait_for_selector(f'#chat-log .chat-message[data-seq]:has-text("{body}")')
    # then after reconnecting she has exactly the messages she missed, once each
    connection_is(alice, "connected")
    alice.wait_for_selector('#chat-log .chat-message:has-text("while you were away 2")')
    alice.wait_for_timeout(500)
    seqs = alice.eval_on_selector_all(
        f'#chat-log .chat-message[data-thread="{open_thread}"]', "els => els.map(e => e.dataset.seq)"
    )
    assert seqs == ["1", "2", "3"]

    # given carol, who is not on the Vault's member list, standing below its door
    carol = sign_in("carol", PASSWORD)
    carol.evaluate(
        "() => { window.rejections = [];"
        " window.officeClient.socket.on('move.rejected', f => window.rejections.push(f)); }"
    )
    carol.evaluate("window.officeClient.moveTo(20, 7)")
    alice.wait_for_selector(f'#who-list li[data-user-id="{carol_id}"][data-x="20"][data-y="7"]', timeout=15000)
    # when she steps onto the door
    carol.keyboard.press("ArrowUp")
    # then the server refuses, she stays outside, and she is told why
    carol.wait_for_function("window.rejections.length > 0")
    assert carol.evaluate("window.rejections[0].reason") == "Vault is private: members only"
    assert "members only" in carol.inner_text("#notice")
    carol.wait_for_timeout(400)
    carol_on_alices_page = alice.locator(f'#who-list li[data-user-id="{carol_id}"]')
    assert carol_on_alices_page.get_attribute("data-y") == "7"
    assert carol_on_alices_page.get_attribute("data-room") == str(office["open"].id)
    assert carol.evaluate("[window.officeClient.state.you.x, window.officeClient.state.you.y]") == [20, 7]

    ARTIFACTS.mkdir(exist_ok=True)
    for name, page in (("alice", alice), ("bob", bob), ("carol", carol)):
        page.screenshot(path=str(ARTIFACTS / f"office-{name}.png"))
