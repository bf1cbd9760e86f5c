"""What a step function receives: its run's input, earlier results, and the one way to cause a
side effect (`send`), which goes through the ledger so a re-run step does not repeat it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from . import connectors
from .models import SideEffect

_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


def effect_key(run_id: int, step_index: int, name: str) -> str:
    """A stable idempotency key of at most 64 characters (room chat's client_id limit)."""
    readable = f"wf{run_id}.{step_index}.{_UNSAFE.sub('-', name)}"
    if len(readable) <= 64:
        return readable
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return f"wf{run_id}.{step_index}.{digest}"


@dataclass
class StepContext:
    run_id: int
    workflow_name: str
    workflow_version: int
    step_index: int
    step_name: str
    input: dict
    results: dict[str, Any]  # earlier steps' results by step name (skipped steps: None)
    attempt: int = 1
    actor_id: int | None = None
    compensating: bool = False
    _sends: int = field(default=0, repr=False)

    def _effect_name(self, name: str) -> str:
        return f"undo.{name}" if self.compensating else name

    def send(self, connector: str, message: dict, *, key: str | None = None) -> Any:
        """Perform a side effect through a connector, at most once per (run, step, key).

        `key` names the effect within the step; by default the connector name and the call's
        position, so steps that make the same calls in the same order get the same keys. Effects
        in our own database (notifications, chat) are written in one transaction with the ledger
        row: exactly once. External ones (webhooks, e-mail) carry the key to the receiver
        (webhook-id, Message-ID), which is how a receiver drops the rare repeat after a crash
        between delivery and the ledger write.
        """
        self._sends += 1
        name = self._effect_name(key or f"{connector}.{self._sends}")
        idempotency_key = effect_key(self.run_id, self.step_index, name)
        done = SideEffect.objects.filter(run_id=self.run_id, step_index=self.step_index, name=name).first()
        if done is not None:
            return done.result
        impl = connectors.connector_get(connector)

        def record(result):
            return SideEffect(run_id=self.run_id, step_index=self.step_index, name=name, connector=connector,
                              idempotency_key=idempotency_key, result=result)

        if impl.transactional:
            try:
                with transaction.atomic():
                    # The ledger row goes in first: a concurrent duplicate attempt blocks on its key
                    # and then fails here instead of performing the effect a second time.
                    row = record(None)
                    row.save(force_insert=True)
                    result = impl.deliver(message, idempotency_key=idempotency_key)
                    SideEffect.objects.filter(pk=row.pk).update(result=result)
                    return result
            except IntegrityError:
                existing = SideEffect.objects.filter(idempotency_key=idempotency_key).first()
                if existing is None:
                    raise
                return existing.result
        result = connectors.call_through_breaker(impl, message, idempotency_key)
        try:
            with transaction.atomic():
                record(result).save(force_insert=True)
        except IntegrityError:
            pass  # a concurrent attempt recorded it first
        return result
