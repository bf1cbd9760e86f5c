"""The map editor's server side: desks over REST, a map exported and imported as a document (and as
Tiled JSON), the editor page and its socket; admins only, through the same services and validation."""

from __future__ import annotations

import copy
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from office.events import map_editors_group, map_group
from rooms import services
from rooms.models import ChatThread, Desk, OfficeMap, Room
from tests.conftest import session_cookie
from tests.test_protocol_doc import assert_frame_matches

pytestmark = pytest.mark.django_db

JSON = "application/json"


@pytest.fixture
def sent_events(monkeypatch):
    """Live events actually sent (after commit), as (group, event)."""
    sent = []
    monkeypatch.setattr("office.events.send_event", lambda group, event: sent.append((group, event)))
    return sent


@pytest.fixture
def furnished(office, people):
    """The test office with alice's desk in the open space and a free one."""
    services.desk_create(office_map=office["map"], label="A1", x=4, y=10, owner=people["alice"])
    services.desk_create(office_map=office["map"], label="Free", x=6, y=10)
    return office


def layout_without_ids(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != "map"} | {
        "map": {k: v for k, v in document["map"].items() if k not in ("name", "slug")}}


# --- export / import ---

def test_an_exported_map_imports_as_an_identical_layout(furnished, people, client_of):
    # given dana's export of the furnished office
    dana = client_of(people["dana"])
    exported = dana.get(f"/api/maps/{furnished['map'].id}/export/")
    assert exported.status_code == 200
    document = exported.json()
    assert document["format"] == "office-map" and document["version"] == 1
    vault = next(r for r in document["rooms"] if r["name"] == "Vault")
    assert vault["members"] == ["alice"] and vault["doors"] == [[20, 6]]
    assert {"label": "A1", "x": 4, "y": 10, "owner": "alice"} in document["desks"]

    # when she imports it as a new map
    copy_of = copy.deepcopy(document)
    copy_of["map"].update(name="Test HQ copy", slug="test-hq-copy")
    imported = dana.post("/api/maps/import/", copy_of, content_type=JSON)

    # then the new map has the same layout, members and desk owners, each room with its chat
    assert imported.status_code == 201, imported.json()
    new_map = OfficeMap.objects.get(pk=imported.json()["id"])
    again = dana.get(f"/api/maps/{new_map.id}/export/").json()
    assert again["map"]["name"] == "Test HQ copy"
    assert layout_without_ids(again) == layout_without_ids(document)
    assert ChatThread.objects.filter(room__office_map=new_map).count() == 3


def test_an_import_with_overlapping_rooms_is_refused_with_the_reason_and_creates_nothing(furnished, people, client_of):
    # given an export whose Vault is moved onto Atlas, and a door off the edge of another room
    dana = client_of(people["dana"])
    document = dana.get(f"/api/maps/{furnished['map'].id}/export/").json()
    document["map"].update(name="Broken", slug="broken")
    vault = next(r for r in document["rooms"] if r["name"] == "Vault")
    vault.update(x=5, doors=[[9, 6]])
    document["rooms"].append({"name": "Cupboard", "kind": "meeting", "x": 30, "y": 10, "width": 4, "height": 4,
                              "doors": [[31, 11]]})
    counts = (OfficeMap.objects.count(), Room.objects.count(), Desk.objects.count(), ChatThread.objects.count())

    # when dana imports it
    response = dana.post("/api/maps/import/", document, content_type=JSON)

    # then it is a 400 naming every problem, and nothing was created
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "walled rooms 'Atlas' and 'Vault' overlap" in message
    assert "door [31, 11] is not on the edge of room 'Cupboard'" in message
    assert (OfficeMap.objects.count(), Room.objects.count(), Desk.objects.count(),
            ChatThread.objects.count()) == counts
    assert not OfficeMap.objects.filter(slug="broken").exists()


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda d: d["rooms"][2].update(members=["alice", "nobody-here"]), "unknown or inactive members: nobody-here"),
    (lambda d: d["map"].update(slug="test-hq"), "already exists"),
    (lambda d: d["desks"].append({"label": "In the wall", "x": 2, "y": 3, "owner": None}), "would stand on a wall"),
    (lambda d: d.update(version=2), "version"),
])
def test_an_import_is_refused_as_a_whole(furnished, people, client_of, change, fragment):
    dana = client_of(people["dana"])
    document = dana.get(f"/api/maps/{furnished['map'].id}/export/").json()
    document["map"].update(name="Elsewhere", slug="elsewhere")
    change(document)
    maps = OfficeMap.objects.count()
    response = dana.post("/api/maps/import/", document, content_type=JSON)
    assert response.status_code == 400
    assert fragment in json.dumps(response.json())
    assert OfficeMap.objects.count() == maps


def test_the_tiled_export_is_an_object_layer_per_kind_of_thing(furnished, people, client_of):
    tiled = client_of(people["dana"]).get(f"/api/maps/{furnished['map'].id}/export/tiled/").json()
    assert (tiled["type"], tiled["orientation"], tiled["width"], tiled["height"]) == ("map", "orthogonal", 40, 24)
    layers = {layer["name"]: layer for layer in tiled["layers"]}
    assert list(layers) == ["rooms", "doors", "desks"]
    assert all(layer["type"] == "objectgroup" for layer in layers.values())
    atlas = next(o for o in layers["rooms"]["objects"] if o["name"] == "Atlas")
    assert (atlas["type"], atlas["x"], atlas["y"], atlas["width"], atlas["height"]) == ("meeting", 64, 32, 288, 192)
    assert {"name": "capacity", "type": "int", "value": 3} in atlas["properties"]
    assert {(o["x"] // 32, o["y"] // 32) for o in layers["doors"]["objects"]} == {(6, 6), (20, 6)}
    assert [o["name"] for o in layers["desks"]["objects"]] == ["A1", "Free"]
    ids = [o["id"] for layer in tiled["layers"] for o in layer["objects"]]
    assert len(ids) == len(set(ids)) and tiled["nextobjectid"] == max(ids) + 1


# --- desks ---

def test_admins_place_move_give_and_remove_desks(office, people, client_of, sent_events,
                                                  django_capture_on_commit_callbacks):
    dana = client_of(people["dana"])
    # when dana places a desk
    with django_capture_on_commit_callbacks(execute=True):
        created = dana.post("/api/desks/", {"office_map": office["map"].id, "label": "D1", "x": 12, "y": 12},
                            content_type=JSON)
    # then it is on the map, and open maps and editors heard of it after the commit
    assert created.status_code == 201, created.json()
    desk = created.json()
    assert desk == {"id": desk["id"], "label": "D1", "x": 12, "y": 12, "owner": None}
    groups = [group for group, event in sent_events if event["type"] == "map.changed"]
    assert groups == [map_group(office["map"].id), map_editors_group(office["map"].id)]

    # when she moves it and gives it to bob
    moved = dana.patch(f"/api/desks/{desk['id']}/", {"x": 13, "owner": people["bob"].id}, content_type=JSON)
    assert moved.status_code == 200 and moved.json()["owner"] == people["bob"].id
    assert Desk.objects.get(pk=desk["id"]).x == 13

    # then a desk on a wall, on another desk's tile, off the map or for nobody known is refused with the reason
    on_wall = dana.patch(f"/api/desks/{desk['id']}/", {"x": 2, "y": 3}, content_type=JSON)
    assert on_wall.status_code == 400 and "would stand on a wall" in on_wall.json()["error"]["message"]
    dana.post("/api/desks/", {"office_map": office["map"].id, "label": "D2", "x": 14, "y": 12}, content_type=JSON)
    taken = dana.patch(f"/api/desks/{desk['id']}/", {"x": 14}, content_type=JSON)
    assert taken.status_code == 400 and "already exists" in json.dumps(taken.json())
    off_map = dana.patch(f"/api/desks/{desk['id']}/", {"x": 45}, content_type=JSON)
    assert off_map.status_code == 400 and "outside" in json.dumps(off_map.json())
    nobody = dana.patch(f"/api/desks/{desk['id']}/", {"owner": 999999}, content_type=JSON)
    assert nobody.status_code == 400 and "no such member" in json.dumps(nobody.json())
    assert Desk.objects.get(pk=desk["id"]).x == 13

    # when she removes it, it is gone
    assert dana.delete(f"/api/desks/{desk['id']}/").status_code == 204
    assert not Desk.objects.filter(pk=desk["id"]).exists()


def test_the_admin_site_places_desks_through_the_same_rules(office, people, client_of):
    dana = client_of(people["dana"])
    form = {"office_map": office["map"].id, "label": "Window", "x": 12, "y": 12, "owner": people["bob"].id}
    assert dana.post("/admin/rooms/desk/add/", form).status_code == 302
    desk = Desk.objects.get(label="Window")
    on_wall = dana.post(f"/admin/rooms/desk/{desk.id}/change/", {**form, "x": 2, "y": 3})
    assert on_wall.status_code == 200 and b"would stand on a wall" in on_wall.content
    moved = dana.post(f"/admin/rooms/desk/{desk.id}/change/", {**form, "x": 13})
    assert moved.status_code == 302
    assert (Desk.objects.get(pk=desk.id).x, Desk.objects.get(pk=desk.id).owner) == (13, people["bob"])


def test_members_may_not_edit_the_map(furnished, people, client_of):
    alice = client_of(people["alice"])
    map_id = furnished["map"].id
    desk = Desk.objects.get(label="A1")
    document = client_of(people["dana"]).get(f"/api/maps/{map_id}/export/").json()
    document["map"].update(slug="mine")
    refused = [
        alice.get(f"/api/maps/{map_id}/export/"),
        alice.get(f"/api/maps/{map_id}/export/tiled/"),
        alice.post("/api/maps/import/", document, content_type=JSON),
        alice.post("/api/desks/", {"office_map": map_id, "label": "Mine", "x": 12, "y": 12}, content_type=JSON),
        alice.patch(f"/api/desks/{desk.id}/", {"x": 12}, content_type=JSON),
        alice.delete(f"/api/desks/{desk.id}/"),
        alice.get(f"/office/{map_id}/edit/"),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert alice.get(f"/api/desks/{desk.id}/").json()["owner"] == people["alice"].id  # reading is fine
    assert Desk.objects.get(pk=desk.id).x == 4 and not OfficeMap.objects.filter(slug="mine").exists()


def test_the_editor_page_is_for_admins_and_the_map_links_to_it(office, people, client_of):
    dana, alice = client_of(people["dana"]), client_of(people["alice"])
    page = dana.get(f"/office/{office['map'].id}/edit/")
    assert page.status_code == 200
    assert b'id="editor-canvas"' in page.content and b"office/editor.js" in page.content
    assert dana.get("/office/999999/edit/").status_code == 404
    assert f'href="/office/{office["map"].id}/edit/"'.encode() in dana.get(f"/office/{office['map'].id}/").content
    assert b"map-edit-link" not in alice.get(f"/office/{office['map'].id}/").content


# --- the editor socket ---

async def editor_socket(user, map_id: int) -> WebsocketCommunicator:
    from office.asgi import application

    cookie = await database_sync_to_async(session_cookie)(user)
    communicator = WebsocketCommunicator(application, f"/ws/maps/{map_id}/edit/", headers=[
        (b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"), (b"cookie", cookie)])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@pytest.mark.django_db(transaction=True)
async def test_the_editor_socket_sends_the_layout_after_every_change(office, people):
    # given dana's editor open on the map
    dana = await editor_socket(people["dana"], office["map"].id)
    try:
        hello = json.loads(await dana.receive_from(3))
        assert hello["type"] == "hello" and hello["map"]["id"] == office["map"].id

        # when another admin adds a door to Atlas over REST (here: the service it calls)
        await database_sync_to_async(services.room_update)(room=office["atlas"], doors=[[6, 6], [4, 6]])

        # then the editor gets the new layout
        changed = json.loads(await dana.receive_from(3))
        atlas = next(r for r in changed["map"]["rooms"] if r["id"] == office["atlas"].id)
        assert changed["type"] == "map.changed" and atlas["doors"] == [[6, 6], [4, 6]]
        await dana.send_to(text_data='{"type":"ping"}')
        pong = json.loads(await dana.receive_from(3))
        for frame in (hello, changed, pong):
            assert_frame_matches(frame, "editor")
    finally:
        await dana.disconnect()

    # and a member is refused
    alice = await editor_socket(people["alice"], office["map"].id)
    refused = json.loads(await alice.receive_from(3))
    assert refused == {"type": "error", "code": "forbidden", "message": "only admins edit the map", "fatal": True}
    assert_frame_matches(refused, "editor")
    assert (await alice.receive_output(3))["code"] == 4403
    await alice.disconnect()
