"""Voice and live transcription: server WebRTC peers and the Whisper worker (not built yet)."""
