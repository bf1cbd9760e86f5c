"""Documents in the room, in the browser: alice drops a scanned PDF and a text file into the assistant
panel, watches each one's progress line (stored, scanned page k of N, indexed, ready), asks a question
the scan answers and gets its page cited, then deletes the text file.

Indexing is the task function the Celery worker runs (`assistant.indexing.index_document`), run here in
the test process as the worker would once the upload committed; its progress frames reach the page
through the channel layer like the worker's."""

from __future__ import annotations

import io
import time

import pytest

from assistant import indexing
from assistant.models import Document, KnowledgeChunk
from assistant.testing import by_purpose, serve_scripted_model
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS, _signer, _wait_until_settled, running_daphne
from tests.e2e.test_assistant_e2e import in_thread
from tests.test_assistant_qa import _scanned_pdf

pytestmark = pytest.mark.django_db(transaction=True)


def _document_named(filename: str, timeout: float = 20.0) -> Document:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = Document.objects.filter(filename=filename).first()
        if document is not None:
            return document
        time.sleep(0.1)
    raise AssertionError(f"{filename} was never stored")


def answer_from_the_scan(endpoint, body):
    sources = body["messages"][-1]["content"]
    line = next((line for line in sources.splitlines() if "renews on March 3" in line), None)
    if line is None:
        return {"answer": "Not in the sources.", "citations": [], "found": False, "confidence": 0.9}
    n = int(line[1:line.index("]")])
    return {"answer": f"It renews on March 3 [{n}].", "citations": [n], "found": True, "confidence": 0.9}


def test_a_dropped_scan_shows_its_progress_becomes_citable_and_a_file_can_be_deleted(office, people, browser):
    pdf = _scanned_pdf([["Storage vendor contract"], ["The storage vendor contract renews on March 3.",
                                                      "Notice must be given sixty days before."]])
    contexts = []
    with serve_scripted_model(by_purpose(knowledge_answer=answer_from_the_scan)) as model_url, \
            running_daphne("daphne-e2e-documents.log", LLM_BASE_URL=model_url, LLM_LARGE_BASE_URL=model_url) as url:
        try:
            alice = _signer(browser, url, contexts)("alice", PASSWORD)
            uncaught = []
            alice.on("pageerror", lambda error: uncaught.append(error))
            alice.on("dialog", lambda dialog: dialog.accept())
            alice.wait_for_selector(f'#assistant-panel[data-room="{office["open"].pk}"]')
            alice.wait_for_selector("#room-documents:not([hidden])")
            # every progress line the page shows is noted
            alice.evaluate("""() => {
              window.progressSeen = [];
              const list = document.querySelector('#room-documents-list');
              new MutationObserver(() => {
                for (const line of list.querySelectorAll('.doc-progress')) {
                  const text = line.textContent;
                  if (window.progressSeen.at(-1) !== text) window.progressSeen.push(text);
                }
              }).observe(list, { childList: true, subtree: true, characterData: true });
            }""")

            # when she adds two files at once
            alice.set_input_files("#room-documents-input", files=[
                {"name": "contract-scan.pdf", "mimeType": "application/pdf", "buffer": pdf},
                {"name": "lunch.txt", "mimeType": "text/plain", "buffer": b"Lunch is pizza on Fridays."},
            ])
            scan, note = _document_named("contract-scan.pdf"), _document_named("lunch.txt")
            alice.wait_for_selector(f'.doc-row[data-document="{scan.pk}"][data-stage="stored"]')
            alice.screenshot(path=str(ARTIFACTS / "documents-stored.png"))
            # the worker reads them (on a thread: Playwright's loop owns this one)
            in_thread(lambda: (indexing.index_document(scan.pk), indexing.index_document(note.pk)))

            # then each row ends "ready", the scan after its pages were read by OCR one by one
            alice.wait_for_selector(f'.doc-row[data-document="{scan.pk}"][data-stage="ready"]', timeout=20000)
            alice.wait_for_selector(f'.doc-row[data-document="{note.pk}"][data-stage="ready"]', timeout=20000)
            row = alice.locator(f'.doc-row[data-document="{scan.pk}"]')
            assert row.locator(".doc-progress").inner_text() == "Ready · 2 pages"
            seen = alice.evaluate("window.progressSeen")
            assert "Reading scanned page 1 of 2" in seen and "Reading scanned page 2 of 2" in seen, seen
            assert seen.index("Reading scanned page 1 of 2") < seen.index("Ready · 2 pages")
            assert alice.locator("#room-documents-count").inner_text() == "2"
            alice.screenshot(path=str(ARTIFACTS / "documents-ready.png"))

            # and the scan answers a question, cited at its page
            alice.fill("#assistant-question", "When does the storage vendor contract renew?")
            alice.press("#assistant-question", "Enter")
            alice.wait_for_selector('#assistant-answer[data-state="answered"]', timeout=30000)
            cite = alice.locator("#assistant-answer .answer-text .cite").first
            assert cite.get_attribute("href") == f"/documents/{scan.pk}/?page=2#page-2"

            # and deleting the text file takes it (and what was learnt from it) away
            alice.locator(f'.doc-row[data-document="{note.pk}"] .doc-delete').click()
            alice.wait_for_selector(f'.doc-row[data-document="{note.pk}"]', state="detached")
            assert not Document.objects.filter(pk=note.pk).exists()
            assert not KnowledgeChunk.objects.filter(source_kind="document", locator__document=note.pk).exists()
            assert alice.locator("#room-documents-count").inner_text() == "1"
            assert uncaught == []
        finally:
            for context in contexts:
                context.close()
            _wait_until_settled()


def test_a_file_the_room_refuses_says_why(office, people, sign_in):
    alice = sign_in("alice", PASSWORD)
    alice.wait_for_selector("#room-documents:not([hidden])")
    alice.set_input_files("#room-documents-input", files=[
        {"name": "tool.exe", "mimeType": "application/octet-stream", "buffer": io.BytesIO(b"MZ").getvalue()}])
    alice.wait_for_selector('.doc-row[data-state="failed"]')
    assert "only .txt, .md, .pdf files can be added" in alice.locator('.doc-row[data-state="failed"]').inner_text()
