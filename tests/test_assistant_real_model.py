"""The real embedded model (packaged Qwen2.5 0.5B GGUF on llama.cpp) behind the same client: the JSON
contract and the plumbing, through `manage.py llm_server` as `make run` starts it. Few and short."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from assistant import llm, meeting_notes, qa
from assistant.models import ModelCall
from assistant.services import knowledge_chunks_add
from office.embedded import free_port, port_in_use
from tests.assistant_fixtures import PLANNING, record_meeting

ROOT = Path(__file__).resolve().parent.parent


def _healthy(port: int) -> bool:
    if not port_in_use(port):
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def small_model_url():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "llm_server", "--tier", "small",
                             "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not _healthy(port):  # the port opens before the model has loaded (503 until then)
        assert proc.poll() is None, "the model server exited"
        assert time.monotonic() < deadline, "the model server did not start"
        time.sleep(0.3)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def real_model(settings, small_model_url):
    settings.LLM_BASE_URL = small_model_url
    settings.LLM_LARGE_BASE_URL = small_model_url  # one model for both tiers keeps the test short
    llm.reset_breakers()
    llm.set_client(None)
    qa.answer_cache.clear()
    yield
    llm.reset_breakers()


@pytest.mark.django_db
def test_action_items_from_the_real_model_follow_the_contract(real_model, office, people):
    meeting = record_meeting(office["atlas"], people, PLANNING[:5])
    items = meeting_notes.action_items_propose(meeting, writer="model")  # the model writes the ranked turns
    call = ModelCall.objects.filter(purpose="meeting.action_items").latest("id")
    assert call.status in ("ok", "repaired"), call.error
    assert call.completion_tokens > 0 and call.latency_ms > 0
    assert items, "the transcript has two clear commitments"
    for item in items:
        assert item.owner is None or item.owner in people.values()
        assert item.source_segment_ids and 0 < item.confidence <= 1


@pytest.mark.django_db
def test_question_answered_by_the_real_model_cites_a_given_source(real_model, office, people):
    knowledge_chunks_add([
        {"room": office["atlas"], "source_kind": "transcript", "source_id": "segment:1",
         "locator": {"meeting": 1, "seq": 1}, "text": "Carol Chen: the mobile app release ships on Friday."},
        {"room": office["atlas"], "source_kind": "chat", "source_id": "message:1",
         "locator": {"thread": 1, "seq": 1}, "text": "Bob Baker: lunch is pizza at noon."},
    ])
    result = qa.answer_question(user=people["bob"], question="When does the mobile app ship?")
    assert not result["unavailable"]
    call = ModelCall.objects.filter(purpose="knowledge.answer").latest("id")
    assert call.status in ("ok", "repaired"), call.error
    if result["found"]:
        assert result["citations"] and all(c["kind"] in ("transcript", "chat") for c in result["citations"])
    else:
        assert result["answer"] == qa.NOT_FOUND
