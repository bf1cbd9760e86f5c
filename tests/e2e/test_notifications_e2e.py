"""Live notifications in real browsers: bob @mentions alice in room chat and her bell counts it with a
toast, opening the dropdown reads it, and a task bob gives her appears on her tasks page unreloaded."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True)


def bell_connected(page) -> None:
    page.wait_for_function("document.querySelector('#bell')?.dataset.state === 'connected'")


def test_a_mention_rings_alices_bell_and_a_task_for_her_appears_live(office, people, sign_in, live_office):
    # given alice on her tasks page (nothing unread) and bob in the office
    alice = sign_in("alice", PASSWORD)
    bob = sign_in("bob", PASSWORD)
    bell_connected(bob)
    alice.goto(f"{live_office}/tasks/")
    bell_connected(alice)
    assert alice.locator("#bell-count").is_hidden()
    alice.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    # when bob mentions her in the open space's chat
    bob.fill("#chat-input", "@alice can you check the deck?")
    bob.press("#chat-input", "Enter")

    # then her bell counts one, and a toast says who mentioned her where
    alice.wait_for_function("document.querySelector('#bell-count').textContent === '1'", timeout=10000)
    assert alice.locator("#bell-count").is_visible()
    toast = alice.locator("#toasts .toast")
    toast.wait_for()
    assert "Bob Baker mentioned you in Open space" in toast.inner_text()
    assert alice.locator("#toasts").get_attribute("role") == "status"
    ARTIFACTS.mkdir(exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "notifications-toast-alice.png"))

    # when she opens the bell's dropdown
    alice.click("#bell-button")

    # then it lists the mention, and the count goes to zero (read on open)
    alice.locator("#bell-list .bell-item", has_text="Bob Baker mentioned you").wait_for()
    alice.wait_for_function("document.querySelector('#bell').dataset.unread === '0'", timeout=10000)
    assert alice.locator("#bell-count").is_hidden()
    assert alice.get_by_role("link", name="See all notifications").get_attribute("href") == "/notifications/"
    alice.screenshot(path=str(ARTIFACTS / "notifications-dropdown-alice.png"))
    alice.keyboard.press("Escape")

    # when bob gives her a task from his tasks page
    bob.goto(f"{live_office}/tasks/")
    bob.fill("#task-form input[name=title]", "Book the offsite venue")
    bob.select_option("#task-form select[name=owner]", str(people["alice"].id))
    bob.click("#task-form button[type=submit]")
    bob.wait_for_url(f"{live_office}/tasks/")

    # then it appears on her page, in the same document (no reload)
    row = alice.locator("#task-table tbody tr", has_text="Book the offsite venue")
    row.wait_for(timeout=10000)
    assert alice.evaluate("window.__sameDocument") is True
    assert row.locator("select[name=status]").input_value() == "open"
    assert alice.locator("#task-empty").is_hidden()
    alice.screenshot(path=str(ARTIFACTS / "notifications-task-live-alice.png"))
