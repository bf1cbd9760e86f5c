"""Every operation of the OpenAPI schema, fuzzed with schemathesis and sent in-process to the Django
app (WSGI, no network). The rules: never a server error (5xx); every status code, content type and
body as the schema documents it; control characters anywhere are a 400 (office.input_checks).

Per operation: schemathesis' coverage cases (boundaries, each field missing, wrong types, values
outside enums and formats), then one valid request with each parameter, body field and a header in
turn set to each hostile value below, then a few Hypothesis examples in both of schemathesis' modes
(data that fits the schema and data that does not); path ids often name objects that exist. Sent as
alice (a member, with a write token) until she is refused (403), then as dana (an admin), so
admin-only operations get past their permission check too; every eighth also with no credentials.

Bounded and reproducible: capped counts, derandomized, no shrinking. Each operation is a test of its
own on a rolled-back savepoint (and each request in a savepoint rolled back) inside the module's
transaction that holds the objects, so nothing the fuzz writes reaches other operations or tests."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import sys
import traceback

import pytest
import schemathesis
from django.core.signals import got_request_exception, request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from assistant.models import ActionItem
from automation.services import task_create, ticket_open
from iot import services as iot_services
from rooms import services
from tests.assistant_fixtures import record_meeting

pytestmark = pytest.mark.django_db

COVERAGE_CASES_PER_OPERATION = 40
FUZZED_CASES_PER_OPERATION = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]

# Server-sent event streams: a valid request streams a model's answer (or catch-up) until the model is
# done, which a bounded in-process run cannot wait for. Their bad input (400/404/429 before the
# stream starts) goes through the same checks (`_asked`, `_catch_up_room`) as the job endpoints here.
NOT_FUZZED = {
    ("POST", "/api/assistant/ask/stream/"),
    ("GET", "/api/rooms/{room_id}/catch-up/stream/"),
}

# Values that have turned into server errors elsewhere: digits Python's int() refuses ("²" passes
# str.isdigit()), more digits than int() reads, numbers past PostgreSQL's bigint, control characters.
HOSTILE_TEXT = {
    "superscript digit": "²", "5000 digits": "9" * 5000, "past bigint": "9" * 25, "negative": "-1",
    "Arabic-Indic digits": "١٢", "empty": "", "NUL": "1\x00", "control character": "a\x1fb",
}
# (Wrong types, nulls and missing fields come from schemathesis' coverage cases already.)
HOSTILE_JSON = {**HOSTILE_TEXT, "number past bigint": 2**70, "number below bigint": -(2**63) - 1,
                "long text": "x" * 20_000}
CONTROL = {"NUL", "control character"}

RAW_SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
API = schemathesis.openapi.from_dict(copy.deepcopy(RAW_SCHEMA))
API.app = get_wsgi_application()
OPERATIONS = sorted((op.method.upper(), op.path) for result in API.get_all_operations() if (op := result.ok()))


@pytest.fixture
def in_process_requests():
    """Django ends each request by closing "old" database connections, the test transaction's own
    included; its test client stops that while it runs a request, and so must this fuzz."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Alice (a member) and dana (an admin), each with a write token, and one of each thing a path can
    name, so that part of the fuzz reaches real objects rather than only 404s. Built once for the
    module, in a transaction rolled back at its end; each operation's test runs in a savepoint inside
    it (pytest-django's), rolled back after the test, so every operation meets the same objects."""
    with django_db_blocker.unblock(), transaction.atomic():
        try:
            yield _build_world()
        finally:
            transaction.set_rollback(True)


def _build_world() -> dict:
    people = {name: services.member_create(username=name, password="office-test-pass-1", admin=name == "dana")
              for name in ("alice", "bob", "carol", "dana")}
    alice = people["alice"]
    hq = services.office_map_create(name="Fuzz HQ", slug="fuzz-hq", width=40, height=24, spawn_x=10, spawn_y=15)
    atlas = services.room_create(office_map=hq, name="Atlas", kind="meeting", x=2, y=1, width=9, height=6,
                                 doors=[[6, 6]], capacity=3, assistant_enabled=True)
    vault = services.room_create(office_map=hq, name="Vault", kind="private", x=16, y=1, width=9, height=6,
                                 doors=[[20, 6]])
    services.room_set_members(room=vault, user_ids=[alice.pk])
    desk = services.desk_create(office_map=hq, label="A1", x=12, y=12, owner=alice)
    services.chat_message_send(user=alice, thread_id=atlas.chat_thread.pk, body="hello")
    direct, _ = services.direct_thread_open(user=alice, other_user_id=people["bob"].pk)
    task = task_create(title="Order chairs", actor=alice, owner=alice, room=atlas)
    ticket, _ = ticket_open(kind="facilities", room=atlas, severity="low", title="Door squeaks", detail="",
                            source="fuzz", dedupe_key="fuzz-door", actor_label="fuzz")
    meeting = record_meeting(atlas, people, [("alice", "Bob, send the deck by Friday."), ("bob", "Will do.")])
    item = ActionItem.objects.create(room=atlas, meeting=meeting, text="Send the deck", confidence=0.8,
                                     speaker=alice, model_id="rules", prompt_version="rules.v1", dedupe_key="deck")
    sensor, _ = iot_services.sensor_create(room=atlas, kind="occupancy", name="Atlas counter", device_id="atlas-1")
    rule = iot_services.rule_create(name="Atlas projector", scope="room", room=atlas, sensor_kind="projector",
                                    op="in", value=["offline"], for_seconds=30)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    booking = iot_services.booking_create(user=alice, room=atlas, title="Planning", start=start,
                                          end=start + dt.timedelta(hours=1))
    agenda, _ = iot_services.agenda_post_for_booking(booking_id=booking.pk)
    return {
        "alice": f"Bearer {services.api_token_create(user=alice, name='fuzz', scope='write')[1]}",
        "dana": f"Bearer {services.api_token_create(user=people['dana'], name='fuzz', scope='write')[1]}",
        "ids": {
            "map_id": [hq.pk], "room_id": [atlas.pk, vault.pk], "thread_id": [atlas.chat_thread.pk, direct.pk],
            "task_id": [task.pk], "ticket_id": [ticket.pk], "meeting_id": [meeting.pk], "item_id": [item.pk],
            "sensor_id": [sensor.pk], "rule_id": [rule.pk], "booking_id": [booking.pk], "desk_id": [desk.pk],
            "agenda_id": [agenda.pk],
            "date": [dt.date.today().isoformat()],
        },
    }


def _aim_at_real_objects(case, ids: dict, pick) -> None:
    """Path parameters that name an object that exists, where `pick` (a choice from a list) says so."""
    for name in case.path_parameters or {}:
        if name in ids and (choice := pick([None, *ids[name]])) is not None:
            case.path_parameters[name] = choice


def _without_long_waits(case) -> None:
    """`?wait=N` (N up to 10) holds the answer until the assistant worker finishes the job. None runs
    here, so a valid N only sleeps N seconds, then answers the documented 504; invalid values (a 400,
    the interesting ones) are kept."""
    if case.query and str(case.query.get("wait")) in {str(n) for n in range(1, 11)}:
        case.query["wait"] = 0


class Fuzz:
    """Sends cases the way this file's docstring says and keeps every failure, with the exception
    behind a server error. Each request runs in a savepoint that is rolled back: every case meets the
    same objects, and a database error in one does not poison the next."""

    def __init__(self, world):
        self.world = world
        self.member = "alice"
        self.sent = itertools.count()
        self.failures: list[str] = []
        self.raised: list[BaseException] = []

    def send(self, case, *, refused_as: int | None = None) -> None:
        """Send `case` as alice, again as dana if alice may not, and now and then anonymously too;
        `refused_as`: the status it must get (control characters are a 400 for anyone)."""
        _without_long_waits(case)
        n = next(self.sent)
        if self._send_as(case, self.member, refused_as) == 403 and self.member == "alice":
            self.member = "dana"  # an admin-only operation (or object): the rest go as dana
            self._send_as(case, "dana", refused_as)
        if n % 8 == 0:
            self._send_as(case, None, refused_as)

    def _send_as(self, case, who: str | None, refused_as: int | None) -> int:
        self.raised.clear()
        got_request_exception.connect(self._note_exception)
        try:
            with transaction.atomic():
                response = case.call(headers={"Authorization": self.world[who]} if who else {})
                transaction.set_rollback(True)
        finally:
            got_request_exception.disconnect(self._note_exception)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as failure:
            cause = "".join(traceback.format_exception(self.raised[-1])[-6:]) if self.raised else ""
            self.failures.append(f"as {who or 'anonymous'}: {failure}\n{cause}")
        if refused_as is not None and response.status_code != refused_as:
            self.failures.append(f"as {who or 'anonymous'}: {response.status_code} instead of {refused_as} for "
                                 f"{case.as_curl_command()[:300]}")
        return response.status_code

    def _note_exception(self, sender, request=None, **kwargs) -> None:
        if (exc := sys.exc_info()[1]) is not None:
            self.raised.append(exc)


def _coverage_cases(operation, modes: list[GenerationMode]):
    return CoverageGenerator(
        operation=operation, generation_modes=modes,
        generation_config=API.config.generation_for(operation=operation, phase="coverage"),
        auth_storage=None, override=Override(), feedback=FeedbackSources(),
    )


def _hostile_cases(operation, ids: dict):
    """A valid request (aimed at real objects) with one parameter, body field or header at a time
    replaced by each hostile value: (case, the status it must get or None)."""
    base = next(case for case in _coverage_cases(operation, [GenerationMode.POSITIVE])
                if case.method.upper() == operation.method.upper())
    _aim_at_real_objects(base, ids, lambda choices: choices[1])
    raw = RAW_SCHEMA["paths"][operation.path][operation.method.lower()]
    json_body = base.media_type == "application/json" and isinstance(base.body, dict)

    def variant(**changes):
        parts = {"path_parameters": base.path_parameters, "query": base.query, "body": base.body,
                 "headers": base.headers}
        parts = copy.deepcopy({key: value for key, value in parts.items() if value not in (None, NOT_SET)})
        for part, (name, value) in changes.items():
            parts[part] = {**parts.get(part, {}), name: value}
        return operation.Case(**parts, **({"media_type": base.media_type} if base.media_type else {}))

    for parameter in raw.get("parameters", []):
        part = {"path": "path_parameters", "query": "query"}[parameter["in"]]
        for label, value in HOSTILE_TEXT.items():
            if part == "path_parameters" and value == "":
                continue  # `/api/rooms//` is another operation's path
            yield variant(**{part: (parameter["name"], value)}), 400 if label in CONTROL else None
    body_fields = _body_fields(raw) if base.body is not NOT_SET else []
    for field in body_fields:
        for label, value in (HOSTILE_JSON if json_body else HOSTILE_TEXT).items():
            yield variant(body=(field, value)), 400 if label in CONTROL else None
    yield variant(headers=("X-Note", "a\x01b")), 400


def _body_fields(raw_operation: dict) -> list[str]:
    for content in raw_operation.get("requestBody", {}).get("content", {}).values():
        component = content["schema"].get("$ref", "").rsplit("/", 1)[-1]
        return list(RAW_SCHEMA["components"]["schemas"].get(component, {}).get("properties", {}))
    return []


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_operation_answers_a_server_error(method, path, world, in_process_requests):
    if (method, path) in NOT_FUZZED:
        pytest.skip("an event stream that waits for a model (see NOT_FUZZED)")
    operation = API[path][method]
    fuzz = Fuzz(world)

    coverage = itertools.islice(_coverage_cases(operation, MODES), COVERAGE_CASES_PER_OPERATION)
    for n, case in enumerate(coverage):
        _aim_at_real_objects(case, world["ids"], lambda choices, n=n: choices[n % len(choices)])
        fuzz.send(case)

    for case, refused_as in _hostile_cases(operation, world["ids"]):
        fuzz.send(case, refused_as=refused_as)

    @settings(max_examples=FUZZED_CASES_PER_OPERATION, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=st.one_of([operation.as_strategy(generation_mode=mode) for mode in MODES]), data=st.data())
    def fuzzed(case, data):
        _aim_at_real_objects(case, world["ids"], lambda choices: data.draw(st.sampled_from(choices)))
        fuzz.send(case)

    fuzzed()
    assert not fuzz.failures, f"{len(fuzz.failures)} failures:\n\n" + "\n\n".join(fuzz.failures[:10])
