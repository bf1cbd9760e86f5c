"""A meeting's transcript as files people take elsewhere: plain text, Markdown, SubRip (SRT) and
WebVTT. Cue times are offsets from the meeting's start (the wall-clock time each turn began, plus
its length); WebVTT names the speaker as the cue's voice, SRT (which has no voices) in the text."""

from __future__ import annotations

import datetime as dt
import html

import srt
import webvtt

from rooms.models import display_name

from .models import Meeting, TranscriptSegment

TRANSCRIPT_FORMATS = {
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


def _turns(meeting: Meeting) -> list[tuple[TranscriptSegment, dt.timedelta, dt.timedelta, str]]:
    """(segment, start, end, speaker name) in spoken order, times from the meeting's start."""
    segments = list(TranscriptSegment.objects.filter(meeting=meeting).select_related("speaker__profile")
                    .order_by("spoken_at", "seq"))
    origin = min([meeting.started_at, *(s.spoken_at for s in segments)])
    turns = []
    for s in segments:
        start = s.spoken_at - origin
        length = dt.timedelta(milliseconds=max(s.end_ms - s.start_ms, 1))
        turns.append((s, start, start + length, display_name(s.speaker)))
    return turns


def _clock(offset: dt.timedelta) -> str:
    seconds = int(offset.total_seconds())
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _title(meeting: Meeting) -> str:
    return f"{meeting.room.name}, meeting of {meeting.started_at:%Y-%m-%d %H:%M} UTC"


def transcript_as_text(meeting: Meeting) -> str:
    lines = [_title(meeting), ""]
    lines += [f"[{_clock(start)}] {name}: {s.text}" for s, start, _end, name in _turns(meeting)]
    return "\n".join(lines) + "\n"


def transcript_as_markdown(meeting: Meeting) -> str:
    lines = [f"# {_title(meeting)}", ""]
    for s, start, _end, name in _turns(meeting):
        lines += [f"**{name}** `{_clock(start)}`", "", s.text.replace("\n", " "), ""]
    return "\n".join(lines)


def transcript_as_srt(meeting: Meeting) -> str:
    subtitles = [srt.Subtitle(index=i, start=start, end=end, content=f"{name}: {s.text}")
                 for i, (s, start, end, name) in enumerate(_turns(meeting), start=1)]
    return srt.compose(subtitles, reindex=False)


def _vtt_time(offset: dt.timedelta) -> str:
    ms = int(offset.total_seconds() * 1000)
    return f"{ms // 3_600_000:02d}:{ms % 3_600_000 // 60_000:02d}:{ms % 60_000 // 1000:02d}.{ms % 1000:03d}"


def transcript_as_webvtt(meeting: Meeting) -> str:
    vtt = webvtt.WebVTT()
    for s, start, end, name in _turns(meeting):
        voice = html.escape(name, quote=False).replace(">", "")
        vtt.captions.append(webvtt.Caption(_vtt_time(start), _vtt_time(end),
                                           f"<v {voice}>{html.escape(s.text, quote=False)}</v>"))
    return vtt.content


def transcript_export(meeting: Meeting, file_format: str) -> str:
    """The transcript in `file_format` (a key of TRANSCRIPT_FORMATS)."""
    return {"txt": transcript_as_text, "md": transcript_as_markdown, "srt": transcript_as_srt,
            "vtt": transcript_as_webvtt}[file_format](meeting)


def export_filename(meeting: Meeting, what: str, extension: str) -> str:
    return f"{meeting.room.slug}-{meeting.started_at:%Y%m%d-%H%M}-{what}.{extension}"
