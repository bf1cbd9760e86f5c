"""Checks on a megaphone clip before it is stored: what a browser's MediaRecorder makes (Opus in WebM
or Ogg), small, and short. Pure functions over bytes: no decoder, no temporary files.

The duration is read from the container (WebM block timestamps, Ogg granule positions), not decoded:
enough to refuse a long recording with a clear message, which is all the limit is for; the byte cap
is what bounds storage.
"""

from __future__ import annotations

MAX_CLIP_BYTES = 512 * 1024  # 30 s of Opus at the recorder's default ~64 kbit/s is about 240 KiB
MAX_CLIP_SECONDS = 30
_TOLERANCE_SECONDS = 1.0  # a recorder stopped at 30 s writes a last frame a little after

WEBM = "audio/webm"
OGG = "audio/ogg"

_SEGMENT = 0x18538067
_INFO = 0x1549A966
_TIMECODE_SCALE = 0x2AD7B1
_CLUSTER = 0x1F43B675
_CLUSTER_TIMECODE = 0xE7
_SIMPLE_BLOCK = 0xA3
_CONTAINERS = {_SEGMENT, _INFO, _CLUSTER}


class ClipRefused(ValueError):
    """The clip is not one the megaphone takes; the message says why, for the 400 answer."""


def clip_check(data: bytes) -> str:
    """The clip's media type if it is a short Opus recording in WebM or Ogg; ClipRefused otherwise."""
    if not data:
        raise ClipRefused("the audio clip is empty")
    if len(data) > MAX_CLIP_BYTES:
        raise ClipRefused(f"the audio clip is larger than {MAX_CLIP_BYTES // 1024} KiB; record at most "
                          f"{MAX_CLIP_SECONDS} seconds")
    if data[:4] == b"\x1a\x45\xdf\xa3":
        media_type, seconds = WEBM, _webm_seconds(data)
    elif data[:4] == b"OggS":
        media_type, seconds = OGG, _ogg_seconds(data)
    else:
        raise ClipRefused("the audio clip must be Opus in WebM or Ogg, as the browser's recorder makes it")
    if seconds > MAX_CLIP_SECONDS + _TOLERANCE_SECONDS:
        raise ClipRefused(f"the audio clip lasts {seconds:.0f} seconds; at most {MAX_CLIP_SECONDS} are allowed")
    return media_type


def _vint(data: bytes, at: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """An EBML variable-length integer at `at`: (value, next offset, whether it is the 'unknown' size)."""
    if at >= len(data):
        raise ClipRefused("the WebM audio clip is cut short")
    first = data[at]
    length = 9 - first.bit_length() if first else 9
    if length > 8 or at + length > len(data):
        raise ClipRefused("the WebM audio clip is damaged")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[at + 1:at + length]:
        value = (value << 8) | byte
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, at + length, unknown


def _webm_seconds(data: bytes) -> float:
    """The last audio block's time, walking the segment's clusters (MediaRecorder writes the segment and
    its clusters with unknown sizes, so they are entered rather than skipped)."""
    if b"A_OPUS" not in data[:8192]:
        raise ClipRefused("the WebM audio clip must hold Opus audio")
    scale_ns, cluster_ms, last = 1_000_000, 0, 0
    at = 0
    while at < len(data):
        element, at, _ = _vint(data, at, keep_marker=True)
        size, at, unknown = _vint(data, at, keep_marker=False)
        if element in _CONTAINERS:
            continue  # enter: its children follow
        if unknown:
            raise ClipRefused("the WebM audio clip is damaged")
        body = data[at:at + size]
        if element == _TIMECODE_SCALE and 0 < size <= 8:
            scale_ns = int.from_bytes(body, "big") or scale_ns
        elif element == _CLUSTER_TIMECODE and 0 < size <= 8:
            cluster_ms = int.from_bytes(body, "big")
        elif element == _SIMPLE_BLOCK and size >= 4:
            _, after_track, _ = _vint(body, 0, keep_marker=False)
            relative = int.from_bytes(body[after_track:after_track + 2], "big", signed=True)
            last = max(last, cluster_ms + relative)
        at += size
    return last * scale_ns / 1e9


def _ogg_seconds(data: bytes) -> float:
    """The last page's granule position (48 kHz samples) less the Opus pre-skip."""
    head = data.find(b"OpusHead", 0, 512)
    if head < 0:
        raise ClipRefused("the Ogg audio clip must hold Opus audio")
    pre_skip = int.from_bytes(data[head + 10:head + 12], "little")
    last_page = data.rfind(b"OggS")
    granule = int.from_bytes(data[last_page + 6:last_page + 14], "little", signed=True)
    return max(0, granule - pre_skip) / 48_000
