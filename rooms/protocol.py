"""The office socket's client frames: one schema per `type`, checked before anything acts on them.

Close codes (Daphne may only send 1000 or 3000-4999, so the WebSocket spec's 1008/1009 meanings
live in the 4xxx range):
  4401 not signed in · 4403 forbidden (map) · 4408 session expired (the spec's 1008 case)
  4409 signed in from another tab · 4413 frame too large · 4429 rate limit exceeded repeatedly
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from office.input_checks import control_character_field, refusal_message

CLOSE_NOT_SIGNED_IN = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_SESSION_EXPIRED = 4408
CLOSE_REPLACED = 4409
CLOSE_TOO_LARGE = 4413
CLOSE_RATE_LIMITED = 4429

MAX_INT = 2**31 - 1


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, ref: str | None = None, client_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        self.client_id = client_id

    def frame(self) -> dict:
        frame = {"type": "error", "code": self.code, "message": self.message}
        if self.ref:
            frame["ref"] = self.ref
        if self.client_id:
            frame["client_id"] = self.client_id  # which queued chat message failed
        return frame


@dataclass(frozen=True)
class Field:
    kind: type | tuple[type, ...]
    required: bool = True
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    choices: tuple[str, ...] | None = None


SCHEMAS: dict[str, dict[str, Field]] = {
    "move": {"x": Field(int, minimum=0, maximum=4096), "y": Field(int, minimum=0, maximum=4096),
             "seq": Field(int, minimum=0, maximum=MAX_INT)},
    "status.set": {"status": Field(str, choices=("available", "busy", "away"))},
    "chat.send": {"thread": Field(int, minimum=1, maximum=2**62), "body": Field(str, max_length=20000),
                  "client_id": Field(str, required=False, max_length=64)},
    "chat.resume": {"thread": Field(int, minimum=1, maximum=2**62), "after": Field(int, minimum=0, maximum=2**62)},
    "chat.history": {"thread": Field(int, minimum=1, maximum=2**62),
                     "before": Field(int, required=False, minimum=1, maximum=2**62),
                     "limit": Field(int, required=False, minimum=1, maximum=200)},
    "chat.read": {"thread": Field(int, minimum=1, maximum=2**62), "seq": Field(int, minimum=0, maximum=2**62)},
    "dm.open": {"user": Field(int, minimum=1, maximum=2**62)},
    "room.knock": {"room": Field(int, minimum=1, maximum=2**62)},
    "room.knock.answer": {"knock": Field(int, minimum=1, maximum=2**62), "let_in": Field(bool)},
    "sfu.feeds": {"room": Field(int, minimum=1, maximum=2**62)},
    "ping": {},
}


def register_frame_schema(frame_type: str, fields: dict[str, Field]) -> None:
    """Later stages add their own frame types (e.g. WebRTC signalling) with their schema."""
    if frame_type in SCHEMAS and SCHEMAS[frame_type] != fields:
        raise ValueError(f"frame type {frame_type!r} is already registered with another schema")
    SCHEMAS[frame_type] = fields


def parse_client_frame(text: str | None) -> tuple[str, dict[str, Any]]:
    """Decode and validate one frame; raise ProtocolError saying exactly what is wrong."""
    if text is None:
        raise ProtocolError("bad_frame", "binary frames are not accepted; send JSON text")
    try:
        data = json.loads(text)
    except RecursionError as exc:
        raise ProtocolError("bad_json", "JSON is nested too deeply") from exc
    except ValueError as exc:
        raise ProtocolError("bad_json", f"frame is not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ProtocolError("bad_frame", "frame must be a JSON object")
    frame_type = data.get("type")
    if not isinstance(frame_type, str) or frame_type not in SCHEMAS:
        raise ProtocolError("unknown_type", f"unknown frame type {str(frame_type)[:40]!r}; known: {', '.join(SCHEMAS)}")
    schema = SCHEMAS[frame_type]
    unknown = set(data) - set(schema) - {"type"}
    if unknown:
        raise ProtocolError("bad_field", f"{frame_type}: unexpected field(s) {', '.join(sorted(unknown)[:5])}", frame_type)
    payload: dict[str, Any] = {}
    for name, spec in schema.items():
        if name not in data:
            if spec.required:
                raise ProtocolError("bad_field", f"{frame_type}: missing field {name!r}", frame_type)
            continue
        value = data[name]
        # bool is an int in Python; a JSON true is never a valid number here.
        if not isinstance(value, spec.kind) or (isinstance(value, bool) and spec.kind is not bool):
            kind_name = spec.kind.__name__ if isinstance(spec.kind, type) else "/".join(k.__name__ for k in spec.kind)
            raise ProtocolError("bad_field", f"{frame_type}: {name!r} must be {kind_name}", frame_type)
        if spec.minimum is not None and value < spec.minimum:
            raise ProtocolError("bad_field", f"{frame_type}: {name!r} must be at least {spec.minimum}", frame_type)
        if spec.maximum is not None and value > spec.maximum:
            raise ProtocolError("bad_field", f"{frame_type}: {name!r} must be at most {spec.maximum}", frame_type)
        if spec.max_length is not None and len(value) > spec.max_length:
            raise ProtocolError("bad_field", f"{frame_type}: {name!r} is longer than {spec.max_length}", frame_type)
        if (place := control_character_field(value, name)) is not None:
            raise ProtocolError("bad_field", f"{frame_type}: {refusal_message(place)}", frame_type)
        if spec.choices is not None and value not in spec.choices:
            raise ProtocolError("bad_field", f"{frame_type}: {name!r} must be one of {', '.join(spec.choices)}", frame_type)
        payload[name] = value
    return frame_type, payload


class TokenBucket:
    """Per-connection rate limit: `rate` frames per second with bursts up to `burst`."""

    def __init__(self, rate: float, burst: int, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
