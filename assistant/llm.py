"""One client for every language-model call: any OpenAI-compatible chat-completions server.

The same code talks to the embedded llama.cpp servers (`manage.py llm_server`, started by `make
run`) and to vLLM in production; only `LLM_BASE_URL` / `LLM_LARGE_BASE_URL` change. Every call:

- asks for JSON that follows a schema (`response_format: json_schema`, which both llama.cpp and
  vLLM constrain with a grammar), validates it, and on a mismatch retries once with the error;
- runs through a circuit breaker per endpoint and a timeout, so a dead server costs one fast
  `LLMUnavailable` instead of a hung request (callers show "assistant unavailable");
- masks personal data first when the endpoint is marked external (`LLM_EXTERNAL`);
- is recorded as a `ModelCall` (model, prompt version, input ids, latency, tokens, confidence).

`chat_json_stream` is the same call with `stream: true`: it yields the JSON text as the model writes it
(so a caller can show an answer's first words at once), then validates the whole reply exactly as
`chat_json` does.

Two tiers: `small` (fast: routing, short answers, live summaries) and `large` (action items, and
escalation when the small tier's confidence is below `LLM_ESCALATE_BELOW`).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from threading import Lock
from typing import Protocol

import jsonschema
import pybreaker
import redis
from django.conf import settings

from office.redis_client import redis_client

from .metrics import MODEL_CALL_SECONDS
from .models import ModelCall
from .prompts import Prompt
from .redaction import Redactor

logger = logging.getLogger(__name__)

TIERS = ("small", "large")


class LLMUnavailable(Exception):
    """No model answered (down, timed out, breaker open): the caller degrades, never errors."""


class LLMOutputInvalid(Exception):
    """The model's answer did not follow the schema, even after one repair attempt."""


@dataclass(frozen=True)
class Endpoint:
    tier: str
    base_url: str
    model: str
    api_key: str
    external: bool


def endpoint_for(tier: str) -> Endpoint:
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}")
    if tier == "small":
        base = settings.LLM_BASE_URL or f"http://127.0.0.1:{settings.OFFICE_LLM_SMALL_PORT}/v1"
        model = settings.LLM_MODEL
    else:
        base = settings.LLM_LARGE_BASE_URL or f"http://127.0.0.1:{settings.OFFICE_LLM_LARGE_PORT}/v1"
        model = settings.LLM_LARGE_MODEL
    return Endpoint(tier=tier, base_url=base.rstrip("/"), model=model, api_key=settings.LLM_API_KEY,
                    external=settings.LLM_EXTERNAL)


class Transport(Protocol):
    def chat(self, endpoint: Endpoint, body: dict, timeout: float) -> dict:
        """POST body to {base_url}/chat/completions and return the decoded response."""

    def chat_stream(self, endpoint: Endpoint, body: dict, timeout: float) -> Iterator[dict]:
        """POST body (with `stream: true`) and yield each decoded server-sent chunk until `[DONE]`.

        Chunks have the OpenAI shape: text in `choices[0].delta.content`, `usage` in the last one.
        `timeout` bounds the whole stream, not just each read."""


class HttpTransport:
    """The real transport: HTTP to the server (urllib; one request per call, no pooling needed)."""

    def chat(self, endpoint: Endpoint, body: dict, timeout: float) -> dict:
        with self._open(endpoint, body, timeout) as response:
            return json.load(response)

    def chat_stream(self, endpoint: Endpoint, body: dict, timeout: float) -> Iterator[dict]:
        deadline = time.monotonic() + timeout
        with self._open(endpoint, body, timeout) as response:
            try:
                for raw in response:  # one SSE line at a time, as the server flushes them
                    line = raw.decode("utf-8").strip()
                    if not line.startswith("data:"):
                        continue  # blank separators, `event:` and `: comment` lines
                    data = line[len("data:"):].strip()
                    if data == "[DONE]":
                        return
                    chunk = json.loads(data)
                    if isinstance(chunk, dict) and chunk.get("error"):
                        raise ConnectionError(f"model server error mid-stream: {str(chunk['error'])[:300]}")
                    yield chunk
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the stream ran past {timeout:g} s")
            except http.client.HTTPException as exc:  # e.g. IncompleteRead: the server went away mid-reply
                raise ConnectionError(f"the stream broke off: {exc!r}") from exc
        raise ConnectionError("the stream ended without [DONE]")

    def models(self, endpoint: Endpoint, timeout: float) -> list[str]:
        """GET {base_url}/models: the ids the server serves. The connector check (docs/adr/0017) asks this
        instead of generating: it proves the server, the way to it and the API key without taking one of
        the server's few generation slots from live work. HTTP errors are raised as urllib's."""
        request = urllib.request.Request(f"{endpoint.base_url}/models", headers=self._headers(endpoint))
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured URL)
            data = json.load(response)
        return [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)]

    @staticmethod
    def _headers(endpoint: Endpoint) -> dict:
        headers = {"Content-Type": "application/json"}
        if endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key}"
        return headers

    @classmethod
    def _open(cls, endpoint: Endpoint, body: dict, timeout: float):
        request = urllib.request.Request(
            f"{endpoint.base_url}/chat/completions", data=json.dumps(body).encode(), headers=cls._headers(endpoint),
            method="POST"
        )
        try:
            return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (configured URL)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode(errors="replace")
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                # The request itself was wrong: not an outage, do not trip the breaker.
                raise LLMOutputInvalid(f"model server refused the request ({exc.code}): {detail}") from exc
            raise ConnectionError(f"model server error {exc.code}: {detail}") from exc


_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_breakers_lock = Lock()
BREAKER_NAMESPACE = "office:llm-breaker"


def breaker_for(endpoint: Endpoint) -> pybreaker.CircuitBreaker:
    """One breaker per model server, its state in Redis: every process and node agrees whether the
    assistant is available (and the status endpoint shows that shared view)."""
    with _breakers_lock:
        breaker = _breakers.get(endpoint.base_url)
        if breaker is None:
            storage = pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED, redis_client(), namespace=f"{BREAKER_NAMESPACE}:{endpoint.base_url}")
            breaker = pybreaker.CircuitBreaker(
                fail_max=settings.LLM_BREAKER_FAILURES,
                reset_timeout=settings.LLM_BREAKER_RESET_SECONDS,
                # A stream the caller stopped reading (GeneratorExit) says nothing about the server.
                exclude=[LLMOutputInvalid, GeneratorExit],
                state_storage=storage,
                name=endpoint.base_url,
            )
            _breakers[endpoint.base_url] = breaker
        return breaker


def reset_breakers() -> None:
    """Forget every model breaker, here and in Redis (tests; an operator after fixing a server)."""
    with _breakers_lock:
        _breakers.clear()
        try:
            client = redis_client()
            keys = list(client.scan_iter(match=f"{BREAKER_NAMESPACE}:*", count=500))
            if keys:
                client.delete(*keys)
        except redis.RedisError as exc:
            logger.warning("could not clear the shared model breakers: %s", exc)


@dataclass
class LLMResult:
    data: dict
    call: ModelCall
    cached: bool = False

    @property
    def confidence(self) -> float | None:
        return _confidence(self.data)


@dataclass(frozen=True)
class _Call:
    endpoint: Endpoint
    schema: dict
    messages: list[dict]
    redactor: Redactor | None
    record: dict
    cache_key: str | None
    body: dict


class _LRU:
    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), Lock()

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key, value) -> None:
        if self.size <= 0:
            return
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class LLMClient:
    def __init__(self, transport: Transport | None = None):
        self.transport = transport or HttpTransport()
        self.cache = _LRU(settings.LLM_CACHE_SIZE)

    def chat_json(
        self,
        *,
        prompt: Prompt,
        variables: dict,
        schema: dict,
        purpose: str,
        tier: str = "small",
        room=None,
        input_ids: dict | None = None,
        known_names=(),
        max_tokens: int = 400,
        use_cache: bool = False,
        escalated_from: ModelCall | None = None,
    ) -> LLMResult:
        """Ask for JSON following `schema`; returns the validated object and the recorded call.

        Raises LLMUnavailable (no answer) or LLMOutputInvalid (answer unusable after one repair).
        """
        call = self._prepare(prompt=prompt, variables=variables, schema=schema, purpose=purpose, tier=tier,
                             room=room, input_ids=input_ids, known_names=known_names, max_tokens=max_tokens,
                             use_cache=use_cache, escalated_from=escalated_from)
        hit = self._cache_hit(call)
        if hit is not None:
            return hit
        started, tokens = time.monotonic(), [0, 0]
        try:
            data, error = self._ask(call.endpoint, call.body, schema, tokens)
            data, status = self._repair(call, data, error, tokens)
        except (LLMUnavailable, LLMOutputInvalid) as exc:
            self._record_failure(call, exc, started, tokens)
            raise
        return self._finish(call, data, status, started, tokens)

    def chat_json_stream(self, **kwargs) -> Iterator[str | LLMResult]:
        """`chat_json` (same arguments), streamed: yields the reply's JSON text in pieces as the model
        writes it, then one `LLMResult`, validated (and repaired once, unstreamed) as `chat_json` does.

        Raises LLMUnavailable / LLMOutputInvalid like `chat_json`, possibly after some pieces were
        yielded. When names are masked for an external endpoint nothing is yielded before the result:
        the pieces would show the placeholders.
        """
        call = self._prepare(**kwargs)
        hit = self._cache_hit(call)
        if hit is not None:
            yield json.dumps(hit.data)
            yield hit
            return
        body = {**call.body, "stream": True, "stream_options": {"include_usage": True}}
        started, tokens = time.monotonic(), [0, 0]
        stream = self._ask_stream(call.endpoint, body, tokens)
        try:
            pieces = []
            try:
                for piece in stream:
                    pieces.append(piece)
                    if call.redactor is None:
                        yield piece
            finally:
                stream.close()  # ends the HTTP request at once when the caller stops early
            data, error = _parsed("".join(pieces), call.schema)
            data, status = self._repair(call, data, error, tokens)
        except (LLMUnavailable, LLMOutputInvalid) as exc:
            self._record_failure(call, exc, started, tokens)
            raise
        except GeneratorExit:
            # The caller stopped reading (the asker went away): the model time was still spent.
            self._record(call.record, ModelCall.Status.ERROR, started, tokens, error="the caller stopped reading")
            raise
        yield self._finish(call, data, status, started, tokens)

    def _prepare(self, *, prompt: Prompt, variables: dict, schema: dict, purpose: str, tier: str = "small",
                 room=None, input_ids: dict | None = None, known_names=(), max_tokens: int = 400,
                 use_cache: bool = False, escalated_from: ModelCall | None = None) -> _Call:
        """Everything about a call decided before the request: endpoint, masked messages, record, body."""
        endpoint = endpoint_for(tier)
        messages = prompt.messages(**variables)
        redactor = None
        if endpoint.external:
            redactor = Redactor(known_names=known_names)
            messages = [{**m, "content": redactor.redact(m["content"])} for m in messages]
        record = {
            "purpose": purpose, "tier": tier, "model_id": endpoint.model, "endpoint": endpoint.base_url[:200],
            "prompt_name": prompt.name, "prompt_version": prompt.version, "input_ids": input_ids or {},
            "room": room, "redacted": bool(redactor and redactor.mapping), "escalated_from": escalated_from,
        }
        cache_key = None
        if use_cache:
            cache_key = hashlib.sha256(json.dumps([endpoint.model, purpose, messages], sort_keys=True).encode()).hexdigest()
        body = {
            "model": endpoint.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
            "response_format": {"type": "json_schema", "json_schema": {"name": purpose.replace(".", "_"),
                                                                        "schema": schema, "strict": True}},
        }
        return _Call(endpoint=endpoint, schema=schema, messages=messages, redactor=redactor, record=record,
                     cache_key=cache_key, body=body)

    def _cache_hit(self, call: _Call) -> LLMResult | None:
        if call.cache_key is None:
            return None
        hit = self.cache.get(call.cache_key)
        if hit is None:
            return None
        recorded = ModelCall.objects.create(**call.record, status=ModelCall.Status.CACHED, confidence=_confidence(hit))
        return LLMResult(data=hit, call=recorded, cached=True)

    def _repair(self, call: _Call, data, error: str | None, tokens: list[int]):
        """(valid object, status): the first reply if valid, else one retry told what was wrong."""
        if error is None:
            return data, ModelCall.Status.OK
        repair = {**call.body, "messages": [*call.messages,
                                            {"role": "assistant", "content": data if isinstance(data, str) else json.dumps(data)},
                                            {"role": "user", "content": f"That JSON is invalid: {error}. "
                                             "Reply again with only JSON that follows the schema."}]}
        data, error = self._ask(call.endpoint, repair, call.schema, tokens)
        if error is not None:
            raise LLMOutputInvalid(error)
        return data, ModelCall.Status.REPAIRED

    def _finish(self, call: _Call, data: dict, status: str, started: float, tokens: list[int]) -> LLMResult:
        if call.redactor is not None:
            data = call.redactor.restore(data)
        recorded = self._record(call.record, status, started, tokens, confidence=_confidence(data))
        if call.cache_key is not None:
            self.cache.put(call.cache_key, data)
        return LLMResult(data=data, call=recorded)

    def _record_failure(self, call: _Call, exc: Exception, started: float, tokens: list[int]) -> None:
        status = ModelCall.Status.UNAVAILABLE if isinstance(exc, LLMUnavailable) else ModelCall.Status.INVALID
        self._record(call.record, status, started, tokens, error=str(exc))

    def _ask(self, endpoint: Endpoint, body: dict, schema: dict, tokens: list[int]):
        """One request; returns (parsed object, None) or (raw text, what is wrong with it)."""
        breaker = breaker_for(endpoint)
        try:
            response = breaker.call(self.transport.chat, endpoint, body, settings.LLM_TIMEOUT_SECONDS)
        except pybreaker.CircuitBreakerError as exc:
            raise LLMUnavailable(f"{endpoint.tier} model at {endpoint.base_url} is unavailable (circuit open)") from exc
        except (OSError, ConnectionError, TimeoutError, ValueError) as exc:
            raise LLMUnavailable(f"{endpoint.tier} model at {endpoint.base_url} did not answer: {exc}") from exc
        _count_usage(response, tokens)
        try:
            text = response["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            return "", "the response has no message content"
        return _parsed(text, schema)

    def _ask_stream(self, endpoint: Endpoint, body: dict, tokens: list[int]) -> Iterator[str]:
        """One streamed request through the breaker; yields the reply's text pieces."""
        breaker = breaker_for(endpoint)
        try:
            # pybreaker follows a generator: a failure while iterating counts like a failed call.
            for chunk in breaker.call(self.transport.chat_stream, endpoint, body, settings.LLM_TIMEOUT_SECONDS):
                _count_usage(chunk, tokens)
                try:
                    piece = chunk["choices"][0]["delta"].get("content") or ""
                except (KeyError, IndexError, TypeError, AttributeError):
                    piece = ""  # the usage chunk has no choices; role-only deltas have no content
                if piece:
                    yield piece
        except pybreaker.CircuitBreakerError as exc:
            raise LLMUnavailable(f"{endpoint.tier} model at {endpoint.base_url} is unavailable (circuit open)") from exc
        except (OSError, ConnectionError, TimeoutError, ValueError) as exc:
            raise LLMUnavailable(f"{endpoint.tier} model at {endpoint.base_url} did not answer: {exc}") from exc

    @staticmethod
    def _record(record: dict, status: str, started: float, tokens: list[int], *, error: str = "",
                confidence: float | None = None) -> ModelCall:
        elapsed = time.monotonic() - started
        MODEL_CALL_SECONDS.labels(record["tier"], record["purpose"], status).observe(elapsed)
        return ModelCall.objects.create(
            **record, status=status, error=error[:2000], latency_ms=int(elapsed * 1000),
            prompt_tokens=tokens[0], completion_tokens=tokens[1], confidence=confidence,
        )

    def chat_json_tiered(self, **kwargs) -> LLMResult:
        """Small tier first; escalate to the large tier when the small one is unsure or fails."""
        kwargs.pop("tier", None)
        try:
            first = self.chat_json(tier="small", **kwargs)
        except (LLMUnavailable, LLMOutputInvalid) as exc:
            logger.info("small tier failed for %s (%s): escalating", kwargs.get("purpose"), exc)
            return self.chat_json(tier="large", **kwargs)
        if first.confidence is not None and first.confidence < settings.LLM_ESCALATE_BELOW:
            try:
                return self.chat_json(tier="large", escalated_from=first.call, **kwargs)
            except (LLMUnavailable, LLMOutputInvalid) as exc:
                logger.info("large tier failed for %s (%s): keeping the small tier's answer", kwargs.get("purpose"), exc)
        return first


def _parsed(text: str, schema: dict):
    """(object, None) when `text` is JSON following `schema`, else (text, what is wrong with it)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return text, f"not JSON ({exc.msg} at {exc.pos})"
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        return text, f"{exc.message} at {where}"
    return data, None


def _count_usage(response, tokens: list[int]) -> None:
    usage = (response.get("usage") if isinstance(response, dict) else None) or {}
    tokens[0] += int(usage.get("prompt_tokens") or 0)
    tokens[1] += int(usage.get("completion_tokens") or 0)


def _confidence(data) -> float | None:
    value = data.get("confidence") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) else None


# --- reading a field out of JSON that is still being written ---

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def partial_json_string(prefix: str, field: str) -> str | None:
    """The text so far of the top-level string `field` in `prefix`, the start of a JSON object.

    None until the field's value has begun. Escapes are decoded; one cut off at the end of the prefix
    is left out until it is complete, so successive calls only ever extend the text. Other fields
    (before or after, strings with escaped quotes, arrays, numbers) are stepped over, never searched.
    """
    n, i = len(prefix), _skip_space(prefix, 0)
    if i >= n or prefix[i] != "{":
        return None
    i += 1
    while True:
        i = _skip_space(prefix, i)
        if i >= n or prefix[i] != '"':
            return None  # the end of the prefix, `}`, or not an object we can read
        key, i, closed = _json_string(prefix, i + 1)
        if not closed:
            return None
        i = _skip_space(prefix, i)
        if i >= n or prefix[i] != ":":
            return None
        i = _skip_space(prefix, i + 1)
        if i >= n:
            return None
        if key == field:
            return _json_string(prefix, i + 1)[0] if prefix[i] == '"' else None
        i = _skip_value(prefix, i)
        if i is None:
            return None
        i = _skip_space(prefix, i)
        if i >= n or prefix[i] != ",":
            return None
        i += 1


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _json_string(text: str, i: int) -> tuple[str, int, bool]:
    """Decode a JSON string whose opening quote is just before `i`: (text so far, index after it, closed)."""
    out, n = [], len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1, True
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            break  # an escape cut in two: wait for the rest
        code = text[i + 1]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            i += 2
            continue
        if code != "u" or i + 6 > n:
            break
        try:
            point = int(text[i + 2:i + 6], 16)
        except ValueError:
            break
        if 0xD800 <= point < 0xDC00:  # the first half of a surrogate pair: decode both or neither
            if i + 12 > n:
                break
            try:
                low = int(text[i + 8:i + 12], 16) if text[i + 6:i + 8] == "\\u" else -1
            except ValueError:
                low = -1
            if 0xDC00 <= low < 0xE000:
                out.append(chr(0x10000 + ((point - 0xD800) << 10) + (low - 0xDC00)))
                i += 12
                continue
        out.append(chr(point))
        i += 6
    return "".join(out), i, False


def _skip_value(text: str, i: int) -> int | None:
    """The index just after the JSON value starting at `i`, or None if it runs past the prefix."""
    n = len(text)
    if text[i] == '"':
        _, end, closed = _json_string(text, i + 1)
        return end if closed else None
    depth = 0
    while i < n:
        ch = text[i]
        if ch == '"':
            _, i, closed = _json_string(text, i + 1)
            if not closed:
                return None
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            if depth == 0:
                return i  # the end of the enclosing object: a scalar ended here
            depth -= 1
            if depth == 0:
                return i + 1
        elif ch == "," and depth == 0:
            return i
        i += 1
    return None


class JsonFieldStream:
    """Turns pieces of a JSON reply into pieces of one string field's text, as they arrive."""

    def __init__(self, field: str):
        self.field, self.raw, self.sent = field, "", 0

    def feed(self, piece: str) -> str:
        """Add the next piece of JSON; returns the field's new text (often "")."""
        self.raw += piece
        text = partial_json_string(self.raw, self.field) or ""
        new, self.sent = text[self.sent:], max(self.sent, len(text))
        return new


_client: LLMClient | None = None


def get_client() -> LLMClient:
    global _client
    if _client is None:
        _client = LLMClient()
    return _client


def set_client(client: LLMClient | None) -> None:
    """Swap the process-wide client (tests install a scripted transport this way)."""
    global _client
    _client = client
