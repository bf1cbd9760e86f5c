"""The transcription worker: a process of its own (not Daphne), as many as the hardware allows.

It claims speaker streams from Redis, feeds each speaker's audio to its own streaming transcriber,
broadcasts partial captions as they change, and stores final segments (which announce themselves
after commit). Speakers are served round-robin; when the worker falls behind real time it says so
(log, metric, and a `transcription.status` event in the room) instead of skipping audio.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import redis
from django.conf import settings
from prometheus_client import Gauge

from office.events import send_event
from rooms.selectors import display_name

from . import services
from .audio_bus import SAMPLE_RATE, STREAMS_KEY, owner_key, parse_stream_key
from .engine import LIVE_OPTIONS, LIVE_PROCESS_EVERY_S, SpeakerStream, WhisperSettings, load_model
from .models import Meeting

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 15
PROCESS_EVERY_SECONDS = LIVE_PROCESS_EVERY_S
LAG_WARNING_SECONDS = 3.0
# A stream with no audio and no end marker for this long lost its peer (e.g. a Daphne node died):
# finish it, so what was said is stored.
STREAM_IDLE_SECONDS = 10.0

WORKER_LAG = Gauge("office_transcription_lag_seconds", "How far the worker is behind live audio", ["stream"])


@dataclass
class ClaimedStream:
    key: str
    meeting_id: int
    user_id: int
    room_id: int
    speaker_name: str
    transcriber: SpeakerStream
    last_id: str = "0-0"
    wall_start: float | None = None
    samples_in: int = 0
    samples_at_last_process: int = 0
    last_partial: str = ""
    lagging: bool = False
    ended: bool = False
    last_audio_at: float = field(default_factory=time.monotonic)
    events: list = field(default_factory=list)


def engine_settings() -> WhisperSettings:
    from .engine import default_model_path

    return WhisperSettings(
        model_path=settings.OFFICE_WHISPER_MODEL_PATH or default_model_path(),
        device=settings.OFFICE_WHISPER_DEVICE,
        compute_type=settings.OFFICE_WHISPER_COMPUTE_TYPE,
        cpu_threads=settings.OFFICE_WHISPER_CPU_THREADS,
        model_id=settings.OFFICE_WHISPER_MODEL_ID,
    )


class TranscriptionWorker:
    def __init__(self, *, redis_url: str | None = None, whisper: WhisperSettings | None = None):
        self.redis = redis.Redis.from_url(redis_url or settings.REDIS_URL)
        self.whisper = whisper or engine_settings()
        self.model = load_model(self.whisper)
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.streams: dict[str, ClaimedStream] = {}
        self._last_claim = 0.0

    # --- claiming ---

    def _claim_new_streams(self) -> None:
        now = time.monotonic()
        if now - self._last_claim < 1.0:
            return
        self._last_claim = now
        for key in self.redis.smembers(STREAMS_KEY):
            key = key.decode()
            if key in self.streams:
                self.redis.set(owner_key(key), self.worker_id, ex=CLAIM_SECONDS)
                continue
            if self.redis.set(owner_key(key), self.worker_id, nx=True, ex=CLAIM_SECONDS):
                self._open_stream(key)

    def _open_stream(self, key: str) -> None:
        meeting_id, user_id = parse_stream_key(key)
        meeting = Meeting.objects.filter(pk=meeting_id).select_related("room").first()
        if meeting is None:
            self._forget(key)
            return
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=user_id).select_related("profile").first()
        self.streams[key] = ClaimedStream(
            key=key, meeting_id=meeting_id, user_id=user_id, room_id=meeting.room_id,
            speaker_name=display_name(user) if user else "unknown",
            transcriber=SpeakerStream(self.model, self.whisper, speaker_key=key, options=LIVE_OPTIONS),
        )
        logger.info("transcribing %s", key)

    def _forget(self, key: str) -> None:
        pipe = self.redis.pipeline()
        pipe.srem(STREAMS_KEY, key)
        pipe.delete(key, owner_key(key))
        pipe.execute()
        self.streams.pop(key, None)
        try:
            WORKER_LAG.remove(key)
        except KeyError:
            pass

    # --- one pass ---

    def step(self, block_ms: int = 200) -> int:
        """Read new audio, transcribe where enough arrived, publish. Returns entries read."""
        self._claim_new_streams()
        if not self.streams:
            time.sleep(block_ms / 1000)
            return 0
        replies = self.redis.xread({s.key: s.last_id for s in self.streams.values()}, count=100, block=block_ms)
        read = 0
        for key, entries in replies or []:
            stream = self.streams.get(key.decode())
            if stream is None:
                continue
            for entry_id, fields in entries:
                read += 1
                stream.last_id = entry_id.decode()
                if fields.get(b"end"):
                    stream.ended = True
                    break
                pcm = np.frombuffer(fields[b"pcm"], dtype=np.int16).astype(np.float32) / 32768.0
                if stream.wall_start is None:
                    stream.wall_start = float(fields[b"t"])
                stream.transcriber.feed(pcm)
                stream.samples_in += len(pcm)
                stream.last_audio_at = time.monotonic()
        # Round robin: every stream with enough new audio gets one pass, oldest backlog first.
        now = time.monotonic()
        for stream in sorted(self.streams.values(), key=lambda s: s.samples_in - s.samples_at_last_process,
                             reverse=True):
            if not stream.ended and now - stream.last_audio_at > STREAM_IDLE_SECONDS:
                logger.warning("no audio on %s for %.0fs and no end marker: finishing it", stream.key,
                               now - stream.last_audio_at)
                stream.ended = True
            if stream.ended:
                self._publish(stream, stream.transcriber.finish())
                self._forget(stream.key)
                logger.info("finished %s", stream.key)
            elif stream.samples_in - stream.samples_at_last_process >= PROCESS_EVERY_SECONDS * SAMPLE_RATE:
                stream.samples_at_last_process = stream.samples_in
                self._publish(stream, stream.transcriber.process())
                self._report_lag(stream)
        return read

    def _report_lag(self, stream: ClaimedStream) -> None:
        if stream.wall_start is None:
            return
        lag = max(0.0, time.time() - (stream.wall_start + stream.samples_in / SAMPLE_RATE))
        WORKER_LAG.labels(stream.key).set(lag)
        lagging = lag > LAG_WARNING_SECONDS
        if lagging != stream.lagging:
            stream.lagging = lagging
            if lagging:
                logger.warning("transcription of %s is %.1fs behind", stream.key, lag)
            self._group_send(stream.room_id, {
                "type": "transcription.status", "meeting": stream.meeting_id, "speaker": stream.user_id,
                "lagging": lagging, "lag_s": round(lag, 1),
            })

    def _publish(self, stream: ClaimedStream, events) -> None:
        for event in events:
            if event.kind == "partial":
                if event.text != stream.last_partial:
                    stream.last_partial = event.text
                    self._group_send(stream.room_id, {
                        "type": "caption.partial", "meeting": stream.meeting_id,
                        "speaker": {"id": stream.user_id, "name": stream.speaker_name}, "text": event.text,
                    })
                continue
            stream.last_partial = ""
            wall = (stream.wall_start or time.time()) + event.start_s
            services.transcript_segment_add(
                meeting_id=stream.meeting_id,
                speaker_id=stream.user_id,
                start_ms=int(event.start_s * 1000),
                end_ms=int(event.end_s * 1000),
                spoken_at=datetime.fromtimestamp(wall, tz=UTC),
                text=event.text,
                words=[[w, int(s * 1000), int(e * 1000), round(p, 3)] for w, s, e, p in event.words],
                confidence=event.confidence,
                model_id=event.model_id,
            )

    def _group_send(self, room_id: int, event: dict) -> None:
        send_event(services.room_group(room_id), event)  # partials are not stored: sent at once

    def run(self, stop: threading.Event) -> None:
        logger.info("transcription worker %s ready (model %s on %s/%s)", self.worker_id, self.whisper.model_id,
                    self.whisper.device, self.whisper.compute_type)
        while not stop.is_set():
            try:
                self.step()
            except redis.ConnectionError:
                logger.warning("Redis unavailable; retrying")
                time.sleep(1)
        for stream in list(self.streams.values()):  # release claims so another worker takes over at once
            self.redis.delete(owner_key(stream.key))
