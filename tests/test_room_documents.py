"""Documents in a room: every step of indexing is stored and then told to the people in the room
(stored, read page by page, OCR, indexed, ready or failed), and deleting one takes its knowledge with it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from assistant import indexing
from assistant.models import Document, KnowledgeChunk
from tests.channel_events import drain, listen
from tests.conftest import client_for
from tests.test_assistant_qa import _scanned_pdf

pytestmark = pytest.mark.django_db


def test_a_scanned_pdf_reports_each_step_to_the_room_until_ready(people, office):
    channel = listen(office["atlas"].pk)
    pdf = _scanned_pdf([["Storage vendor contract"], ["The contract renews on March 3."]])
    with TestCase.captureOnCommitCallbacks(execute=True):
        r = client_for(people["alice"]).post(f"/api/rooms/{office['atlas'].pk}/documents/",
                                             {"file": SimpleUploadedFile("scan.pdf", pdf, content_type="application/pdf")})
    assert r.status_code == 201 and r.json()["stage"] == "stored" and r.json()["uploaded_by"]["name"] == "Alice Archer"
    document_id = r.json()["id"]
    with TestCase.captureOnCommitCallbacks(execute=True):
        indexing.index_document(document_id)
    steps = [(f["document"]["stage"], f["document"]["pages_done"], f["document"]["pages_total"])
             for f in drain(channel) if f["type"] == "document.progress"]
    assert steps[0] == ("stored", 0, 0)
    assert ("ocr", 0, 2) in steps and ("ocr", 1, 2) in steps  # "reading scanned page 1 of 2", then 2 of 2
    assert steps[-2:] == [("indexing", 2, 2), ("ready", 2, 2)]
    # stored before announced: the row says what the last frame said
    document = Document.objects.get(pk=document_id)
    assert (document.stage, document.status, document.pages_done) == ("ready", "indexed", 2)
    r = client_for(people["bob"]).get(f"/api/documents/{document_id}/")
    assert r.status_code == 200 and r.json()["stage"] == "ready"


def test_an_unreadable_pdf_fails_with_a_reason_in_words(people, office):
    channel = listen(office["atlas"].pk)
    broken = b"%PDF-1.4\n" + b"garbage" * 50
    with TestCase.captureOnCommitCallbacks(execute=True):
        r = client_for(people["bob"]).post(f"/api/rooms/{office['atlas'].pk}/documents/",
                                           {"file": SimpleUploadedFile("broken.pdf", broken, content_type="application/pdf")})
        indexing.index_document(r.json()["id"])
    last = [f for f in drain(channel) if f["type"] == "document.progress"][-1]["document"]
    assert last["stage"] == "failed" and last["status"] == "failed" and last["error"].startswith("could not read the file")


def test_deleting_a_document_takes_its_knowledge_and_tells_the_room(people, office):
    with TestCase.captureOnCommitCallbacks(execute=True):
        r = client_for(people["bob"]).post(f"/api/rooms/{office['atlas'].pk}/documents/",
                                           {"file": SimpleUploadedFile("plan.txt", b"The launch is on Friday.",
                                                                       content_type="text/plain")})
    document_id = r.json()["id"]
    indexing.index_document(document_id)
    assert KnowledgeChunk.objects.filter(source_kind="document", locator__document=document_id).exists()
    channel = listen(office["atlas"].pk)
    # carol did not add it and is no admin: refused; dana (admin) or bob may
    assert client_for(people["carol"]).delete(f"/api/documents/{document_id}/").status_code == 403
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert client_for(people["bob"]).delete(f"/api/documents/{document_id}/").status_code == 204
    assert not Document.objects.filter(pk=document_id).exists()
    assert not KnowledgeChunk.objects.filter(source_kind="document", locator__document=document_id).exists()
    assert {"type": "document.deleted", "document": document_id, "room": office["atlas"].pk} in drain(channel)
    assert client_for(people["bob"]).delete(f"/api/documents/{document_id}/").status_code == 404


def test_a_private_rooms_documents_are_not_found_by_others(people, office):
    with TestCase.captureOnCommitCallbacks(execute=True):
        r = client_for(people["alice"]).post(f"/api/rooms/{office['vault'].pk}/documents/",
                                             {"file": SimpleUploadedFile("memo.txt", b"Secret memo.",
                                                                         content_type="text/plain")})
    document_id = r.json()["id"]
    assert client_for(people["bob"]).get(f"/api/documents/{document_id}/").status_code == 404
    assert client_for(people["bob"]).delete(f"/api/documents/{document_id}/").status_code == 404
