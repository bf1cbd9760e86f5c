"""The model client: JSON contract, one repair, breaker, tiers, cache, records, redaction."""

from __future__ import annotations

import json

import pytest

from assistant import llm
from assistant.models import ModelCall
from assistant.prompts import prompt
from assistant.testing import ScriptedTransport

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
          "required": ["answer", "confidence"], "additionalProperties": False}


@pytest.fixture(autouse=True)
def _fresh_breakers():
    llm.reset_breakers()
    yield
    llm.reset_breakers()


def ask(client, **kwargs):
    defaults = {"prompt": prompt("answer"), "variables": {"question": "When do we ship?", "sources": "[1] Friday."},
                "schema": SCHEMA, "purpose": "test.answer"}
    return client.chat_json(**{**defaults, **kwargs})


@pytest.mark.django_db
def test_valid_json_is_returned_and_the_call_recorded():
    transport = ScriptedTransport(lambda e, b: {"answer": "Friday [1]", "confidence": 0.9})
    result = ask(llm.LLMClient(transport), input_ids={"chunks": [7]})
    assert result.data == {"answer": "Friday [1]", "confidence": 0.9}
    call = ModelCall.objects.get()
    assert (call.status, call.prompt_name, call.prompt_version, call.input_ids) == ("ok", "answer", "v2", {"chunks": [7]})
    assert call.model_id and call.prompt_tokens > 0 and call.confidence == 0.9
    body = transport.requests[0][1]
    assert body["response_format"]["type"] == "json_schema" and body["response_format"]["json_schema"]["schema"] == SCHEMA


@pytest.mark.django_db
def test_invalid_output_gets_one_repair_then_fails_cleanly():
    replies = iter(['{"answer": "Friday"}', '{"answer": "Friday", "confidence": 0.7}'])
    transport = ScriptedTransport(lambda e, b: next(replies))
    result = ask(llm.LLMClient(transport))
    assert result.data["confidence"] == 0.7
    repair = transport.requests[1][1]["messages"][-1]["content"]
    assert "invalid" in repair and "confidence" in repair
    assert ModelCall.objects.get().status == "repaired"

    broken = ScriptedTransport(lambda e, b: "not json at all")
    with pytest.raises(llm.LLMOutputInvalid):
        ask(llm.LLMClient(broken))
    assert len(broken.requests) == 2
    assert ModelCall.objects.filter(status="invalid").count() == 1


@pytest.mark.django_db
def test_breaker_opens_after_failures_and_stops_calling(settings):
    settings.LLM_BREAKER_FAILURES = 2
    transport = ScriptedTransport(lambda e, b: ConnectionRefusedError("down"))
    client = llm.LLMClient(transport)
    for _ in range(2):
        with pytest.raises(llm.LLMUnavailable):
            ask(client)
    with pytest.raises(llm.LLMUnavailable, match="circuit open"):
        ask(client)
    assert len(transport.requests) == 2  # the third call never reached the server
    assert ModelCall.objects.filter(status="unavailable").count() == 3


@pytest.mark.django_db
def test_an_open_breaker_is_seen_by_every_process(settings):
    """The breaker's state lives in Redis: a process that never called the server (here: this one
    after forgetting its breaker objects) sees it open too, and does not call."""
    settings.LLM_BREAKER_FAILURES = 2
    transport = ScriptedTransport(lambda e, b: ConnectionRefusedError("down"))
    for _ in range(2):
        with pytest.raises(llm.LLMUnavailable):
            ask(llm.LLMClient(transport))
    with llm._breakers_lock:
        llm._breakers.clear()  # another process: no breaker objects of its own yet
    assert llm.breaker_for(llm.endpoint_for("small")).current_state == "open"
    fresh = ScriptedTransport(lambda e, b: ConnectionRefusedError("down"))
    with pytest.raises(llm.LLMUnavailable, match="circuit open"):
        ask(llm.LLMClient(fresh))
    assert fresh.requests == []
    llm.reset_breakers()  # and forgetting them clears the shared state
    assert llm.breaker_for(llm.endpoint_for("small")).current_state == "closed"


@pytest.mark.django_db
def test_real_http_transport_to_a_dead_port_is_unavailable_not_an_error(settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    settings.LLM_TIMEOUT_SECONDS = 2
    with pytest.raises(llm.LLMUnavailable):
        ask(llm.LLMClient())


@pytest.mark.django_db
def test_low_confidence_escalates_to_the_large_tier(settings):
    settings.LLM_ESCALATE_BELOW = 0.5
    transport = ScriptedTransport(lambda e, b: {"answer": e.tier, "confidence": 0.2 if e.tier == "small" else 0.8})
    result = llm.LLMClient(transport).chat_json_tiered(
        prompt=prompt("answer"), variables={"question": "q", "sources": "s"}, schema=SCHEMA, purpose="test.answer")
    assert result.data["answer"] == "large"
    calls = list(ModelCall.objects.order_by("id"))
    assert [c.tier for c in calls] == ["small", "large"] and calls[1].escalated_from_id == calls[0].id

    confident = ScriptedTransport(lambda e, b: {"answer": e.tier, "confidence": 0.9})
    result = llm.LLMClient(confident).chat_json_tiered(
        prompt=prompt("answer"), variables={"question": "q", "sources": "s"}, schema=SCHEMA, purpose="test.answer")
    assert result.data["answer"] == "small" and len(confident.requests) == 1


@pytest.mark.django_db
def test_repeated_question_is_served_from_the_cache():
    transport = ScriptedTransport(lambda e, b: {"answer": "Friday", "confidence": 0.9})
    client = llm.LLMClient(transport)
    first = ask(client, use_cache=True)
    second = ask(client, use_cache=True)
    assert not first.cached and second.cached and second.data == first.data
    assert len(transport.requests) == 1
    assert ModelCall.objects.filter(status="cached").count() == 1


@pytest.mark.django_db
def test_external_endpoint_sees_masked_text_and_the_reader_gets_it_back(settings):
    settings.LLM_EXTERNAL = True

    def echo(endpoint, body):
        user = body["messages"][-1]["content"]
        return {"answer": user[user.index("Question:"):], "confidence": 0.9}

    transport = ScriptedTransport(echo)
    question = "Should we call Grace Hopper at +1 415 555 0123 or mail grace@example.com? Alice Archer asks."
    result = ask(llm.LLMClient(transport), variables={"question": question, "sources": "[1] card 4111 1111 1111 1111"},
                 known_names=["Alice Archer", "Bob Baker"])
    sent = json.dumps(transport.requests[0][1])
    for secret in ("Grace Hopper", "415 555 0123", "grace@example.com", "4111 1111 1111 1111"):
        assert secret not in sent
    assert "Alice Archer" in sent  # org members stay: owners must be assignable
    assert "Grace Hopper" in result.data["answer"] and "grace@example.com" in result.data["answer"]
    assert ModelCall.objects.get().redacted is True
