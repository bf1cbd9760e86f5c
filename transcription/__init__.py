"""Meetings and live transcription: meetings start and end as people enter and leave rooms
(`receivers`, on rooms' `room_presence_changed`), each speaker's audio reaches a server WebRTC peer
(`peer`, ADR 0006), goes over Redis streams (`audio_bus`) to the Whisper worker (`worker`,
`engine`, `vad`), and comes back as stored transcript segments and live captions.

Public modules: `services`, `selectors`, `serializers`, `consumers` (`MeetingSocketMixin`, the
meeting part of the office socket), `engine` (the streaming transcriber). Builds on rooms only.
"""
