"""Two members in Chromium, through Caddy (TLS) to two Daphne nodes, with every worker behind them and
coturn relaying the microphone: the flows of the office as deployed, on one machine (conftest.py)."""

from __future__ import annotations

import re
import time

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS, _chromium
from tests.page_polling import wait_for_async

pytestmark = pytest.mark.django_db(transaction=True)

# Each page notes the node named in every `hello` (its first frame after each (re)connect).
RECORD_NODES = """
window.officeNodes = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => {
      try {
        const frame = JSON.parse(event.data);
        if (frame.type === "hello" && frame.node) window.officeNodes.push(frame.node);  // not the inbox socket's
      } catch (err) { /* not JSON */ }
    });
  }
};
"""

SELECTED_PAIR = """async () => {
  const stats = await window.officeClient.meeting.pc.getStats();
  let pair = null;
  stats.forEach((r) => { if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
  return {local: local.candidateType, localAddress: local.address, relayProtocol: local.relayProtocol || null,
          remote: remote.candidateType, remoteAddress: remote.address, bytesSent: pair.bytesSent};
}"""


def connection_is(page, state: str, timeout: float = 15000) -> None:
    page.wait_for_function(
        "state => document.querySelector('#connection-state').textContent.trim() === state", arg=state,
        timeout=timeout,
    )


def test_the_office_as_deployed_behind_caddy_with_two_nodes_and_turn(
    office, people, production_shape, speech_wav
):
    shape = production_shape
    alice_id = people["alice"].id
    open_thread = office["open"].chat_thread.id
    with _chromium([
        "--ignore-certificate-errors",  # Caddy's own CA for 127.0.0.1
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech_wav}",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
    ]) as browser:
        def sign_in(username: str):
            context = browser.new_context(viewport={"width": 1280, "height": 800}, ignore_https_errors=True,
                                          permissions=["microphone"])
            context.add_init_script(RECORD_NODES)
            page = context.new_page()
            page.goto(f"{shape.url}/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#office-app")
            connection_is(page, "connected")
            return page

        # given alice and bob signed in through the proxy (HTTPS, secure cookies, WSS)
        alice = sign_in("alice")
        assert alice.url.startswith(shape.url)
        alice_node = shape.node_for(alice.evaluate("window.officeNodes.at(-1)"))
        # Each page holds two sockets (office, inbox) and Caddy balances by open connections, breaking
        # ties at random: bob's office socket lands on the node that his inbox socket did not. Until
        # that is not alice's node, he opens the office again (each try is a fair coin).
        for _attempt in range(10):
            bob = sign_in("bob")
            bob_node = shape.node_for(bob.evaluate("window.officeNodes.at(-1)"))
            if bob_node != alice_node:
                break
            bob.context.close()
        # then their sockets are on different Daphne nodes
        assert {alice_node, bob_node} == {"web-1", "web-2"}

        # when alice walks three tiles east, then bob (on the other node) sees her there
        for _ in range(3):
            alice.keyboard.press("ArrowRight")
            alice.wait_for_timeout(260)
        bob.wait_for_selector(f'#who-list li[data-user-id="{alice_id}"][data-x="13"][data-y="15"]')
        # when bob writes in the room chat, then alice reads it
        bob.fill("#chat-input", "hello from the other node")
        bob.press("#chat-input", "Enter")
        alice.wait_for_selector('#chat-log .chat-message:has-text("hello from the other node")')

        # when alice's node is killed (her page waits 3 s before reconnecting, so that bob's next
        # message is certainly written while she has no socket)
        alice.evaluate("window.officeClient.socket.blockedUntil = Date.now() + 3000")
        killed_at = time.monotonic()
        shape.nodes[alice_node].kill()
        shape.nodes[alice_node].wait(5)
        connection_is(alice, "reconnecting", timeout=5000)
        bob.fill("#chat-input", "sent while your node was down")
        bob.press("#chat-input", "Enter")
        bob.wait_for_selector('#chat-log .chat-message[data-seq]:has-text("sent while your node was down")')
        # then her page reconnects through the same proxy address, now to bob's node
        connection_is(alice, "connected", timeout=20000)
        reconnect_s = time.monotonic() - killed_at
        assert shape.node_for(alice.evaluate("window.officeNodes.at(-1)")) == bob_node
        assert alice.evaluate("window.officeNodes.length") == 2
        # and she has what was said meanwhile, once, in order
        alice.wait_for_selector('#chat-log .chat-message:has-text("sent while your node was down")')
        alice.wait_for_timeout(500)
        seqs = alice.eval_on_selector_all(
            f'#chat-log .chat-message[data-thread="{open_thread}"]', "els => els.map(e => e.dataset.seq)")
        assert seqs == ["1", "2"]
        # and bob still sees her, moving, from the node that is left
        alice.evaluate("window.officeClient.moveTo(14, 15)")
        bob.wait_for_selector(f'#who-list li[data-user-id="{alice_id}"][data-x="14"][data-y="15"]', timeout=15000)

        # when alice walks into Atlas and joins audio (her fake microphone says the sentence)
        alice.evaluate("window.officeClient.moveTo(6, 4)")
        alice.wait_for_selector("#meeting-panel:not([hidden])", timeout=15000)
        alice.click("#audio-join")
        alice.wait_for_function("window.officeClient.meeting.attachState === 'on'", timeout=30000)
        # then her microphone reaches the server's peer only through coturn (iceTransportPolicy relay)
        assert alice.evaluate("window.officeClient.meeting.pc.getConfiguration().iceTransportPolicy") == "relay"
        pair = wait_for_async(alice, f"async () => {{ const p = await ({SELECTED_PAIR})(); return p && p.bytesSent > 0 ? p : null; }}",
                              timeout_ms=15000)
        assert pair["local"] == "relay", pair
        assert pair["localAddress"] == "127.0.0.1" and pair["relayProtocol"] == "udp", pair
        # and the transcriber turns her words into a caption with her name
        final = alice.locator("#captions .caption.final").first
        final.wait_for(timeout=60000)
        assert final.locator(".caption-speaker").inner_text() == "Alice Archer"
        assert re.search("quarterly", final.locator(".caption-text").inner_text(), re.IGNORECASE)
        # and coturn's log shows the allocation and the relayed stream
        turn_log = shape.turn_log.read_text(errors="replace")
        assert re.search(r"ALLOCATE processed, success", turn_log), turn_log[-2000:]

        ARTIFACTS.mkdir(exist_ok=True)
        alice.screenshot(path=str(ARTIFACTS / "prod-check-alice.png"))
        print(f"\nreconnected to the other node {reconnect_s:.1f}s after the kill; selected pair {pair}")
        for page in (alice, bob):
            page.context.close()
