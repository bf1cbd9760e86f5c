"""The server side of a speaker's microphone: one aiortc peer connection per participant.

Attribution is exact because each peer carries one person's track. Audio is resampled to 16 kHz
mono and appended to that speaker's Redis stream for the transcription workers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import redis.asyncio as aioredis
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .audio_bus import MAX_STREAM_ENTRIES, SAMPLE_RATE, STREAMS_KEY, stream_key

logger = logging.getLogger(__name__)

CHUNK_SECONDS = 0.2
MAX_SDP_BYTES = 32 * 1024


class PeerError(Exception):
    """Something about the offer we cannot accept; the message is shown to the client."""


def ice_configuration() -> RTCConfiguration:
    """No STUN/TURN unless configured: nothing outside the office is contacted by default."""
    try:
        servers = json.loads(settings.OFFICE_ICE_SERVERS_JSON)
    except ValueError as exc:
        raise PeerError("OFFICE_ICE_SERVERS_JSON is not valid JSON") from exc
    return RTCConfiguration(iceServers=[RTCIceServer(**server) for server in servers])


def loopback_only() -> bool:
    return settings.OFFICE_RTC_HOST_ADDRESSES == ["127.0.0.1"]


_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) ")


def keep_allowed_candidates(sdp: str) -> str:
    """In loopback-only mode (tests), drop the browser's candidates on other addresses."""
    if not loopback_only():
        return sdp
    lines = []
    for line in sdp.splitlines():
        match = _CANDIDATE.match(line)
        if match and match.group(1) not in ("127.0.0.1", "::1"):
            continue
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def refuse_non_audio(pc: RTCPeerConnection) -> None:
    """The transcriber takes a speaker's microphone and nothing else: any video (or other) m-line in
    the offer is answered `inactive`, so the browser never sends it and nothing here decodes it."""
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "audio":
            transceiver.direction = "inactive"


class SpeakerPeer:
    def __init__(self, *, meeting_id: int, user_id: int, redis_url: str | None = None):
        self.meeting_id = meeting_id
        self.user_id = user_id
        self.stream = stream_key(meeting_id, user_id)
        self.redis = aioredis.Redis.from_url(redis_url or settings.REDIS_URL)
        self.pc: RTCPeerConnection | None = None
        self.pump: asyncio.Task | None = None
        self.closed = False

    async def answer(self, offer_sdp: str) -> str:
        """Accept the client's offer and return our answer (ICE gathered, no trickle)."""
        if not isinstance(offer_sdp, str) or len(offer_sdp.encode()) > MAX_SDP_BYTES:
            raise PeerError("offer must be SDP text under 32 KiB")
        if "m=audio" not in offer_sdp:
            raise PeerError("the offer has no audio track")
        self.pc = RTCPeerConnection(ice_configuration())
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=keep_allowed_candidates(offer_sdp), type="offer"))
            refuse_non_audio(self.pc)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError and friends for malformed SDP
            await self.close()
            raise PeerError(f"the offer could not be used: {exc}") from exc
        answer = self.pc.localDescription.sdp
        if "m=audio" not in answer:  # aiortc accepts some garbage and answers with no media at all
            await self.close()
            raise PeerError("the offer has no usable audio track")
        return answer

    def _on_track(self, track) -> None:
        if track.kind != "audio":
            logger.info("ignoring a %s track from user %s", track.kind, self.user_id)
            return
        if self.pump is None:
            self.pump = asyncio.ensure_future(self._pump_audio(track))

    async def _on_state(self) -> None:
        if self.pc is not None and self.pc.connectionState in ("failed", "closed"):
            await self.close()

    async def _pump_audio(self, track) -> None:
        import av

        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        chunk_bytes = int(SAMPLE_RATE * CHUNK_SECONDS) * 2
        buffer = bytearray()
        chunk_started = None
        self.samples_sent = 0
        await self.redis.sadd(STREAMS_KEY, self.stream)
        try:
            while True:
                frame = await track.recv()
                for out in resampler.resample(frame):
                    if chunk_started is None:
                        chunk_started = time.time() - len(buffer) / 2 / SAMPLE_RATE
                    buffer.extend(bytes(out.planes[0])[: out.samples * 2])
                while len(buffer) >= chunk_bytes:
                    await self._append(bytes(buffer[:chunk_bytes]), chunk_started)
                    del buffer[:chunk_bytes]
                    chunk_started += CHUNK_SECONDS
        except (MediaStreamError, asyncio.CancelledError):
            pass
        except Exception:
            logger.exception("audio from user %s stopped", self.user_id)
        finally:
            if buffer and chunk_started is not None:
                await self._append(bytes(buffer), chunk_started)
            pipe = self.redis.pipeline(transaction=False)
            pipe.xadd(self.stream, {"end": "1"}, maxlen=MAX_STREAM_ENTRIES, approximate=True)
            pipe.sadd(STREAMS_KEY, self.stream)
            await pipe.execute()

    async def _append(self, pcm: bytes, started: float) -> None:
        # t: wall-clock time of the first sample; s: its sample index in this stream (a worker that
        # resumes the stream from its unacknowledged entries keeps the same time base).
        # (The set entry is renewed with every chunk: a worker that just let go of a finished session
        # of this stream may have removed it.)
        # While Redis is away (a restart) the chunk is tried again and the track's frames wait in
        # aiortc's queue, so the speaker's audio continues where it was once Redis is back.
        delay = 0.1
        while True:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xadd(self.stream, {"pcm": pcm, "t": f"{started:.3f}", "s": str(self.samples_sent)},
                      maxlen=MAX_STREAM_ENTRIES, approximate=True)
            pipe.sadd(STREAMS_KEY, self.stream)
            try:
                await pipe.execute()
                break
            except (RedisConnectionError, RedisTimeoutError):
                if self.closed:
                    raise
                if delay == 0.1:
                    logger.warning("Redis unavailable; holding the audio of user %s until it is back", self.user_id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        self.samples_sent += len(pcm) // 2

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.pc is not None:
            await self.pc.close()  # ends the track: the pump writes the end marker
        if self.pump is not None:
            try:
                await asyncio.wait_for(self.pump, 5)
            except (TimeoutError, asyncio.CancelledError):
                self.pump.cancel()
        await self.redis.aclose()
