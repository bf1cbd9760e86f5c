"""The transcription worker: a process of its own (not Daphne), as many as the hardware allows.

It claims speaker streams from Redis, feeds each speaker's audio to its own streaming transcriber,
broadcasts partial captions as they change, and stores final segments (which announce themselves
after commit). Decodes that several speakers need at once go to the model together (batched where
the device gains from it), finals before partials. When the worker falls behind real time it says
so (log, metric, and a `transcription.status` event in the room) and sheds partial captions first;
it never skips audio or drops a final.

Exactly once: audio is read through a Redis consumer group and an entry is acknowledged only when
all of its audio is stored as final text (or was silence). A worker that takes over a dead worker's
stream claims its unacknowledged entries and skips the audio before the end of the speaker's last
stored segment, so nothing is lost and nothing is stored twice (ADR 0014).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from prometheus_client import Counter, Gauge

from office.events import send_event
from rooms.selectors import display_name

from . import services
from .audio_bus import GROUP, SAMPLE_RATE, STREAMS_KEY, owner_key, parse_stream_key
from .engine import (
    LIVE_OPTIONS,
    LIVE_PROCESS_EVERY_S,
    SpeakerStream,
    WhisperSettings,
    decode_jobs,
    load_model,
)
from .models import Meeting
from .selectors import speaker_transcribed_until

logger = logging.getLogger(__name__)

PROCESS_EVERY_SECONDS = LIVE_PROCESS_EVERY_S
LAG_WARNING_SECONDS = 3.0
# A stream with no audio and no end marker for this long lost its peer (e.g. a Daphne node died):
# finish it, so what was said is stored.
STREAM_IDLE_SECONDS = 10.0
BUSY_WINDOW_S = 5.0

WORKER_LAG = Gauge("office_transcription_lag_seconds", "How far the worker is behind live audio", ["stream"])
PARTIALS_SHED = Counter("office_transcription_partials_shed_total", "Partial captions skipped to keep up")

# Deletes a finished stream only if no new session wrote to it meanwhile (atomic in Redis).
_FORGET_IF_EMPTY = """
redis.call('DEL', KEYS[3])
if redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], KEYS[1])
  return 1
end
return 0
"""


@dataclass
class ClaimedStream:
    key: str
    meeting_id: int
    user_id: int
    room_id: int
    speaker_name: str
    transcriber: SpeakerStream
    stored_until: float | None = None  # wall time where the speaker's stored text ends (skip before it)
    origin_wall: float | None = None  # wall time of the transcriber's first sample
    stream_wall_start: float | None = None  # wall time of the stream's sample 0 (base of start_ms)
    unacked: deque = field(default_factory=deque)  # (entry id, wall time its audio ends), in order
    samples_in: int = 0
    samples_at_last_process: int = 0
    last_partial: str = ""
    lagging: bool = False
    ended: bool = False
    end_id: str | None = None
    last_audio_at: float = field(default_factory=time.monotonic)

    def lag_s(self) -> float:
        if self.origin_wall is None:
            return 0.0
        return max(0.0, time.time() - (self.origin_wall + self.samples_in / SAMPLE_RATE))


def engine_settings() -> WhisperSettings:
    from .engine import default_model_path

    return WhisperSettings(
        model_path=settings.OFFICE_WHISPER_MODEL_PATH or default_model_path(),
        device=settings.OFFICE_WHISPER_DEVICE,
        compute_type=settings.OFFICE_WHISPER_COMPUTE_TYPE,
        cpu_threads=settings.OFFICE_WHISPER_CPU_THREADS,
        language=settings.OFFICE_WHISPER_LANGUAGE or None,
        model_id=settings.OFFICE_WHISPER_MODEL_ID,
        batch_size=settings.OFFICE_WHISPER_BATCH_SIZE,
    )


class TranscriptionWorker:
    def __init__(self, *, redis_url: str | None = None, whisper: WhisperSettings | None = None,
                 worker_id: str | None = None):
        self.redis = redis.Redis.from_url(redis_url or settings.REDIS_URL)
        self.whisper = whisper or engine_settings()
        self.model = load_model(self.whisper)
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_seconds = settings.OFFICE_TRANSCRIPTION_CLAIM_SECONDS
        self.streams: dict[str, ClaimedStream] = {}
        self.shedding_partials = False
        self._busy: deque = deque()  # (monotonic end, seconds) of recent decodes
        self._last_claim = 0.0
        self._forget_script = self.redis.register_script(_FORGET_IF_EMPTY)

    # --- claiming ---

    def _claim_new_streams(self) -> None:
        now = time.monotonic()
        if now - self._last_claim < 1.0:
            return
        self._last_claim = now
        for key in list(self.streams):
            if self.redis.get(owner_key(key)) == self.worker_id.encode():
                self.redis.expire(owner_key(key), self.claim_seconds)
            else:  # stalled past the claim: another worker has the stream now
                logger.warning("lost the claim on %s; another worker continues it", key)
                self.streams.pop(key)
        for key in self.redis.smembers(STREAMS_KEY):
            key = key.decode()
            if key not in self.streams and self.redis.set(owner_key(key), self.worker_id, nx=True,
                                                          ex=self.claim_seconds):
                self._open_stream(key)

    def _open_stream(self, key: str) -> None:
        meeting_id, user_id = parse_stream_key(key)
        meeting = Meeting.objects.filter(pk=meeting_id).select_related("room").first()
        if meeting is None:
            self.redis.delete(key)
            self._forget_script(keys=[key, STREAMS_KEY, owner_key(key)])
            return
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=user_id).select_related("profile").first()
        stream = ClaimedStream(
            key=key, meeting_id=meeting_id, user_id=user_id, room_id=meeting.room_id,
            speaker_name=display_name(user) if user else "unknown",
            transcriber=SpeakerStream(self.model, self.whisper, speaker_key=key, options=LIVE_OPTIONS),
            stored_until=speaker_transcribed_until(meeting_id, user_id),
        )
        self.streams[key] = stream
        try:
            self.redis.xgroup_create(key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        # Entries another worker read but did not acknowledge (it died, or this is a new session
        # after an end marker): they come first, in order.
        start, resumed = "0-0", 0
        while True:
            reply = self.redis.xautoclaim(key, GROUP, self.worker_id, 0, start_id=start, count=500)
            start, entries, deleted = reply[0], reply[1], (reply[2] if len(reply) > 2 else [])
            for entry_id, fields in entries:
                if stream.ended:
                    break
                resumed += 1
                self._accept(stream, entry_id.decode(), fields)
            if deleted:
                self.redis.xack(key, GROUP, *deleted)
            if stream.ended or start in (b"0-0", "0-0"):
                break
        logger.info("transcribing %s%s", key, f" (resumed {resumed} unacknowledged entries)" if resumed else "")

    def _close_stream(self, stream: ClaimedStream) -> None:
        """After the end marker: drop the acknowledged session; keep the stream if a new one began."""
        self.streams.pop(stream.key, None)
        try:
            WORKER_LAG.remove(stream.key)
        except KeyError:
            pass
        done = [entry_id for entry_id, _end in stream.unacked]  # finish() stored or let go of all of it
        stream.unacked.clear()
        if stream.end_id is not None:
            done.append(stream.end_id)
        self._acknowledge(stream.key, done)
        self._forget_script(keys=[stream.key, STREAMS_KEY, owner_key(stream.key)])

    # --- audio in ---

    def _accept(self, stream: ClaimedStream, entry_id: str, fields: dict | None) -> None:
        if not fields:  # trimmed away before anyone read it
            self.redis.xack(stream.key, GROUP, entry_id)
            return
        if fields.get(b"end"):
            stream.ended = True
            stream.end_id = entry_id
            return
        pcm = np.frombuffer(fields[b"pcm"], dtype=np.int16).astype(np.float32) / 32768.0
        t = float(fields[b"t"])
        index = int(fields.get(b"s", -1))
        if stream.stream_wall_start is None:
            stream.stream_wall_start = t - index / SAMPLE_RATE if index >= 0 else t
        end = t + len(pcm) / SAMPLE_RATE
        if stream.stored_until is not None and stream.origin_wall is None:
            if end <= stream.stored_until:  # stored already (taken over from a worker that died)
                self.redis.xack(stream.key, GROUP, entry_id)
                return
            if t < stream.stored_until:
                pcm = pcm[int((stream.stored_until - t) * SAMPLE_RATE):]
                t = end - len(pcm) / SAMPLE_RATE
        if stream.origin_wall is None:
            stream.origin_wall = t
        stream.transcriber.feed(pcm)
        stream.unacked.append((entry_id, end))
        stream.samples_in += len(pcm)
        stream.last_audio_at = time.monotonic()

    def _acknowledge_settled(self, stream: ClaimedStream) -> None:
        """Acknowledge the entries whose audio is all stored or let go of, and trim them away."""
        if stream.origin_wall is None:
            return
        settled = stream.origin_wall + stream.transcriber.settled_s + 1e-3
        done = []
        while stream.unacked and stream.unacked[0][1] <= settled:
            done.append(stream.unacked.popleft()[0])
        self._acknowledge(stream.key, done)

    def _acknowledge(self, key: str, entry_ids: list[str]) -> None:
        """XACK these entries (in stream order, all earlier ones done already) and trim them away."""
        if not entry_ids:
            return
        self.redis.xack(key, GROUP, *entry_ids)
        ms, seq = entry_ids[-1].split("-")
        self.redis.xtrim(key, minid=f"{ms}-{int(seq) + 1}")

    # --- one pass ---

    def step(self, block_ms: int = 200) -> int:
        """Read new audio, decode where due (finals first), publish, acknowledge. Returns entries read."""
        self._claim_new_streams()
        reading = {s.key: ">" for s in self.streams.values() if not s.ended}
        if not self.streams:
            time.sleep(block_ms / 1000)
            return 0
        replies = self.redis.xreadgroup(GROUP, self.worker_id, reading, count=100, block=block_ms) if reading else []
        read = 0
        for key, entries in replies or []:
            stream = self.streams.get(key.decode())
            if stream is None:
                continue
            for entry_id, fields in entries:
                if stream.ended:
                    break  # a new session's entries stay pending: reopening the stream claims them
                read += 1
                self._accept(stream, entry_id.decode(), fields)

        partials, early = self._partials_allowed()
        now = time.monotonic()
        jobs = []
        for stream in sorted(self.streams.values(), key=lambda s: s.samples_in - s.samples_at_last_process,
                             reverse=True):
            if not stream.ended and now - stream.last_audio_at > STREAM_IDLE_SECONDS:
                logger.warning("no audio on %s for %.0fs and no end marker: finishing it", stream.key,
                               now - stream.last_audio_at)
                stream.ended = True
            if stream.ended:
                started = time.monotonic()
                self._publish(stream, stream.transcriber.finish())
                self._busy.append((time.monotonic(), time.monotonic() - started))
                self._close_stream(stream)
                logger.info("finished %s", stream.key)
            elif stream.samples_in - stream.samples_at_last_process >= PROCESS_EVERY_SECONDS * SAMPLE_RATE:
                stream.samples_at_last_process = stream.samples_in
                job = stream.transcriber.poll(partials=partials, early=early)
                if job is not None:
                    jobs.append((stream, job))
                self._report_lag(stream)
        for kind in ("final", "partial"):
            batch = [(stream, job) for stream, job in jobs if job.kind == kind]
            if not batch:
                continue
            started = time.monotonic()
            results = decode_jobs([(stream.transcriber, job) for stream, job in batch])
            self._busy.append((time.monotonic(), time.monotonic() - started))
            for (stream, _job), events in zip(batch, results, strict=True):
                self._publish(stream, events)
                self._acknowledge_settled(stream)
        for stream in self.streams.values():
            if stream.origin_wall is not None and stream.unacked:
                self._acknowledge_settled(stream)  # silence let go of without a decode
        return read

    def busy_share(self) -> float:
        """Share of the last BUSY_WINDOW_S the worker spent decoding."""
        now = time.monotonic()
        while self._busy and self._busy[0][0] < now - BUSY_WINDOW_S:
            self._busy.popleft()
        return sum(seconds for _end, seconds in self._busy) / BUSY_WINDOW_S

    def _partials_allowed(self) -> tuple[bool, bool]:
        """(partials, early finals): partials only while the worker has headroom (finals of other
        speakers would wait behind them), and neither while it is behind live audio."""
        lag = max((s.lag_s() for s in self.streams.values()), default=0.0)
        behind = lag > settings.OFFICE_TRANSCRIPTION_PARTIALS_MAX_LAG_S
        busy = self.busy_share()
        shed = behind or busy > settings.OFFICE_TRANSCRIPTION_PARTIALS_MAX_BUSY
        if shed != self.shedding_partials:
            self.shedding_partials = shed
            if shed:
                logger.log(logging.WARNING if behind else logging.INFO,
                           "partial captions paused (%.1fs behind live audio, decoding %.0f%% of the time)",
                           lag, 100 * busy)
            else:
                logger.info("partial captions resume")
        if shed:
            PARTIALS_SHED.inc()
        return not shed, not behind

    def _report_lag(self, stream: ClaimedStream) -> None:
        if stream.origin_wall is None:
            return
        lag = stream.lag_s()
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
            origin = stream.origin_wall if stream.origin_wall is not None else time.time()
            base = stream.stream_wall_start if stream.stream_wall_start is not None else origin
            shift = origin - base  # times count from the stream's first sample, also after a takeover
            services.transcript_segment_add(
                meeting_id=stream.meeting_id,
                speaker_id=stream.user_id,
                start_ms=int((shift + event.start_s) * 1000),
                end_ms=int((shift + event.end_s) * 1000),
                spoken_at=datetime.fromtimestamp(origin + event.start_s, tz=UTC),
                text=event.text,
                words=[[w, int((shift + s) * 1000), int((shift + e) * 1000), round(p, 3)] for w, s, e, p in event.words],
                confidence=event.confidence,
                model_id=event.model_id,
            )

    def _group_send(self, room_id: int, event: dict) -> None:
        send_event(services.room_group(room_id), event)  # partials are not stored: sent at once

    def _let_go_of_all(self) -> None:
        self.streams.clear()
        self._last_claim = 0.0
        try:
            for key in self.redis.smembers(STREAMS_KEY):
                if self.redis.get(owner_key(key.decode())) == self.worker_id.encode():
                    self.redis.delete(owner_key(key.decode()))
        except redis.ConnectionError:
            pass  # the claims expire by themselves

    def run(self, stop: threading.Event) -> None:
        logger.info("transcription worker %s ready (model %s on %s/%s)", self.worker_id, self.whisper.model_id,
                    self.whisper.device, self.whisper.compute_type)
        while not stop.is_set():
            try:
                self.step()
            except redis.ConnectionError:
                logger.warning("Redis unavailable; retrying")
                time.sleep(1)
            except (OperationalError, InterfaceError):
                # The database is away (a restart): let go of every stream unacknowledged, as a worker
                # that lost its claim does; they are claimed again, resumed from their pending entries
                # after the last stored segment, once the database is back (ADR 0014).
                logger.warning("database unavailable; letting go of %d stream(s) to resume them", len(self.streams))
                self._let_go_of_all()
                connections.close_all()
                time.sleep(1)
        for stream in list(self.streams.values()):  # release claims so another worker takes over at once
            self.redis.delete(owner_key(stream.key))
