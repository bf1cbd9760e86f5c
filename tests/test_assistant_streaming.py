"""Streamed answers: the JSON-prefix reader, the streamed model call (scripted and over real HTTP),
`answer_question_stream`, and the server-sent-events endpoint under the test client and under ASGI."""

from __future__ import annotations

import json
import time

import pytest
from django.test import AsyncClient, Client, override_settings

from assistant import llm, qa
from assistant.llm import JsonFieldStream, partial_json_string
from assistant.models import ModelCall
from assistant.prompts import prompt
from assistant.services import knowledge_chunks_add
from assistant.testing import ScriptedTransport, by_purpose, serve_scripted_model
from tests.assistant_fixtures import (
    assistant_state_reset,  # noqa: F401 (a fixture)
    install,
    release_chunk,
    vault_memo_chunk,
)
from tests.conftest import client_for

ANSWER = {"answer": "It ships on Friday [1], once QA signs off.", "citations": [1], "found": True, "confidence": 0.9}
URL = "/api/assistant/ask/stream/"


pytestmark = pytest.mark.usefixtures("assistant_state_reset")


@pytest.fixture
def knowledge(office):
    return knowledge_chunks_add([release_chunk(office), vault_memo_chunk(office)])


def parse_sse(raw: bytes) -> list[dict]:
    """Events of a text/event-stream body; each `data` must be JSON whose type matches `event`."""
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        data = json.loads(fields["data"])
        assert data["type"] == fields["event"]
        events.append(data)
    return events


# --- the JSON-prefix reader ---

@pytest.mark.parametrize(("prefix", "expected"), [
    ("", None),
    ('{"answ', None),
    ('{"answer"', None),
    ('{"answer":', None),
    ('{"answer": "', ""),
    ('{"answer": "It ships', "It ships"),
    ('{"answer": "He said \\"Friday', 'He said "Friday'),
    ('{"answer": "one\\ntwo\\t', "one\ntwo\t"),
    ('{"answer": "cut \\', "cut "),  # an escape cut in two waits for its second half
    ('{"answer": "caf\\u00', "caf"),
    ('{"answer": "caf\\u00e9', "café"),
    ('{"answer": "smile \\ud83d', "smile "),  # half a surrogate pair waits too
    ('{"answer": "smile \\ud83d\\ude00', "smile \U0001F600"),
    ('{"answer": "back\\\\slash"', "back\\slash"),
    ('{"found": true, "citations": [1, 2], "answer": "After', "After"),
    ('{"note": "not the \\"answer\\": here", "answer": "real', "real"),
    ('{"meta": {"answer": "nested"}, "answer": "top', "top"),
    ('{"meta": {"answer": "nested', None),
    ('{\n  "confidence" : 0.5 ,\n  "answer" : "spaced', "spaced"),
    ('{"answer": 5', None),
    ('["answer", "x"]', None),
])
def test_the_answer_is_read_out_of_a_growing_json_prefix(prefix, expected):
    assert partial_json_string(prefix, "answer") == expected


def test_fed_in_any_pieces_the_field_text_only_grows_and_ends_exact():
    # given a reply with escapes, non-ASCII and the answer after other fields
    value = 'Line "one"\nTwo é \U0001F600 [1] \\ done.'
    for reply in (json.dumps({"found": True, "citations": [1], "answer": value, "confidence": 0.8}),
                  json.dumps({"answer": value, "found": True}, ensure_ascii=False, indent=2)):
        for size in (1, 2, 3, 7):
            # when it arrives in pieces of `size` characters
            reader = JsonFieldStream("answer")
            pieces = [reader.feed(reply[i:i + size]) for i in range(0, len(reply), size)]
            # then the pieces add up to the value, and every prefix read on the way was a prefix of it
            assert "".join(pieces) == value
            assert all(value.startswith("".join(pieces[:k])) for k in range(len(pieces)))


# --- the streamed model call ---

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
          "required": ["answer", "confidence"], "additionalProperties": False}


def stream(client, **kwargs):
    defaults = {"prompt": prompt("answer"), "variables": {"question": "When do we ship?", "sources": "[1] Friday."},
                "schema": SCHEMA, "purpose": "test.answer"}
    return list(client.chat_json_stream(**{**defaults, **kwargs}))


@pytest.mark.django_db
def test_a_streamed_call_yields_the_json_in_pieces_then_the_validated_result():
    transport = ScriptedTransport(lambda e, b: {"answer": "Friday [1]", "confidence": 0.9}, chunk_chars=5)
    *pieces, result = stream(llm.LLMClient(transport), input_ids={"chunks": [7]})
    assert len(pieces) > 3 and json.loads("".join(pieces)) == {"answer": "Friday [1]", "confidence": 0.9}
    assert result.data == {"answer": "Friday [1]", "confidence": 0.9}
    body = transport.requests[0][1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    call = ModelCall.objects.get()
    assert call == result.call and (call.status, call.input_ids) == ("ok", {"chunks": [7]})
    assert call.prompt_tokens > 0 and call.completion_tokens > 0 and call.confidence == 0.9


@pytest.mark.django_db
def test_an_invalid_stream_gets_one_unstreamed_repair_and_a_dead_server_trips_the_breaker():
    replies = iter(['{"answer": "Friday"}', '{"answer": "Friday", "confidence": 0.7}'])
    transport = ScriptedTransport(lambda e, b: next(replies))
    *_, result = stream(llm.LLMClient(transport))
    assert result.data["confidence"] == 0.7 and ModelCall.objects.get().status == "repaired"
    assert "stream" not in transport.requests[1][1]  # the repair is an ordinary call

    dead = llm.LLMClient(ScriptedTransport(lambda e, b: ConnectionError("refused")))
    for _ in range(3):  # LLM_BREAKER_FAILURES
        with pytest.raises(llm.LLMUnavailable):
            stream(dead)
    with pytest.raises(llm.LLMUnavailable, match="circuit open"):
        stream(dead)
    assert ModelCall.objects.filter(status="unavailable").count() == 4


@pytest.mark.django_db
def test_over_real_http_the_server_sent_chunks_are_read_as_they_come():
    # given an OpenAI-compatible server that streams chunked SSE, a piece every 50 ms
    reply = {"answer": "It ships on Friday [1].", "confidence": 0.9}
    with serve_scripted_model(lambda e, b: reply, chunk_chars=6, chunk_delay=0.05) as base_url, \
            override_settings(LLM_BASE_URL=base_url):
        client = llm.LLMClient()  # the real HttpTransport
        started, arrivals = time.monotonic(), []
        for item in client.chat_json_stream(prompt=prompt("answer"), schema=SCHEMA, purpose="test.answer",
                                            variables={"question": "When?", "sources": "[1] Friday."}):
            arrivals.append((time.monotonic() - started, item))
    # then the pieces arrived one by one (the first long before the last), and the result is valid
    *pieces, (_, result) = arrivals
    assert "".join(p for _, p in pieces) == json.dumps(reply)
    assert pieces[0][0] < pieces[-1][0] - 0.3
    assert result.data == reply and result.call.completion_tokens > 0

    # and with the server gone, the stream is one clean LLMUnavailable
    with override_settings(LLM_BASE_URL=base_url), pytest.raises(llm.LLMUnavailable):
        stream(llm.LLMClient())


# --- answer_question_stream ---

@pytest.mark.django_db
def test_the_stream_shows_sources_then_the_answer_as_written_then_what_ask_returns(people, knowledge):
    # given a model that writes the answer a few characters at a time
    transport = install(by_purpose(knowledge_answer=ANSWER), chunk_chars=6)
    # when bob asks through the stream
    events = list(qa.answer_question_stream(user=people["bob"], question="When does the mobile app ship?"))
    # then: the sources first, then several deltas, then done
    assert events[0] == {"type": "sources", "count": 1}
    deltas = [e["text"] for e in events[1:-1]]
    assert all(e["type"] == "delta" for e in events[1:-1]) and len(deltas) >= 4
    done = events[-1]
    assert done["type"] == "done" and done["found"] is True
    # the deltas add up to the final answer's text
    assert "".join(deltas) == done["answer"] == ANSWER["answer"]
    assert done["citations"][0]["url"] == "/meetings/1/#seg-4"
    assert transport.requests[0][0] == "small" and transport.requests[0][1]["stream"] is True

    # and the same question unstreamed gives the same answer (only the model call differs)
    qa.answer_cache.clear()
    asked = qa.answer_question(user=people["bob"], question="When does the mobile app ship?")
    streamed = {k: v for k, v in done.items() if k != "type"}
    assert streamed.pop("model_call") != asked.pop("model_call")
    assert streamed == asked


@pytest.mark.django_db
def test_the_stream_keeps_the_not_found_rule_the_cache_and_the_degraded_answer(people, office, knowledge):
    # given a model that cites a source it was not given
    install(by_purpose(knowledge_answer={**ANSWER, "answer": "Tuesday [7].", "citations": [7]}))
    events = list(qa.answer_question_stream(user=people["bob"], question="When does the app ship?"))
    # then the text it wrote streamed, but the result is "not found"
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Tuesday [7]."
    assert events[-1]["found"] is False and events[-1]["answer"] == qa.NOT_FOUND
    # and asking again is answered from the cache, without the model
    transport = install(by_purpose())
    again = list(qa.answer_question_stream(user=people["bob"], question="When does the app ship?"))
    assert [e["type"] for e in again] == ["sources", "done"] and again[-1]["cached"] is True
    assert transport.requests == []

    # when no model answers, the closest passage comes back as answer_question gives it
    qa.answer_cache.clear()
    events = list(qa.answer_question_stream(user=people["bob"], question="When does the mobile app ship?"))
    assert [e["type"] for e in events] == ["sources", "done"]
    assert events[-1]["unavailable"] is True and "ships on Friday" in events[-1]["citations"][0]["text"]

    # and bad questions are an error event before any model call
    asked_so_far = len(transport.requests)
    assert list(qa.answer_question_stream(user=people["bob"], question="  ")) == [
        {"type": "error", "message": "ask a question"}]
    assert list(qa.answer_question_stream(user=people["bob"], question="Northwind?", room_id=office["vault"].pk)) == [
        {"type": "error", "message": "no such room"}]
    assert len(transport.requests) == asked_so_far


# --- the endpoint ---

@pytest.mark.django_db
def test_the_endpoint_streams_server_sent_events(people, knowledge):
    install(by_purpose(knowledge_answer=ANSWER), chunk_chars=6)
    # when bob asks through the stream endpoint
    r = client_for(people["bob"]).post(URL, {"question": "When does the mobile app ship?"},
                                       content_type="application/json", headers={"Accept": "text/event-stream"})
    # then it is an uncached event stream
    assert r.status_code == 200 and r.streaming
    assert r["Content-Type"] == "text/event-stream"
    assert r["Cache-Control"] == "no-cache" and r["X-Accel-Buffering"] == "no"
    events = parse_sse(b"".join(r.streaming_content))
    assert events[0] == {"type": "sources", "count": 1}
    assert "".join(e["text"] for e in events if e["type"] == "delta") == ANSWER["answer"]
    assert events[-1]["type"] == "done" and events[-1]["citations"][0]["url"] == "/meetings/1/#seg-4"


@pytest.mark.django_db
def test_bad_questions_are_json_errors_before_any_stream(people):
    bob = client_for(people["bob"])
    for body in ({"question": ""}, {"question": "   "}, {"question": "x" * 501}, {}):
        r = bob.post(URL, body, content_type="application/json", headers={"Accept": "text/event-stream"})
        assert r.status_code == 400 and not r.streaming and "error" in r.json()
    assert Client().post(URL, {"question": "hi"}, content_type="application/json").status_code in (401, 403)


@pytest.mark.django_db
def test_bob_gets_no_sources_from_the_vault_by_streaming(people, office, knowledge):
    transport = install(by_purpose(knowledge_answer={"answer": "No idea.", "citations": [], "found": False,
                                                     "confidence": 0.9}))
    bob = client_for(people["bob"])
    # when bob names the vault, which he may not enter: 404 before any event
    r = bob.post(URL, {"question": "Northwind acquisition", "room": office["vault"].pk},
                 content_type="application/json")
    assert r.status_code == 404 and not r.streaming
    # when he asks about it across his rooms, nothing from the vault is streamed or shown to the model
    r = bob.post(URL, {"question": "When does the Northwind acquisition close and at what price?"},
                 content_type="application/json")
    raw = b"".join(r.streaming_content)
    events = parse_sse(raw)
    assert events[0]["type"] == "sources" and events[-1]["found"] is False
    assert b"40 million" not in raw and b"March 3" not in raw
    assert all("40 million" not in p for p in transport.prompts())
    # while alice, a vault member, gets the page cited
    install(by_purpose(knowledge_answer={"answer": "March 3 [1].", "citations": [1], "found": True,
                                         "confidence": 0.9}))
    r = client_for(people["alice"]).post(URL, {"question": "When does Northwind close?", "room": office["vault"].pk},
                                         content_type="application/json")
    done = parse_sse(b"".join(r.streaming_content))[-1]
    assert done["found"] and done["citations"][0]["url"] == "/documents/9/?page=1#page-1"


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_first_words_arrive_before_the_model_finishes(people, knowledge):
    # given a model that takes 150 ms per piece (about 2 s for the whole reply)
    install(by_purpose(knowledge_answer=ANSWER), chunk_chars=8, chunk_delay=0.15)
    client = AsyncClient()
    await client.aforce_login(people["bob"])
    # when bob asks through the ASGI handler, as under Daphne
    started = time.monotonic()
    r = await client.post(URL, {"question": "When does the mobile app ship?"}, content_type="application/json")
    assert r.status_code == 200 and r["Content-Type"] == "text/event-stream"
    arrivals = []
    async for part in r.streaming_content:
        arrivals.append((time.monotonic() - started, parse_sse(part)))
    # then each event came as its own part, the first delta long before the done event
    events = [e for _, batch in arrivals for e in batch]
    assert [e["type"] for e in events][:2] == ["sources", "delta"] and events[-1]["type"] == "done"
    first_delta = next(t for t, batch in arrivals if batch[0]["type"] == "delta")
    done_at = arrivals[-1][0]
    assert done_at - first_delta > 1.0
    assert "".join(e["text"] for e in events if e["type"] == "delta") == events[-1]["answer"]
