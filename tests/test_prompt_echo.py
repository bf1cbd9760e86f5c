"""Small local models copy what a prompt shows them: placeholder prose inside a JSON skeleton ("one or
two sentences") came back as the answer. The prompts show a real example instead, and nothing the
prompt itself says may end up stored as a meeting's notes, its action items or an answer."""

from __future__ import annotations

import json
import re

import pytest

from assistant import llm, meeting_notes, qa
from assistant.item_writer import echoes_prompt
from assistant.models import ActionItem, MeetingSummary
from assistant.prompts import PROMPT_DIR, Prompt, prompt
from assistant.services import knowledge_chunks_add
from assistant.testing import ScriptedTransport, by_purpose
from tests.assistant_fixtures import PLANNING, record_meeting

PLACEHOLDER = re.compile(
    r"\bsentences?\b|\bwords\b|\bunder \d+|\b0 to 1\b|\bimperative\b|\bshort phrases?\b|\ba listed person\b"
    r"|\bor empty\b|\btrue or false\b|\bkeywords?\b|\bnumbers? of\b|\bmost important\b",
    re.I,
)
_NAME = re.compile(r"^(?P<name>[a-z_]+)\.v\d+\.txt$")


def newest_prompts() -> list[Prompt]:
    names = sorted({m["name"] for path in PROMPT_DIR.glob("*.txt") if (m := _NAME.match(path.name))})
    return [prompt(name) for name in names]


def static_parts(p: Prompt) -> list[str]:
    """The prompt's own words: its system and user text with the `$name` placeholders cut out."""
    return [part.replace("$$", "$") for text in (p.system, p.user) for part in re.split(r"(?<!\$)\$\w+", text)]


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:)?')


def braces(text: str) -> list[str]:
    """Every outermost `{...}` of the text: JSON examples and skeletons alike."""
    found, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth, start = depth + 1, (i if depth == 0 else start)
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                found.append(text[start:i + 1])
    return found


def json_strings(text: str) -> list[str]:
    """Every quoted string value (not a key) inside a `{...}` of the text."""
    return [m[1] for block in braces(text) for m in _QUOTED.finditer(block) if not m[2]]


def bare_prose(text: str) -> list[str]:
    """Unquoted words inside a `{...}` (`[source numbers used]`, `0 to 1`): real JSON has none but true/false/null."""
    words = [w for block in braces(text) for w in re.findall(r"[A-Za-z]+", _QUOTED.sub("", block))]
    return [w for w in words if w not in ("true", "false", "null")]


def described_fields(text: str) -> list[str]:
    """Field descriptions in a bracket after a quoted name: `"summary" (2-3 sentences ...)`."""
    return [d for d in re.findall(r'"[a-z_]+"\s*\(([^)]*)\)', text) if PLACEHOLDER.search(d)]


def echoes_any_prompt(text: str) -> bool:
    return any(echoes_prompt(text, part) for p in newest_prompts() for part in static_parts(p))


# --- the prompt files ---

@pytest.mark.parametrize("p", newest_prompts(), ids=lambda p: f"{p.name}.{p.version}")
def test_no_json_value_in_a_prompt_is_a_placeholder_description(p):
    text = p.system + "\n" + p.user
    described = [v for v in json_strings(text) if PLACEHOLDER.search(v)] + described_fields(text)
    assert described == [], f"{p.name}.{p.version} shows placeholder prose a model would copy: {described}"
    assert bare_prose(text) == [], f"{p.name}.{p.version} has a JSON skeleton with prose in it"


@pytest.mark.parametrize("p", newest_prompts(), ids=lambda p: f"{p.name}.{p.version}")
def test_every_json_example_in_a_prompt_is_real_json(p):
    examples = re.findall(r"^Answer: (\{.*\})$", p.system, re.M)
    for example in examples:
        json.loads(example)


def test_the_placeholder_check_catches_the_old_prose():
    old = 'Write JSON: {"answer": "one or two sentences", "citations": [source numbers used], "found": true or false}'
    assert [v for v in json_strings(old) if PLACEHOLDER.search(v)] == ["one or two sentences"]
    assert bare_prose(old) == ["source", "numbers", "used", "or"]
    assert described_fields('Write JSON with: "summary" (2-3 sentences about the excerpt), "topics" (keywords)') == [
        "2-3 sentences about the excerpt", "keywords"]
    real = 'Answer: {"answer": "It ships on Friday [1].", "citations": [1], "found": true, "confidence": 0.9}'
    assert json_strings(real) == ["It ships on Friday [1]."] and bare_prose(real) == []


# --- a model that copies its prompt ---

def example_of(body) -> dict:
    """The JSON the prompt shows as its example (what a small model copies first)."""
    system = body["messages"][0]["content"]
    return json.loads(re.search(r"^Answer: (\{.*\})$", system, re.M)[1])


def sentences_of(body) -> list[str]:
    """The prompt's instructions, sentence by sentence (what a small model copies next)."""
    system = body["messages"][0]["content"].split("Example.")[0]
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(system.split())) if len(s.split()) >= 5]


def echo_summary(endpoint, body) -> dict:
    """The example copied whole."""
    return example_of(body)


def echo_notes(endpoint, body) -> dict:
    """A summary of its own, but lists padded with the example's notes and the instructions' sentences."""
    example, said = example_of(body), sentences_of(body)
    return {**example, "summary": "The team went through the mobile app launch and its open points.",
            "decisions": [*example["decisions"], said[0], "Ship on December 2 if QA signs off"],
            "open_questions": [*example["open_questions"], said[1], "Do we need the press kit?"],
            "topics": [*example["topics"], "QA"]}


def echo_items(endpoint, body) -> dict:
    example, said = example_of(body), sentences_of(body)
    turns = re.findall(r"^\[(\d+)\] ", body["messages"][-1]["content"], re.M)
    # the example's task, for someone in this meeting at a turn it was shown (so the schema accepts it)
    items = [{**item, "turn": int(turns[0]), "owner": "Bob Baker"} for item in example["items"]]
    items.append({"turn": int(turns[-1]), "owner": "unassigned", "task": said[0]})
    return {"items": items}


@pytest.fixture
def echoing_client():
    llm.reset_breakers()
    client = llm.LLMClient(ScriptedTransport(by_purpose(
        meeting_summary=echo_summary, meeting_final_summary=echo_notes, meeting_action_items=echo_items,
        knowledge_answer=lambda endpoint, body: example_of(body),
    )))
    yield client
    llm.reset_breakers()
    llm.set_client(None)
    qa.answer_cache.clear()


@pytest.mark.django_db
def test_nothing_a_prompt_says_is_stored_as_meeting_notes_or_items(office, people, echoing_client):
    # given a meeting, and a model that copies its prompts' examples and instructions
    meeting = record_meeting(office["atlas"], people, PLANNING)
    # when the live pass and the end-of-meeting pass run through the real code
    meeting_notes.summary_refresh(meeting, client=echoing_client)
    meeting_notes.action_items_propose(meeting, client=echoing_client, writer="model")
    meeting_notes.summary_finalize(meeting, client=echoing_client)
    # then the prompts were used, and none of their wording was stored
    called = {body["response_format"]["json_schema"]["name"] for _tier, body in echoing_client.transport.requests}
    assert {"meeting_summary", "meeting_final_summary", "meeting_action_items"} <= called
    stored = [i.text for i in ActionItem.objects.filter(meeting=meeting)]
    summaries = list(MeetingSummary.objects.filter(meeting=meeting))
    assert {s.kind for s in summaries} == {"rolling", "final"} and stored
    for s in summaries:
        stored += [s.summary, *s.decisions, *s.open_questions, *s.topics]
    assert [text for text in stored if echoes_any_prompt(text)] == []
    # and a copied summary gives way to the extractive notes, while what the model said of its own is kept
    rolling = next(s for s in summaries if s.kind == "rolling")
    final = next(s for s in summaries if s.kind == "final")
    assert rolling.source == "fallback" and "launch plan" in rolling.summary
    assert final.source == "model" and final.summary.startswith("The team went through")
    assert "Ship on December 2 if QA signs off" in final.decisions
    assert "Do we need the press kit?" in final.open_questions


@pytest.mark.django_db
def test_an_answer_copied_from_the_prompt_is_not_found(office, people, echoing_client):
    knowledge_chunks_add([{"room": office["atlas"], "source_kind": "chat", "source_id": "message:1",
                           "locator": {"thread": 1, "seq": 1, "author": "Bob Baker"},
                           "text": "Bob Baker: the projector in Atlas was repaired on Tuesday."}])
    result = qa.answer_question(user=people["bob"], question="Was the projector in Atlas repaired?",
                                room_id=office["atlas"].pk, client=echoing_client)
    assert echoing_client.transport.requests  # the model was asked
    assert result["found"] is False and result["answer"] == qa.NOT_FOUND and result["citations"] == []
