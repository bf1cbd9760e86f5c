"""A deterministic stand-in for a model server, behind the real client's Transport interface.

Everything above the HTTP call (schema validation, repair, breaker, redaction, call records) runs
for real; only the model's words come from `responder(endpoint, body) -> str | dict | Exception`.
"""

from __future__ import annotations

import json
from collections.abc import Callable


class ScriptedTransport:
    def __init__(self, responder: Callable):
        self.responder = responder
        self.requests: list[tuple[str, dict]] = []

    def chat(self, endpoint, body: dict, timeout: float) -> dict:
        self.requests.append((endpoint.tier, body))
        reply = self.responder(endpoint, body)
        if isinstance(reply, BaseException):
            raise reply
        if not isinstance(reply, str):
            reply = json.dumps(reply)
        return {"choices": [{"message": {"role": "assistant", "content": reply}}],
                "usage": {"prompt_tokens": sum(len(m["content"].split()) for m in body["messages"]),
                          "completion_tokens": len(reply.split())}}

    def prompts(self, purpose_fragment: str = "") -> list[str]:
        """The user messages sent so far (what the model would have seen)."""
        return [body["messages"][-1]["content"] for _tier, body in self.requests
                if purpose_fragment in body["response_format"]["json_schema"]["name"]]


def by_purpose(**replies) -> Callable:
    """A responder answering per purpose (schema name, e.g. meeting_action_items=...)."""

    def respond(endpoint, body):
        name = body["response_format"]["json_schema"]["name"]
        reply = replies.get(name)
        if reply is None:
            return ConnectionError(f"no scripted reply for {name}")
        return reply(endpoint, body) if callable(reply) else reply

    return respond
