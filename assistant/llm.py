"""One client for every language-model call: any OpenAI-compatible chat-completions server.

The same code talks to the embedded llama.cpp servers (`manage.py llm_server`, started by `make
run`) and to vLLM in production; only `LLM_BASE_URL` / `LLM_LARGE_BASE_URL` change. Every call:

- asks for JSON that follows a schema (`response_format: json_schema`, which both llama.cpp and
  vLLM constrain with a grammar), validates it, and on a mismatch retries once with the error;
- runs through a circuit breaker per endpoint and a timeout, so a dead server costs one fast
  `LLMUnavailable` instead of a hung request (callers show "assistant unavailable");
- masks personal data first when the endpoint is marked external (`LLM_EXTERNAL`);
- is recorded as a `ModelCall` (model, prompt version, input ids, latency, tokens, confidence).

Two tiers: `small` (fast: routing, short answers, live summaries) and `large` (action items, and
escalation when the small tier's confidence is below `LLM_ESCALATE_BELOW`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import Protocol

import jsonschema
import pybreaker
from django.conf import settings

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


class HttpTransport:
    """The real transport: HTTP to the server (urllib; one request per call, no pooling needed)."""

    def chat(self, endpoint: Endpoint, body: dict, timeout: float) -> dict:
        headers = {"Content-Type": "application/json"}
        if endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key}"
        request = urllib.request.Request(
            f"{endpoint.base_url}/chat/completions", data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured URL)
                return json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode(errors="replace")
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                # The request itself was wrong: not an outage, do not trip the breaker.
                raise LLMOutputInvalid(f"model server refused the request ({exc.code}): {detail}") from exc
            raise ConnectionError(f"model server error {exc.code}: {detail}") from exc


_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_breakers_lock = Lock()


def breaker_for(endpoint: Endpoint) -> pybreaker.CircuitBreaker:
    with _breakers_lock:
        breaker = _breakers.get(endpoint.base_url)
        if breaker is None:
            breaker = pybreaker.CircuitBreaker(
                fail_max=settings.LLM_BREAKER_FAILURES,
                reset_timeout=settings.LLM_BREAKER_RESET_SECONDS,
                exclude=[LLMOutputInvalid],
                name=endpoint.base_url,
            )
            _breakers[endpoint.base_url] = breaker
        return breaker


def reset_breakers() -> None:
    with _breakers_lock:
        _breakers.clear()


@dataclass
class LLMResult:
    data: dict
    call: ModelCall
    cached: bool = False

    @property
    def confidence(self) -> float | None:
        return _confidence(self.data)


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
            hit = self.cache.get(cache_key)
            if hit is not None:
                call = ModelCall.objects.create(**record, status=ModelCall.Status.CACHED,
                                                confidence=_confidence(hit))
                return LLMResult(data=hit, call=call, cached=True)

        body = {
            "model": endpoint.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
            "response_format": {"type": "json_schema", "json_schema": {"name": purpose.replace(".", "_"),
                                                                        "schema": schema, "strict": True}},
        }
        started = time.monotonic()
        tokens = [0, 0]
        status = ModelCall.Status.OK
        try:
            data, error = self._ask(endpoint, body, schema, tokens)
            if error is not None:
                status = ModelCall.Status.REPAIRED
                repair = {**body, "messages": [*messages,
                                               {"role": "assistant", "content": data if isinstance(data, str) else json.dumps(data)},
                                               {"role": "user", "content": f"That JSON is invalid: {error}. "
                                                "Reply again with only JSON that follows the schema."}]}
                data, error = self._ask(endpoint, repair, schema, tokens)
                if error is not None:
                    raise LLMOutputInvalid(error)
        except LLMUnavailable as exc:
            self._record(record, ModelCall.Status.UNAVAILABLE, started, tokens, error=str(exc))
            raise
        except LLMOutputInvalid as exc:
            self._record(record, ModelCall.Status.INVALID, started, tokens, error=str(exc))
            raise
        if redactor is not None:
            data = redactor.restore(data)
        call = self._record(record, status, started, tokens, confidence=_confidence(data))
        if cache_key is not None:
            self.cache.put(cache_key, data)
        return LLMResult(data=data, call=call)

    def _ask(self, endpoint: Endpoint, body: dict, schema: dict, tokens: list[int]):
        """One request; returns (parsed object, None) or (raw text, what is wrong with it)."""
        breaker = breaker_for(endpoint)
        try:
            response = breaker.call(self.transport.chat, endpoint, body, settings.LLM_TIMEOUT_SECONDS)
        except pybreaker.CircuitBreakerError as exc:
            raise LLMUnavailable(f"{endpoint.tier} model at {endpoint.base_url} is unavailable (circuit open)") from exc
        except (OSError, ConnectionError, TimeoutError, ValueError) as exc:
            raise LLMUnavailable(f"{endpoint.tier} model at {endpoint.base_url} did not answer: {exc}") from exc
        usage = response.get("usage") or {}
        tokens[0] += int(usage.get("prompt_tokens") or 0)
        tokens[1] += int(usage.get("completion_tokens") or 0)
        try:
            text = response["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            return "", "the response has no message content"
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

    @staticmethod
    def _record(record: dict, status: str, started: float, tokens: list[int], *, error: str = "",
                confidence: float | None = None) -> ModelCall:
        return ModelCall.objects.create(
            **record, status=status, error=error[:2000], latency_ms=int((time.monotonic() - started) * 1000),
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


def _confidence(data) -> float | None:
    value = data.get("confidence") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) else None


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
