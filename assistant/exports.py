"""A meeting's notes and action items as Markdown, and everything about it as one JSON document
(the transcript's own formats are in transcription/exports.py)."""

from __future__ import annotations

from django.utils import timezone

from transcription.exports import transcript_export
from transcription.selectors import segment_payload
from transcription.serializers import MeetingDetailOut

from . import selectors

STATUS_MARK = {"approved": "x", "proposed": " ", "rejected": "-"}


def _notes(meeting) -> dict:
    summaries = selectors.meeting_summaries(meeting)
    return summaries["final"] or summaries["rolling"] or {}


def notes_as_markdown(meeting, *, items) -> str:
    """Summary, decisions, open questions and action items (with owner, due date and status)."""
    notes = _notes(meeting)
    lines = [f"# Notes: {meeting.room.name}, meeting of {meeting.started_at:%Y-%m-%d %H:%M} UTC", ""]
    if notes.get("kind") == "rolling":
        lines += ["_Running notes: the meeting has not been summed up yet._", ""]
    lines += ["## Summary", "", notes.get("summary") or "No summary yet.", ""]
    for heading, key in (("Decisions", "decisions"), ("Open questions", "open_questions")):
        entries = notes.get(key) or []
        lines += [f"## {heading}", "", *([f"- {entry}" for entry in entries] or ["None recorded."]), ""]
    lines += ["## Action items", ""]
    for item in items:
        owner = (item["owner"] or {}).get("name") or "no owner yet"
        due = f", due {item['due_date']}" if item["due_date"] else ""
        lines.append(f"- [{STATUS_MARK.get(item['status'], ' ')}] {item['text']} ({owner}{due}; {item['status']})")
    if not items:
        lines.append("None proposed.")
    return "\n".join(lines) + "\n"


def meeting_as_json(meeting, *, items) -> dict:
    """The meeting, its transcript (rows and plain text), notes and action items, in one document."""
    segments = meeting.segments.select_related("speaker__profile").order_by("seq")
    return {
        "exported_at": timezone.now().isoformat(),
        "meeting": dict(MeetingDetailOut(meeting).data),
        "transcript": [segment_payload(s) for s in segments],
        "transcript_text": transcript_export(meeting, "txt"),
        "notes": selectors.meeting_summaries(meeting),
        "action_items": items,
    }
