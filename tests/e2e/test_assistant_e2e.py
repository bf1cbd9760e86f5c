"""The meeting assistant in a real Chromium against a real Daphne: the sidebar panel shows the
meeting's notes and proposed action items, a participant approves, edits and rejects them (the
database follows, an approval becomes a task), live frames add proposals without a reload, the ask
box and "catch me up" stay readable with no model running, and the meeting page shows the notes
with links into its transcript."""

from __future__ import annotations

import datetime as dt
import threading
from urllib.parse import urlparse

import pytest
from django.db import connections, transaction
from django.utils import timezone

from assistant import llm, qa
from assistant import services as assistant_services
from assistant.models import ActionItem, MeetingSummary
from assistant.selectors import action_item_payload, summary_payload
from assistant.testing import ScriptedTransport, by_purpose, serve_scripted_model
from automation.models import Task
from office.embedded import port_in_use
from office.events import send_event_on_commit
from tests.assistant_fixtures import through_job
from tests.conftest import PASSWORD, client_for
from tests.e2e.conftest import ARTIFACTS, _signer, _wait_until_settled, running_daphne
from transcription import services as transcription_services
from transcription.models import Meeting, MeetingParticipant

pytestmark = pytest.mark.django_db(transaction=True)

LINES = [
    ("alice", "Let's review the quarterly budget."),
    ("bob", "The quarterly budget sheet is due on Friday and Carol reviews it."),
    ("alice", "Bob, can you book the venue for the offsite by Wednesday?"),
    ("alice", "Someone should update the hiring plan."),
]


def in_thread(fn):
    """Run `fn` on its own thread: Playwright's loop on the test thread forbids async_to_sync here."""
    outcome = {}

    def run():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # re-raised on the test thread
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def meeting_with_notes(office, people) -> tuple[Meeting, list, list[ActionItem]]:
    """A running meeting in Atlas: four transcript lines, a rolling summary and two proposals
    (built on another thread: storing a segment announces it)."""
    atlas = office["atlas"]
    meeting = Meeting.objects.create(room=atlas)
    for name in ("alice", "bob"):
        MeetingParticipant.objects.get_or_create(meeting=meeting, user=people[name])
    start = timezone.now() - dt.timedelta(minutes=3)
    segments = [
        transcription_services.transcript_segment_add(
            meeting_id=meeting.pk, speaker_id=people[speaker].pk, start_ms=i * 5000, end_ms=i * 5000 + 4000,
            spoken_at=start + dt.timedelta(seconds=i * 5), text=text, words=[], confidence=0.9, model_id="recorded",
        )
        for i, (speaker, text) in enumerate(LINES)
    ]
    MeetingSummary.objects.create(
        meeting=meeting, kind=MeetingSummary.Kind.ROLLING, summary="The team reviewed the quarterly budget.",
        decisions=["Carol reviews the budget sheet"], open_questions=["Who updates the hiring plan?"],
        topics=["budget", "offsite"], through_seq=segments[-1].seq, segment_ids=[s.pk for s in segments],
        source="model",
    )
    venue = ActionItem.objects.create(
        room=atlas, meeting=meeting, text="Book the venue for the offsite", owner=people["bob"],
        due_date=timezone.localdate() + dt.timedelta(days=2), due_text="by Wednesday", confidence=0.9,
        source_segment_ids=[segments[2].pk], speaker=people["alice"], model_id="rules", prompt_version="1",
        dedupe_key="venue",
    )
    hiring = ActionItem.objects.create(
        room=atlas, meeting=meeting, text="Update the hiring plan", suggested_owner=people["carol"],
        owner_reason="Carol Chen is free this week", confidence=0.6, source_segment_ids=[segments[3].pk],
        speaker=people["alice"], model_id="rules", prompt_version="1", dedupe_key="hiring",
    )
    return meeting, segments, [venue, hiring]


def item_li(item_id: int) -> str:
    return f'#assistant-items li.action-item[data-item-id="{item_id}"]'


def test_assistant_panel_notes_decisions_live_proposals_and_meeting_page(office, people, live_office, sign_in):
    alice_user, bob_user = people["alice"], people["bob"]
    meeting, segments, (venue, hiring) = in_thread(lambda: meeting_with_notes(office, people))

    # given alice in Atlas, where the meeting runs
    alice = sign_in("alice", PASSWORD)
    uncaught = []
    alice.on("pageerror", lambda error: uncaught.append(error))
    alice.evaluate("window.officeClient.moveTo(6, 4)")
    alice.wait_for_selector(f'#assistant-panel[data-meeting="{meeting.pk}"]', timeout=15000)

    # then the assistant panel shows the summary, decisions, open questions and both proposals
    notes = alice.locator("#assistant-notes")
    notes.locator(".notes-summary").wait_for()
    assert notes.locator(".notes-summary").inner_text() == "The team reviewed the quarterly budget."
    assert "Carol reviews the budget sheet" in notes.locator(".notes-decisions").inner_text()
    assert "Who updates the hiring plan?" in notes.locator(".notes-questions").inner_text()
    assert notes.get_attribute("data-source") == "model"
    alice.wait_for_selector(item_li(venue.pk))
    venue_li, hiring_li = alice.locator(item_li(venue.pk)), alice.locator(item_li(hiring.pk))
    assert venue_li.locator(".ai-owner").inner_text() == "Owner: Bob Baker"
    assert "by Wednesday" in venue_li.locator(".ai-due").inner_text()
    assert "90% sure" in venue_li.inner_text()
    assert venue_li.locator(".ai-segment").get_attribute("href") == f"/meetings/{meeting.pk}/#seg-{segments[2].seq}"
    assert hiring_li.locator(".ai-owner").inner_text() == "Unassigned"
    assert "suggested: Carol Chen" in hiring_li.inner_text()
    assert "Carol Chen is free this week" in hiring_li.inner_text()
    assert alice.locator("#assistant-items-count").inner_text() == "2"
    ARTIFACTS.mkdir(exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "assistant-panel.png"))

    # when alice approves the venue item
    venue_li.locator(".ai-approve").click()
    alice.wait_for_selector(f'{item_li(venue.pk)}[data-status="approved"]')
    # then it reads who decided, the row is approved by her, and the approval became a task
    assert venue_li.locator(".ai-decided").inner_text() == "Approved by Alice Archer"
    venue.refresh_from_db()
    assert venue.status == ActionItem.Status.APPROVED and venue.decided_by == alice_user
    task = Task.objects.get(source_kind=Task.SourceKind.ACTION_ITEM, source_id=str(venue.pk))
    assert task.owner == bob_user and task.title == "Book the venue for the offsite"

    # when she edits the hiring item with the keyboard's form: owner bob
    hiring_li.locator(".ai-edit-open").click()
    assert alice.evaluate("document.activeElement.classList.contains('ai-edit-text')")
    hiring_li.locator(".ai-edit-owner").select_option(str(bob_user.pk))
    hiring_li.locator(".ai-edit-save").click()
    alice.wait_for_selector(f'{item_li(hiring.pk)} .ai-owner:text-is("Owner: Bob Baker")')
    # then the database has bob as the owner, and the item is still waiting for a decision
    hiring.refresh_from_db()
    assert hiring.owner == bob_user and hiring.status == ActionItem.Status.PROPOSED

    # when she rejects it
    hiring_li.locator(".ai-reject").click()
    alice.wait_for_selector(f'{item_li(hiring.pk)}[data-status="rejected"]')
    hiring.refresh_from_db()
    assert hiring.status == ActionItem.Status.REJECTED and hiring.decided_by == alice_user
    assert not Task.objects.filter(source_id=str(hiring.pk)).exists()
    assert alice.locator("#assistant-items-count").inner_text() == ""

    # when the assistant stores a new proposal and fallback notes (live frames, no reload)
    def propose():
        with transaction.atomic():
            item = ActionItem.objects.create(
                room=office["atlas"], meeting=meeting, text="Send the budget sheet to Carol", owner=bob_user,
                confidence=0.8, source_segment_ids=[segments[1].pk], speaker=bob_user, model_id="rules",
                prompt_version="1", dedupe_key="send-sheet",
            )
            summary = MeetingSummary.objects.create(
                meeting=meeting, kind=MeetingSummary.Kind.ROLLING, summary="Budget review and the offsite venue.",
                decisions=[], open_questions=[], topics=["budget"], through_seq=segments[-1].seq, source="fallback",
            )
            send_event_on_commit(f"room.{office['atlas'].pk}", {"type": "assistant.action_item",
                                                              "item": action_item_payload(item)})
            send_event_on_commit(f"room.{office['atlas'].pk}", {"type": "assistant.summary",
                                                              "summary": summary_payload(summary)})
        return item

    sheet = in_thread(propose)
    # then the proposal appears, is announced, and the notes are marked as fallback notes
    alice.wait_for_selector(f'{item_li(sheet.pk)}[data-status="proposed"]', timeout=10000)
    alice.wait_for_function(
        "document.querySelector('#assistant-announce').textContent.includes('Send the budget sheet to Carol')")
    alice.wait_for_selector('#assistant-notes[data-source="fallback"] .notes-fallback')
    assert notes.locator(".notes-summary").inner_text() == "Budget review and the offsite venue."

    # when dana decides it meanwhile and alice's page does not hear of it, alice's approval is refused (409)
    ActionItem.objects.filter(pk=sheet.pk).update(status=ActionItem.Status.REJECTED, decided_by=people["dana"],
                                                  decided_at=timezone.now())
    alice.locator(item_li(sheet.pk)).locator(".ai-approve").click()
    # then she reads why, and the item shows the decision that was taken
    alice.wait_for_selector(f'{item_li(sheet.pk)}[data-status="rejected"]')
    sheet_li = alice.locator(item_li(sheet.pk))
    assert "already rejected" in sheet_li.locator(".ai-error").inner_text()
    assert sheet_li.locator(".ai-decided").inner_text() == "Rejected by Dana Admin"

    # when she opens the meeting page at the venue item's line
    page = alice.context.new_page()
    page.goto(f"{live_office}/meetings/{meeting.pk}/")
    page.wait_for_selector(f'#notes-items li.action-item[data-item-id="{venue.pk}"]')
    # then the notes show the latest summary and every item with its status and who decided
    assert page.locator("#notes-summary .notes-summary").inner_text() == "Budget review and the offsite venue."
    assert page.locator(f'#notes-items li[data-item-id="{venue.pk}"] .ai-decided').inner_text() == "Approved by Alice Archer"
    assert page.locator(f'#notes-items li[data-item-id="{hiring.pk}"]').get_attribute("data-status") == "rejected"
    # and a provenance link jumps to the segment in the transcript on the same page
    page.wait_for_selector(f"#seg-{segments[2].seq}")
    page.locator(f'#notes-items li[data-item-id="{venue.pk}"] .ai-segment').click()
    page.wait_for_selector(f"#seg-{segments[2].seq}.is-target")
    assert page.evaluate("location.hash") == f"#seg-{segments[2].seq}"
    assert "book the venue" in page.locator(f"#seg-{segments[2].seq}").inner_text()
    page.screenshot(path=str(ARTIFACTS / "meeting-notes.png"), full_page=True)
    assert uncaught == []


def test_ask_and_catch_up_stay_readable_without_a_model(office, people, live_office, sign_in):
    endpoints = [urlparse(llm.endpoint_for(tier).base_url) for tier in llm.TIERS]
    if any(e.hostname in ("127.0.0.1", "localhost") and port_in_use(e.port or 80) for e in endpoints):
        pytest.skip("a model server answers on this machine; this test is about the assistant without one")
    meeting, segments, _ = in_thread(lambda: meeting_with_notes(office, people))
    # given what Atlas knows (a transcript line, indexed), so a question reaches the model step
    assistant_services.knowledge_chunk_add(
        room=office["atlas"], source_kind="transcript", source_id=f"e2e-{segments[1].pk}",
        locator={"meeting": meeting.pk, "seq": segments[1].seq, "speaker": "Bob Baker"}, text=LINES[1][1],
    )
    alice = sign_in("alice", PASSWORD)
    uncaught = []
    alice.on("pageerror", lambda error: uncaught.append(error))
    # in the open space there is no meeting: the panel says so and still offers asking and catching up
    alice.wait_for_selector(f'#assistant-panel[data-room="{office["open"].pk}"]')
    assert "No meeting here right now" in alice.locator("#assistant-notes").inner_text()
    assert alice.locator("#assistant-catch-up").is_enabled()
    # and the panel folds and unfolds from the keyboard
    toggle = alice.locator("#assistant-toggle")
    toggle.focus()
    alice.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "false" and alice.locator("#assistant-body").is_hidden()
    alice.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true" and alice.locator("#assistant-body").is_visible()

    alice.evaluate("window.officeClient.moveTo(6, 4)")
    alice.wait_for_selector(f'#assistant-panel[data-meeting="{meeting.pk}"]', timeout=15000)

    # when she asks a question and no model server runs
    alice.fill("#assistant-question", "When is the quarterly budget sheet due?")
    alice.press("#assistant-question", "Enter")
    # then the panel says, calmly, that the assistant is unavailable, and the answer box offers the closest passage
    alice.wait_for_selector('#assistant-answer[data-state="unavailable"]', timeout=20000)
    answer = alice.locator("#assistant-answer")
    assert "No model answered just now" in answer.inner_text()
    unavailable = alice.locator("#assistant-unavailable")
    assert unavailable.is_visible()
    assert unavailable.inner_text() == "Assistant unavailable — notes resume when the model is back"
    source = answer.locator(".answer-sources a").first
    assert source.get_attribute("href") == f"/meetings/{meeting.pk}/#seg-{segments[1].seq}"
    assert "Bob Baker" in source.inner_text()

    # when she asks to be caught up
    alice.click("#assistant-catch-up")
    result = alice.locator("#assistant-catch-up-result")
    alice.wait_for_selector('#assistant-catch-up-result[data-state="unavailable"]', timeout=20000)
    # then the counted fallback summary and the events with links are there
    summary = result.locator(".catch-up-summary").inner_text()
    assert "Fallback summary" in summary and "Since you left: 1 meeting(s), 2 action item(s)" in summary
    assert result.locator(f'.catch-up-highlights a[href="/meetings/{meeting.pk}/"]').count() >= 1
    assert result.locator(".catch-up-all li").count() >= 3
    alice.screenshot(path=str(ARTIFACTS / "assistant-unavailable.png"))
    assert alice.evaluate("window.officeClient.assistant.unavailable") is True

    # when a model does answer (scripted, in this process): the same API reply renders with numbered citations
    def ask(question):
        qa.answer_cache.clear()
        answer = {"answer": "The sheet is due on Friday [1].", "citations": [1], "found": True, "confidence": 0.9}
        llm.set_client(llm.LLMClient(ScriptedTransport(by_purpose(knowledge_answer=answer))))
        try:
            reply = through_job(client_for(people["alice"]), "post", "/api/assistant/ask/",
                                {"question": question, "room": office["atlas"].pk})
        finally:
            llm.set_client(None)
        assert reply.status_code == 200, reply.content
        return reply.json()["result"]

    render = """async (data) => {
      const { renderAnswer } = await import('/static/office/assistant.js');
      const box = document.createElement('div');
      renderAnswer(box, { ok: true, status: 200, data });
      return { state: box.dataset.state, text: box.innerText,
               cites: [...box.querySelectorAll('.answer-text .cite')].map(a => [a.textContent, a.getAttribute('href')]),
               sources: [...box.querySelectorAll('.answer-sources a')].map(a => a.getAttribute('href')) };
    }"""
    found = alice.evaluate(render, in_thread(lambda: ask("When is the quarterly budget sheet due?")))
    seg_url = f"/meetings/{meeting.pk}/#seg-{segments[1].seq}"
    assert found["state"] == "answered" and "The sheet is due on Friday" in found["text"]
    assert found["cites"] == [["[1]", seg_url]] and found["sources"] == [seg_url]
    # and a question the room knows nothing about reads "I could not find this"
    missing = alice.evaluate(render, in_thread(lambda: ask("What colour are the walls of the submarine galley?")))
    assert missing["state"] == "not-found" and "I could not find this" in missing["text"]
    # and nothing was thrown while degrading
    assert uncaught == []


def daphne_with_model(model_url: str):
    """A Daphne of its own whose model endpoints (both tiers) are `model_url`: the session's Daphne
    has none, and a scripted client cannot be handed to another process."""
    return running_daphne("daphne-e2e-streaming.log", LLM_BASE_URL=model_url, LLM_LARGE_BASE_URL=model_url)


def test_a_streamed_answer_shows_its_first_words_then_the_cited_answer(office, people, browser):
    # given what the open space knows, and a model server that writes the answer 5 characters every 120 ms
    assistant_services.knowledge_chunk_add(
        room=office["open"], source_kind="transcript", source_id="e2e-stream-1",
        locator={"meeting": 1, "seq": 4, "speaker": "Bob Baker"}, text=LINES[1][1],
    )
    final = "The quarterly budget sheet is due on Friday, and Carol reviews it [1]."
    answer = {"answer": final, "citations": [1], "found": True, "confidence": 0.9}
    contexts = []
    with serve_scripted_model(by_purpose(knowledge_answer=answer), chunk_chars=5, chunk_delay=0.12) as model_url, \
            daphne_with_model(model_url) as office_url:
        try:
            alice = _signer(browser, office_url, contexts)("alice", PASSWORD)
            uncaught, asked = [], []
            alice.on("pageerror", lambda error: uncaught.append(error))
            alice.on("request", lambda request: asked.append(urlparse(request.url).path)
                     if "/api/assistant/ask" in request.url else None)
            alice.wait_for_selector(f'#assistant-panel[data-room="{office["open"].pk}"]')
            # every change of the answer box is noted in the page, with its time
            alice.evaluate("""() => {
              const box = document.querySelector('#assistant-answer');
              window.answerSeen = [];
              new MutationObserver(() => {
                const shown = box.querySelector('.answer-partial-text') || box.querySelector('.answer-text');
                window.answerSeen.push({ state: box.dataset.state, text: shown ? shown.textContent : null,
                                         busy: box.getAttribute('aria-busy'), t: performance.now() });
              }).observe(box, { childList: true, subtree: true, characterData: true, attributes: true });
            }""")

            # when she asks
            alice.fill("#assistant-question", "When is the quarterly budget sheet due?")
            sent_at = alice.evaluate("performance.now()")
            alice.press("#assistant-question", "Enter")
            # then the answer appears as it is written, with the typing mark ...
            alice.wait_for_selector('#assistant-answer[data-state="streaming"] .answer-typing', timeout=20000)
            alice.wait_for_function("(document.querySelector('#assistant-answer .answer-partial-text')"
                                    "?.textContent.length || 0) >= 12")
            alice.screenshot(path=str(ARTIFACTS / "assistant-streaming-partial.png"))
            # ... and is replaced by the checked answer with its numbered citation
            alice.wait_for_selector('#assistant-answer[data-state="answered"]', timeout=20000)
            box = alice.locator("#assistant-answer")
            assert box.locator(".answer-text").inner_text() == final
            assert box.locator(".answer-text .cite").get_attribute("href") == "/meetings/1/#seg-4"
            assert box.locator(".answer-sources a").first.get_attribute("href") == "/meetings/1/#seg-4"
            assert box.locator(".answer-typing").count() == 0 and box.get_attribute("aria-busy") is None
            alice.screenshot(path=str(ARTIFACTS / "assistant-streaming.png"))

            # what was on screen before: growing prefixes of the final text (the first ones strict), while busy
            seen = alice.evaluate("window.answerSeen")
            partial = [s for s in seen if s["state"] == "streaming" and s["text"]]
            texts = list(dict.fromkeys(s["text"] for s in partial))
            assert len(texts) >= 3 and len(texts[0]) < len(final), seen
            assert all(final.startswith(t) for t in texts), texts
            assert all(len(a) < len(b) for a, b in zip(texts, texts[1:], strict=False))
            assert all(s["busy"] == "true" for s in partial)
            first_words_s = (partial[0]["t"] - sent_at) / 1000
            whole_s = (next(s for s in seen if s["state"] == "answered")["t"] - sent_at) / 1000
            print(f"streamed answer: first words after {first_words_s:.2f} s, whole answer after {whole_s:.2f} s")
            assert first_words_s < whole_s - 1.0  # it was streamed, not shown all at once
            # and it came over the stream endpoint, with no fallback to the plain one
            assert asked == ["/api/assistant/ask/stream/"]
            assert uncaught == []
        finally:
            for context in contexts:
                context.close()
            _wait_until_settled()
