"""Q&A with citations, permission-aware retrieval through the API, documents, catch-up."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from assistant import indexing, qa, ratelimit
from assistant.models import Document, KnowledgeChunk
from assistant.services import document_upload, knowledge_chunks_add
from assistant.testing import by_purpose
from rooms import services as room_services
from tests.assistant_fixtures import (
    assistant_state_reset,  # noqa: F401 (a fixture)
    install,
    lunch_chunk,
    release_chunk,
    through_job,
    vault_memo_chunk,
)
from tests.conftest import client_for

pytestmark = pytest.mark.usefixtures("assistant_state_reset")


@pytest.fixture
def knowledge(office):
    return knowledge_chunks_add([release_chunk(office), lunch_chunk(office), vault_memo_chunk(office)])


@pytest.mark.django_db
def test_answer_cites_the_exact_segment(people, knowledge):
    def answer(endpoint, body):
        sources = body["messages"][-1]["content"]
        n = next(line[1] for line in sources.splitlines() if "ships on Friday" in line)
        return {"answer": f"It ships on Friday [{n}].", "citations": [int(n)], "found": True, "confidence": 0.9}

    install(by_purpose(knowledge_answer=answer))
    r = through_job(client_for(people["bob"]), "post", "/api/assistant/ask/", {"question": "When does the mobile app ship?"})
    assert r.status_code == 200, r.content
    body = r.json()["result"]
    assert body["found"] and "Friday" in body["answer"]
    [citation] = body["citations"]
    assert citation["kind"] == "transcript" and citation["url"] == "/meetings/1/#seg-4"
    assert "ships on Friday" in citation["text"]


@pytest.mark.django_db
def test_out_of_range_citations_are_dropped_and_no_citation_means_not_found(people, knowledge):
    install(by_purpose(knowledge_answer={"answer": "Probably Tuesday [7].", "citations": [7], "found": True,
                                         "confidence": 0.9}))
    r = through_job(client_for(people["bob"]), "post", "/api/assistant/ask/", {"question": "When does the app ship?"})
    answer = r.json()["result"]
    assert answer["found"] is False and answer["answer"] == qa.NOT_FOUND and answer["citations"] == []


@pytest.mark.django_db
def test_bob_never_gets_the_vault_even_by_asking_for_it(people, office, knowledge):
    transport = install(by_purpose(knowledge_answer={"answer": "No idea.", "citations": [], "found": False,
                                                     "confidence": 0.9}))
    bob = client_for(people["bob"])
    r = through_job(bob, "post", "/api/assistant/ask/",
                    {"question": "When does the Northwind acquisition close and at what price?"})
    assert r.status_code == 200 and r.json()["status"] == "done"
    assert "40 million" not in str(r.json()) and "March 3" not in str(r.json())
    assert all("40 million" not in p for p in transport.prompts())  # the model never saw it either
    r = bob.post("/api/assistant/ask/", {"question": "Northwind acquisition", "room": office["vault"].pk},
                 content_type="application/json")
    assert r.status_code == 404
    # alice is a Vault member: she gets it, with a citation to the page.
    transport = install(by_purpose(knowledge_answer={"answer": "March 3 [1].", "citations": [1], "found": True,
                                                     "confidence": 0.9}))
    r = through_job(client_for(people["alice"]), "post", "/api/assistant/ask/",
                    {"question": "When does Northwind close?", "room": office["vault"].pk})
    answer = r.json()["result"]
    assert answer["found"] and answer["citations"][0]["url"] == "/documents/9/?page=1#page-1"


@pytest.mark.django_db
def test_unknown_topics_are_not_found_without_a_model_call(people, knowledge):
    transport = install(by_purpose())
    r = through_job(client_for(people["bob"]), "post", "/api/assistant/ask/",
                    {"question": "xylophone quantum zebra migration"})
    assert r.json()["result"]["found"] is False and r.json()["result"]["answer"] == qa.NOT_FOUND
    assert transport.requests == []  # nothing near enough to ask a model about


@pytest.mark.django_db
def test_model_down_gives_a_clear_degraded_answer_and_repeat_hits_the_cache(people, knowledge):
    transport = install(by_purpose())  # every call fails
    bob = client_for(people["bob"])
    r = through_job(bob, "post", "/api/assistant/ask/", {"question": "When does the mobile app ship?"})
    assert r.status_code == 200 and r.json()["result"]["unavailable"] is True and r.json()["result"]["citations"]
    install(by_purpose(knowledge_answer={"answer": "Friday [1].", "citations": [1], "found": True, "confidence": 0.9}))
    first = through_job(bob, "post", "/api/assistant/ask/", {"question": "When will the mobile app ship?"})
    again = through_job(bob, "post", "/api/assistant/ask/", {"question": "When will the mobile app ship ?"})
    assert first.json()["result"]["cached"] is False and again.json()["result"]["cached"] is True
    assert len(transport.requests) >= 1


@pytest.mark.django_db
def test_bad_questions_are_400(people):
    bob = client_for(people["bob"])
    assert bob.post("/api/assistant/ask/", {"question": ""}, content_type="application/json").status_code == 400
    assert bob.post("/api/assistant/ask/", {"question": "x" * 600}, content_type="application/json").status_code == 400
    assert client_for(people["bob"]).post("/api/assistant/ask/", "{", content_type="application/json").status_code == 400


def _pdf(pages: list[str]) -> bytes:
    """A minimal text PDF (one font, one text line per page) written by hand."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        content_id = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n{obj}\nendobj\n".encode())
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def _upload_and_index(client, room, filename: str, pdf: bytes, *, chunks: int) -> Document:
    """Upload through the API, then run the indexing task's function (Celery is not running here)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = client.post(f"/api/rooms/{room.pk}/documents/",
                    {"file": SimpleUploadedFile(filename, pdf, content_type="application/pdf")})
    assert r.status_code == 201, r.content
    document = Document.objects.get(pk=r.json()["id"])
    assert indexing.index_document(document.pk) == chunks
    document.refresh_from_db()
    return document


@pytest.mark.django_db
def test_documents_upload_index_and_cite_the_page(people, office):
    alice = client_for(people["alice"])
    pdf = _pdf(["Welcome to the handbook.", "Expense reports are due on the fifth of each month."])
    from django.core.files.uploadedfile import SimpleUploadedFile

    document = _upload_and_index(alice, office["atlas"], "handbook.pdf", pdf, chunks=2)
    assert document.status == "indexed" and document.page_count == 2
    chunk = KnowledgeChunk.objects.get(source_id=f"document:{document.pk}:p2:c0")
    assert "Expense reports" in chunk.text and chunk.locator["page"] == 2
    page = alice.get(f"/documents/{document.pk}/?page=2")
    assert page.status_code == 200 and b"Expense reports" in page.content
    assert client_for(people["bob"]).get(f"/documents/{document.pk}/").status_code == 200  # Atlas is open
    # Same file again: the same document, not a second copy.
    r = alice.post(f"/api/rooms/{office['atlas'].pk}/documents/",
                   {"file": SimpleUploadedFile("again.pdf", pdf, content_type="application/pdf")})
    assert r.status_code == 200 and r.json()["id"] == document.pk


def _scanned_pdf(pages: list[list[str]]) -> bytes:
    """A PDF whose pages are only pictures of text (what a scanner produces): no text layer."""
    from PIL import Image, ImageDraw, ImageFont

    images = []
    for lines in pages:
        image = Image.new("RGB", (1240, 700), "white")
        draw = ImageDraw.Draw(image)
        try:
            font = ImageFont.truetype("DejaVuSans.ttf", 26)  # small print
        except OSError:
            font = ImageFont.load_default(size=34)
        for i, line in enumerate(lines):
            draw.text((60, 80 + i * 90), line, fill="black", font=font)
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=150)
    return out.getvalue()


@pytest.mark.django_db
def test_scanned_pages_are_read_by_ocr_and_cited(people, office):

    pdf = _scanned_pdf([["Storage vendor contract"], ["The storage vendor contract renews on March 3.",
                                                      "Notice must be given sixty days before."]])
    from pypdf import PdfReader

    assert not any((p.extract_text() or "").strip() for p in PdfReader(io.BytesIO(pdf)).pages)  # really no text
    alice = client_for(people["alice"])
    document = _upload_and_index(alice, office["atlas"], "contract-scan.pdf", pdf, chunks=2)
    assert document.status == "indexed" and document.error == ""
    page = document.pages.get(number=2)
    assert page.ocr is True
    assert "renews on March 3" in page.text and "sixty days" in page.text
    # The OCR'd page answers a question, cited to its page.
    def answer(endpoint, body):
        sources = body["messages"][-1]["content"]
        n = next(line[1] for line in sources.splitlines() if "renews on March 3" in line)
        return {"answer": f"It renews on March 3 [{n}].", "citations": [int(n)], "found": True, "confidence": 0.9}

    install(by_purpose(knowledge_answer=answer))
    result = through_job(alice, "post", "/api/assistant/ask/", {"question": "When does the storage vendor contract renew?",
                                                               "room": office["atlas"].pk}).json()["result"]
    assert result["found"] and result["citations"][0]["url"] == f"/documents/{document.pk}/?page=2#page-2", result


def test_an_undecodable_image_yields_no_text_rather_than_an_error():
    from assistant import ocr

    assert ocr.image_text(b"not an image at all") == ""


@pytest.mark.django_db
def test_bad_uploads_are_refused_clearly(people, office):
    from django.core.files.uploadedfile import SimpleUploadedFile

    bob = client_for(people["bob"])
    url = f"/api/rooms/{office['atlas'].pk}/documents/"
    r = bob.post(url, {"file": SimpleUploadedFile("run.exe", b"MZ...", content_type="application/octet-stream")})
    assert r.status_code == 400 and "txt" in r.json()["error"]["message"]
    r = bob.post(url, {"file": SimpleUploadedFile("fake.pdf", b"hello", content_type="application/pdf")})
    assert r.status_code == 400 and "not a PDF" in r.json()["error"]["message"]
    r = bob.post(url, {})
    assert r.status_code == 400
    r = bob.post(f"/api/rooms/{office['vault'].pk}/documents/",
                 {"file": SimpleUploadedFile("a.txt", b"secret", content_type="text/plain")})
    assert r.status_code == 404
    with pytest.raises(Exception, match="UTF-8"):
        document_upload(user=people["bob"], room=office["atlas"], filename="bad.txt", content=b"\xff\xfe\x00")


@pytest.mark.django_db
def test_chat_and_transcripts_are_indexed_by_the_sweep(people, office):
    message, _ = room_services.chat_message_send(
        user=people["bob"], thread_id=room_services.system_message_send(room=office["atlas"], body="hi")[0].thread_id,
        body="The printer on floor two needs toner.")
    counts = indexing.sweep_unindexed()
    assert counts["messages"] >= 2
    chunk = KnowledgeChunk.objects.get(source_id=f"message:{message.pk}")
    assert chunk.room == office["atlas"] and chunk.text.startswith("Bob Baker: ")
    assert indexing.sweep_unindexed()["messages"] == 0  # nothing twice


@pytest.mark.django_db
def test_catch_up_lists_what_happened_since_i_left(people, office):
    from django.utils import timezone

    from rooms.models import RoomVisit

    RoomVisit.objects.create(user=people["bob"], room=office["atlas"], entered_at=timezone.now() - timezone.timedelta(hours=2),
                             left_at=timezone.now() - timezone.timedelta(hours=1))
    room_services.system_message_send(room=office["atlas"], body="Projector fixed.")
    install(by_purpose(room_catch_up={"summary": "The projector was fixed.", "highlights": [1, 9], "confidence": 0.8}))
    r = through_job(client_for(people["bob"]), "get", f"/api/rooms/{office['atlas'].pk}/catch-up/")
    body = r.json()["result"]
    assert r.status_code == 200 and body["summary"] == "The projector was fixed." and body["highlights"] == [1]
    assert any("Projector fixed." in e["text"] for e in body["events"])
    assert client_for(people["bob"]).get(f"/api/rooms/{office['vault'].pk}/catch-up/").status_code == 404


@pytest.mark.django_db
def test_tickets_are_room_knowledge_kept_current_and_only_for_who_may_enter(people, office):
    from automation import knowledge
    from automation import services as work
    from automation.models import Ticket

    dana = people["dana"]
    ticket, _ = work.ticket_open(kind="facilities", room=office["atlas"], severity="high",
                                 title="Projector in Atlas shows no picture", detail="HDMI input dead since Monday.",
                                 source="member:alice", dedupe_key="", actor_label="alice")
    secret, _ = work.ticket_open(kind="facilities", room=office["vault"], severity="low",
                                 title="Vault safe lock jams", detail="", source="member:alice", dedupe_key="",
                                 actor_label="alice")
    assert knowledge.tickets_index([ticket.pk, secret.pk]) == 2
    chunk = KnowledgeChunk.objects.get(source_kind="ticket", source_id=f"ticket:{ticket.pk}")
    assert "Open" in chunk.text and chunk.room == office["atlas"]

    def answer(endpoint, body):
        sources = body["messages"][-1]["content"]
        assert "safe lock" not in sources  # bob may not enter the Vault: its ticket never reaches the model
        n = next(line[1] for line in sources.splitlines() if "Projector in Atlas" in line)
        return {"answer": f"No, it is still broken [{n}].", "citations": [int(n)], "found": True, "confidence": 0.9}

    install(by_purpose(knowledge_answer=answer))
    r = through_job(client_for(people["bob"]), "post", "/api/assistant/ask/",
                    {"question": "Is the projector in Atlas fixed?"})
    citation = r.json()["result"]["citations"][0]
    assert citation["url"] == f"/tickets/?show=all#ticket-{ticket.pk}"
    assert client_for(people["bob"]).get("/tickets/?show=all").content.count(f'id="ticket-{ticket.pk}"'.encode()) == 1

    # resolved: the chunk says so (replaced, not duplicated); unchanged: left alone
    work.ticket_update(ticket, actor=dana, status=Ticket.Status.ACKNOWLEDGED)
    work.ticket_resolve(Ticket.objects.get(pk=ticket.pk), actor=dana, reason="new cable")
    knowledge.tickets_index([ticket.pk])
    chunks = KnowledgeChunk.objects.filter(source_kind="ticket", source_id=f"ticket:{ticket.pk}")
    assert chunks.count() == 1 and "Resolved" in chunks.get().text
    before = chunks.get().pk
    knowledge.tickets_index([ticket.pk])
    assert chunks.get().pk == before

    # a change whose enqueue was lost is picked up by the sweep
    Ticket.objects.filter(pk=secret.pk).update(title="Vault safe lock replaced", updated_at=timezone.now())
    assert indexing.sweep_unindexed()["tickets"] == 1
    assert "replaced" in KnowledgeChunk.objects.get(source_id=f"ticket:{secret.pk}").text


def test_catch_up_is_limited_per_minute_and_the_window_expires(people, office, monkeypatch):
    # given: one fixed minute, so the eleventh request falls in the same window as the first ten
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 1_800_000_000.0))
    url = f"/api/rooms/{office['atlas'].pk}/catch-up/"
    bob = client_for(people["bob"])
    # when
    codes = [bob.get(url).status_code for _ in range(11)]
    # then: ten accepted (each a job for the assistant worker), then a 429 in the project's error
    # shape; the window's counter expires
    assert codes == [202] * 10 + [429]
    assert bob.get(url).json()["error"]["code"]
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = client.keys("office:ratelimit:catchup:*")
        assert keys and all(0 < client.ttl(key) <= 120 for key in keys)
    finally:
        client.close()
