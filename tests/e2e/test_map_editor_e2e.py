"""An admin edits the map in the browser while a member's office page on the same map follows live."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True)


def version(page) -> int:
    return int(page.eval_on_selector("#editor-canvas", "c => c.dataset.version || '0'"))


def saved_after(page, before: int) -> None:
    """Wait until the editor's write is answered and a layout newer than `before` is shown."""
    page.wait_for_function(
        "v => { const c = document.querySelector('#editor-canvas');"
        " return Number(c.dataset.version) > v && c.dataset.busy === 'false'; }", arg=before)


def tile_point(page, x: int, y: int) -> tuple[float, float]:
    return tuple(page.evaluate("([x, y]) => window.mapEditor.tileToClient(x, y)", [x, y]))


def click_tile(page, x: int, y: int) -> None:
    page.mouse.click(*tile_point(page, x, y))


def drag_tiles(page, start: tuple[int, int], end: tuple[int, int]) -> None:
    page.mouse.move(*tile_point(page, *start))
    page.mouse.down()
    page.mouse.move(*tile_point(page, *end), steps=8)
    page.mouse.up()


def room_in_editor(page, room_id: int) -> dict:
    return page.evaluate("id => window.mapEditor.layout.rooms.find(r => r.id === id)", room_id)


def alice_sees(page, room_id: int, expected: dict) -> None:
    """Alice's office page holds the layout the server sent with `map.changed`."""
    page.wait_for_function(
        "([id, want]) => { const r = window.officeClient.state.layout.rooms.find(r => r.id === id);"
        " return Object.entries(want).every(([k, v]) => JSON.stringify(r[k]) === JSON.stringify(v)); }",
        arg=[room_id, expected])


def test_an_admin_moves_a_door_and_a_room_while_a_member_watches(office, people, sign_in, live_office):
    atlas_id = office["atlas"].id
    # given alice on the office page and dana in the map editor of the same map
    alice = sign_in("alice", PASSWORD)
    dana = sign_in("dana", PASSWORD)
    dana.goto(f"{live_office}/office/{office['map'].id}/edit/")
    dana.wait_for_function("document.querySelector('#editor-live')?.dataset.state === 'connected'"
                           " && window.mapEditor?.layout != null && window.mapEditor.state.members.size > 0")

    # when dana selects Atlas, then clicks its bottom wall at 4,6 (a new door) and its old door at 6,6
    click_tile(dana, 5, 3)
    dana.wait_for_function("document.querySelector('#room-name').value === 'Atlas'")
    before = version(dana)
    click_tile(dana, 4, 6)
    saved_after(dana, before)
    assert room_in_editor(dana, atlas_id)["doors"] == [[6, 6], [4, 6]]
    before = version(dana)
    click_tile(dana, 6, 6)
    saved_after(dana, before)

    # then Atlas has one door, at 4,6, in the editor and on alice's map
    assert room_in_editor(dana, atlas_id)["doors"] == [[4, 6]]
    alice_sees(alice, atlas_id, {"doors": [[4, 6]]})

    # when dana drags Atlas seven tiles down
    before = version(dana)
    drag_tiles(dana, (5, 3), (5, 10))
    saved_after(dana, before)

    # then it moved with its door, for alice too
    moved = room_in_editor(dana, atlas_id)
    assert (moved["x"], moved["y"], moved["doors"]) == (2, 8, [[4, 13]])
    alice_sees(alice, atlas_id, {"x": 2, "y": 8, "doors": [[4, 13]]})
    assert "Move Atlas" in dana.inner_text("#editor-history")

    # when she drags it onto the Vault
    before = version(dana)
    drag_tiles(dana, (5, 10), (17, 5))
    saved_after(dana, before)

    # then the server's reason is shown and Atlas is back where it was saved
    error = dana.locator("#editor-error")
    assert error.is_visible()
    assert error.inner_text() in ("walled rooms 'Vault' and 'Atlas' overlap", "walled rooms 'Atlas' and 'Vault' overlap")
    assert (room_in_editor(dana, atlas_id)["x"], room_in_editor(dana, atlas_id)["y"]) == (2, 8)
    ARTIFACTS.mkdir(exist_ok=True)
    dana.screenshot(path=str(ARTIFACTS / "map-editor.png"))

    # when she undoes the move, Atlas is back at the top, for alice too
    before = version(dana)
    dana.click("#editor-undo")
    saved_after(dana, before)
    dana.wait_for_function(f"window.mapEditor.layout.rooms.find(r => r.id === {atlas_id}).y === 1")
    alice_sees(alice, atlas_id, {"x": 2, "y": 1, "doors": [[4, 6]]})
    alice.screenshot(path=str(ARTIFACTS / "map-editor-alice.png"))


def test_an_admin_draws_a_room_resizes_it_and_places_a_desk(office, people, sign_in, live_office):
    bob_id, carol_id = people["bob"].id, people["carol"].id
    # given alice on the office page and dana in the editor
    alice = sign_in("alice", PASSWORD)
    dana = sign_in("dana", PASSWORD)
    dana.goto(f"{live_office}/office/{office['map'].id}/edit/")
    dana.wait_for_function("document.querySelector('#editor-live')?.dataset.state === 'connected'"
                           " && window.mapEditor?.layout != null && window.mapEditor.state.members.size > 0")

    # when she draws a room on the open floor, then names it, makes it private for bob and saves
    dana.click("button[data-tool=room]")
    before = version(dana)
    drag_tiles(dana, (28, 10), (33, 14))
    saved_after(dana, before)
    dana.wait_for_function("document.querySelector('#room-name').value === 'Room 1'")
    dana.fill("#room-name", "Nook")
    dana.select_option("#room-kind", "private")
    dana.select_option("#room-members", [str(bob_id)])
    dana.click("#room-save")
    dana.wait_for_function("document.querySelector('#editor-history').textContent.includes('Members of Nook')"
                           " && document.querySelector('#editor-canvas').dataset.busy === 'false'")

    # then it is a private 6x5 room with a door in its bottom wall, bob its only member
    nook = dana.evaluate("window.mapEditor.layout.rooms.find(r => r.name === 'Nook')")
    assert (nook["kind"], nook["x"], nook["y"], nook["width"], nook["height"], nook["doors"]) == (
        "private", 28, 10, 6, 5, [[31, 14]])
    assert dana.evaluate(f"fetch('/api/rooms/{nook['id']}/members/').then(r => r.json())") == {"users": [bob_id]}

    # when she drags its bottom-right corner two tiles down and right
    before = version(dana)
    dana.mouse.move(*dana.evaluate("window.mapEditor.handleToClient('se')"))
    dana.mouse.down()
    dana.mouse.move(*tile_point(dana, 35, 16), steps=8)
    dana.mouse.up()
    saved_after(dana, before)

    # then it is 8x7 and its door stayed in the bottom wall, for alice too
    resized = room_in_editor(dana, nook["id"])
    assert (resized["width"], resized["height"], resized["doors"]) == (8, 7, [[31, 16]])
    alice_sees(alice, nook["id"], {"width": 8, "height": 7, "doors": [[31, 16]]})

    # when she places a desk in the open space and gives it to carol
    dana.click("button[data-tool=desk]")
    before = version(dana)
    click_tile(dana, 14, 18)
    saved_after(dana, before)
    dana.wait_for_function("document.querySelector('#desk-label').value === 'Desk 1'")
    before = version(dana)
    dana.select_option("#desk-owner", str(carol_id))
    dana.click("#desk-save")
    saved_after(dana, before)

    # then alice's map has carol's desk
    alice.wait_for_function(
        "id => window.officeClient.state.layout.desks.some(d => d.x === 14 && d.y === 18 && d.owner === id)",
        arg=carol_id)
    ARTIFACTS.mkdir(exist_ok=True)
    dana.screenshot(path=str(ARTIFACTS / "map-editor-desk.png"))

    # when she undoes twice, the desk has no owner and then is gone
    for _ in range(2):
        before = version(dana)
        dana.click("#editor-undo")
        saved_after(dana, before)
    assert dana.evaluate("window.mapEditor.layout.desks") == []
    alice.wait_for_function("window.officeClient.state.layout.desks.length === 0")
