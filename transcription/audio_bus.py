"""Audio from server peers to transcription workers over Redis streams.

One stream per (meeting, speaker): `office:audio:<meeting>:<user>`, entries of 16 kHz mono s16 PCM
with the wall-clock time (`t`) and stream sample index (`s`) of their first sample, and a final entry
with `end=1`. Streams are listed in a set so any worker can find them; a worker claims a stream with
an expiring lock, so several workers share the speakers and a dead worker's streams are picked up by
the others. Workers read through the consumer group `GROUP` and acknowledge an entry only once all
of its audio is stored as final text (or was silence), so a worker that takes over a stream gets
exactly the audio that is not stored yet (ADR 0014).
"""

from __future__ import annotations

STREAMS_KEY = "office:audio:streams"
GROUP = "transcribers"
SAMPLE_RATE = 16000
MAX_STREAM_ENTRIES = 3000  # about 10 minutes of 200 ms chunks: a stalled worker cannot exhaust Redis


def stream_key(meeting_id: int, user_id: int) -> str:
    return f"office:audio:{meeting_id}:{user_id}"


def owner_key(stream: str) -> str:
    return f"{stream}:owner"


def parse_stream_key(key: str) -> tuple[int, int]:
    _, _, meeting, user = key.split(":")
    return int(meeting), int(user)
