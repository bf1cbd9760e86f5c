"""Meeting features of the office socket: the recording indicator, consent, the speaker's server
peer (WebRTC signalling over the same socket) and live captions of the room you are in."""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError

from office.events import user_group
from rooms.protocol import Field, ProtocolError, register_frame_schema

from . import selectors, services
from .models import MeetingParticipant
from .peer import PeerError, SpeakerPeer, loopback_only
from .sfu_listener import sfu_listeners

logger = logging.getLogger(__name__)

register_frame_schema("rtc.offer", {"sdp": Field(str, max_length=32 * 1024)})
register_frame_schema("rtc.close", {})
register_frame_schema("meeting.consent", {"transcribe": Field(bool)})
register_frame_schema("voice.signal", {"to": Field(int, minimum=1, maximum=2**62), "signal": Field(dict)})

VOICE_RADIUS_TILES = 6


def voice_allowed(me, other, geometry) -> bool:
    """People hear each other when in the same walled room, or near each other outside walled rooms."""
    if me is None or other is None:
        return False
    mine = geometry.room(me.room) if me.room else None
    theirs = geometry.room(other.room) if other.room else None
    if (mine and mine.walled) or (theirs and theirs.walled):
        return me.room == other.room
    return max(abs(me.x - other.x), abs(me.y - other.y)) <= VOICE_RADIUS_TILES


def _meeting_in_room(room_id: int | None) -> dict | None:
    if room_id is None:
        return None
    meeting = selectors.open_meeting_for_room(room_id)
    return selectors.meeting_state_payload(meeting) if meeting else None


def _may_stream(user, meeting_id: int) -> bool:
    return MeetingParticipant.objects.filter(
        meeting_id=meeting_id, user=user, opted_out=False, meeting__ended_at__isnull=True
    ).exists()


class MeetingSocketMixin:
    peer: SpeakerPeer | None = None
    meeting_id: int | None = None
    audio_via_sfu: bool = False  # the server takes this room's speakers from the SFU: no upload

    async def on_room_changed(self, old_room_id, new_room_id) -> None:
        await super().on_room_changed(old_room_id, new_room_id)
        if old_room_id is not None:
            await self.channel_layer.group_discard(services.room_group(old_room_id), self.channel_name)
            await self._close_peer()
            self.audio_via_sfu = False
            if self.meeting_id is not None and self.joined:
                await self._send_json({"type": "meeting.left", "meeting": self.meeting_id})
            self.meeting_id = None
        if new_room_id is not None and self.joined:
            await self.channel_layer.group_add(services.room_group(new_room_id), self.channel_name)
            state = await database_sync_to_async(_meeting_in_room)(new_room_id)
            if state is not None:
                self.meeting_id = state["id"]
                await self._send_json({"type": "meeting.state", "meeting": state})

    # --- frames ---

    async def on_rtc_offer(self, sdp: str) -> None:
        """Attach this member's microphone to the meeting of the room they stand in."""
        if self.meeting_id is None:
            raise ProtocolError("no_meeting", "there is no meeting with the assistant in this room", "rtc.offer")
        if not await database_sync_to_async(_may_stream)(self.user, self.meeting_id):
            raise ProtocolError("not_transcribed", "you opted out of transcription in this meeting", "rtc.offer")
        if self.audio_via_sfu:
            raise ProtocolError("audio_via_sfu", "the server hears you through the SFU: no upload needed", "rtc.offer")
        await self._close_peer()
        self.peer = SpeakerPeer(meeting_id=self.meeting_id, user_id=self.user_id)
        try:
            answer = await self.peer.answer(sdp)
        except PeerError as exc:
            self.peer = None
            raise ProtocolError("bad_sdp", str(exc), "rtc.offer") from exc
        await self._send_json({"type": "rtc.answer", "sdp": answer, "meeting": self.meeting_id})

    async def on_rtc_close(self) -> None:
        await self._close_peer()

    async def on_meeting_consent(self, transcribe: bool) -> None:
        if self.meeting_id is None:
            raise ProtocolError("no_meeting", "there is no meeting in this room", "meeting.consent")
        try:
            await database_sync_to_async(services.meeting_set_consent)(
                user=self.user, meeting_id=self.meeting_id, transcribe=transcribe
            )
        except ValidationError as exc:
            raise ProtocolError("invalid", "; ".join(exc.messages), "meeting.consent") from exc
        if not transcribe:
            await self._close_peer()  # their track is never processed again
            if self.room_id is not None:
                sfu_listeners.nudge(self.room_id)  # nor their SFU feed (at once where this process listens)

    async def on_voice_signal(self, to: int, signal: dict) -> None:
        """Relay WebRTC signalling between two people who may hear each other (proximity voice)."""
        people = self.hub.maps[self.map_id].people
        if not voice_allowed(people.get(self.user_id), people.get(to), self.geometry):
            raise ProtocolError("not_nearby", "you can only talk to people near you or in your room", "voice.signal")
        if loopback_only() and "127.0.0.1" not in str(signal.get("candidate", "127.0.0.1")):
            return  # tests keep media on loopback: other candidates are not passed on
        await self.channel_layer.group_send(user_group(to), {
            "type": "voice.signal", "from": self.user_id, "signal": signal,
        })

    async def voice_signal(self, event: dict) -> None:
        await self._send_json({"type": "voice.signal", "from": event["from"], "signal": event["signal"]})

    # --- events for the room ---

    async def meeting_state(self, event: dict) -> None:
        meeting = event["meeting"]
        if meeting["room"] != self.room_id:
            return
        self.meeting_id = meeting["id"] if meeting["ended_at"] is None else None
        if self.meeting_id is None:
            await self._close_peer()
        await self._send_json({"type": "meeting.state", "meeting": meeting})

    async def meeting_audio_via_sfu(self, event: dict) -> None:
        """The server (un)subscribed this room's speakers through the SFU (transcription/sfu_listener.py)."""
        if event["room"] != self.room_id:
            return
        self.audio_via_sfu = event["active"]
        if self.audio_via_sfu:
            await self._close_peer()  # one writer per speaker stream: the SFU feed replaces the upload
        await self._send_json(event)

    async def caption_partial(self, event: dict) -> None:
        await self._send_json(event)

    async def caption_final(self, event: dict) -> None:
        await self._send_json(event)

    async def transcription_status(self, event: dict) -> None:
        await self._send_json(event)

    # The assistant's notes for the room (stored before they are sent; REST has the full state).
    async def assistant_summary(self, event: dict) -> None:
        await self._send_json(event)

    async def assistant_action_item(self, event: dict) -> None:
        await self._send_json(event)

    # The room's documents as they are indexed, and when one is deleted.
    async def document_progress(self, event: dict) -> None:
        await self._send_json(event)

    async def document_deleted(self, event: dict) -> None:
        await self._send_json(event)

    async def disconnect(self, code) -> None:
        await self._close_peer()
        await super().disconnect(code)

    async def _close_peer(self) -> None:
        peer, self.peer = self.peer, None
        if peer is not None:
            await peer.close()
