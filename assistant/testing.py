"""A deterministic stand-in for a model server, behind the real client's Transport interface.

Everything above the HTTP call (schema validation, repair, breaker, redaction, call records) runs
for real; only the model's words come from `responder(endpoint, body) -> str | dict | Exception`.
`serve_scripted_model` puts the same responder behind real HTTP (an OpenAI-compatible server that
streams), for processes a test cannot hand a client to, such as a Daphne in a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedTransport:
    """`chunk_chars` and `chunk_delay` shape `chat_stream`: the reply in pieces of that many
    characters, each after that many seconds (so a test can watch an answer arrive)."""

    def __init__(self, responder: Callable, *, chunk_chars: int = 8, chunk_delay: float = 0.0):
        self.responder = responder
        self.chunk_chars = chunk_chars
        self.chunk_delay = chunk_delay
        self.requests: list[tuple[str, dict]] = []

    def chat(self, endpoint, body: dict, timeout: float) -> dict:
        reply = self._reply(endpoint, body)
        return {"choices": [{"message": {"role": "assistant", "content": reply}}], "usage": _usage(body, reply)}

    def chat_stream(self, endpoint, body: dict, timeout: float) -> Iterator[dict]:
        reply = self._reply(endpoint, body)
        yield from stream_chunks(reply, body, chunk_chars=self.chunk_chars, chunk_delay=self.chunk_delay)

    def _reply(self, endpoint, body: dict) -> str:
        self.requests.append((endpoint.tier, body))
        reply = self.responder(endpoint, body)
        if isinstance(reply, BaseException):
            raise reply
        return reply if isinstance(reply, str) else json.dumps(reply)

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


def stream_chunks(reply: str, body: dict, *, chunk_chars: int = 8, chunk_delay: float = 0.0) -> Iterator[dict]:
    """`reply` as an OpenAI-compatible server streams it: content deltas, then a usage chunk."""
    for start in range(0, len(reply), max(1, chunk_chars)):
        if chunk_delay:
            time.sleep(chunk_delay)
        yield {"object": "chat.completion.chunk",
               "choices": [{"index": 0, "delta": {"content": reply[start:start + chunk_chars]}, "finish_reason": None}]}
    yield {"object": "chat.completion.chunk", "choices": [], "usage": _usage(body, reply)}


def _usage(body: dict, reply: str) -> dict:
    return {"prompt_tokens": sum(len(m["content"].split()) for m in body["messages"]),
            "completion_tokens": len(reply.split())}


@contextlib.contextmanager
def serve_scripted_model(responder: Callable, *, chunk_chars: int = 8, chunk_delay: float = 0.0):
    """An OpenAI-compatible server on 127.0.0.1 answering with `responder`; yields its base URL
    (`http://127.0.0.1:<port>/v1`). Streamed replies are chunked HTTP/1.1, as llama.cpp sends them."""
    from .llm import Endpoint

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            self._send_json(200, {"status": "ok"} if self.path == "/health" else {"error": "not found"})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path != "/v1/chat/completions":
                self._send_json(404, {"error": "not found"})
                return
            endpoint = Endpoint(tier="served", base_url=base_url, model=str(body.get("model")), api_key="",
                                external=False)
            try:
                reply = ScriptedTransport(responder)._reply(endpoint, body)
            except Exception as exc:  # the scripted failure, as a server error
                self._send_json(500, {"error": {"message": str(exc)}})
                return
            if not body.get("stream"):
                self._send_json(200, {"choices": [{"message": {"role": "assistant", "content": reply}}],
                                      "usage": _usage(body, reply)})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in stream_chunks(reply, body, chunk_chars=chunk_chars, chunk_delay=chunk_delay):
                    self._send_chunk(f"data: {json.dumps(chunk)}\n\n")
                self._send_chunk("data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading

        def _send_chunk(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _send_json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
