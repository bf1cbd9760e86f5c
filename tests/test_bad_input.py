"""Control characters (NUL above all) are refused with a 400 that says where, at every entry: query
strings, headers, form fields, JSON bodies, socket frames. Before, a NUL reached PostgreSQL (which
refuses it in text) and came back as a 500."""

from __future__ import annotations

import io

import pytest
from rest_framework.exceptions import ParseError

from automation.models import Task
from office.drf import SafeJSONParser
from rooms.protocol import ProtocolError, parse_client_frame

pytestmark = pytest.mark.django_db


def test_a_nul_in_a_query_string_is_a_400_with_where_not_a_500(people, client_of):
    alice = client_of(people["alice"])
    r = alice.get("/api/tickets/?status=%00")
    assert r.status_code == 400
    assert "query parameter 'status'" in r.json()["error"]["message"]
    page = alice.get("/tasks/?tab=%01mine")
    assert page.status_code == 400 and "control characters" in page.content.decode()
    assert alice.get("/api/tickets/?status=open").status_code == 200  # and clean ones still work


def test_control_characters_in_a_header_are_refused(people, client_of):
    r = client_of(people["alice"]).get("/api/tickets/", headers={"X-Note": "a\x01b"})
    assert r.status_code == 400 and "header X-Note" in r.json()["error"]["message"]


def test_json_and_form_bodies_with_nul_store_nothing_but_text_with_tabs_and_newlines_does(people, client_of):
    alice = client_of(people["alice"])
    r = alice.post("/api/tasks/", {"title": "Order\u0000 chairs"}, content_type="application/json")
    assert r.status_code == 400 and "JSON field title" in r.json()["error"]["message"]
    form = alice.post("/tasks/new/", {"title": "Order\x00 desks"})
    assert form.status_code == 400 and "form field 'title'" in form.content.decode()
    assert not Task.objects.filter(title__startswith="Order").exists()

    ok = alice.post("/api/tasks/", {"title": "Order lamps", "description": "two:\n\tone per desk\r\n"},
                    content_type="application/json")
    assert ok.status_code == 201 and Task.objects.get(title="Order lamps").description.startswith("two:\n\t")


def test_the_api_parser_refuses_control_characters_even_without_the_middleware():
    with pytest.raises(ParseError, match="JSON field items\\[1\\].name"):
        SafeJSONParser().parse(io.BytesIO(b'{"items": [{"name": "ok"}, {"name": "a\\u0007"}]}'))


def test_a_socket_frame_with_a_nul_is_a_bad_field_error_naming_the_field():
    with pytest.raises(ProtocolError) as refused:
        parse_client_frame('{"type": "chat.send", "thread": 1, "body": "hello\\u0000"}')
    assert refused.value.code == "bad_field" and "body" in refused.value.message
    frame_type, payload = parse_client_frame('{"type": "chat.send", "thread": 1, "body": "two\\nlines"}')
    assert payload["body"] == "two\nlines"


def test_half_a_surrogate_pair_in_json_is_refused_like_a_control_character(people, client_of):
    # given a JSON escape that decodes to a lone surrogate, which PostgreSQL cannot store (a 500 before)
    body = b'{"title": "Order \\ud800 chairs"}'
    # when it is posted, then it is a 400 that says where, and nothing is stored
    r = client_of(people["alice"]).post("/api/tasks/", body, content_type="application/json")
    assert r.status_code == 400 and "JSON field title" in r.json()["error"]["message"]
    with pytest.raises(ProtocolError):
        parse_client_frame('{"type": "chat.send", "thread": 1, "body": "\\ud800"}')
    assert not Task.objects.filter(title__startswith="Order").exists()


def test_ids_in_query_strings_that_int_or_the_database_refuse_are_a_400(people, client_of):
    # "²" passes str.isdigit() but not int(); 5000 digits pass neither int() nor bigint (500s before)
    alice = client_of(people["alice"])
    for url in ("/api/rooms/?map=²", "/api/meetings/?room=" + "9" * 5000, "/api/iot/occupancy/?map=" + "9" * 30,
                "/api/action-items/?room=²", "/api/assistant/jobs/00000000-0000-0000-0000-000000000000/?wait=²"):
        assert alice.get(url).status_code == 400, url
    assert alice.get("/api/iot/sensors/?room=²").status_code == 200  # this list ignores a bad filter
