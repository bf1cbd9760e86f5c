"""The audit trail every work write shares: who acted (a member or an automation) and what changed."""

# `actor` is a user or, for automations, a label such as "rule:projector-offline",
# "workflow:task.remind step 2" or "approval #12".

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from ..models import AuditEntry


def _actor(actor) -> tuple[Any, str]:
    """(user or None, label) for an actor given as a user or an automation's label."""
    if actor is None or actor == "":
        raise ValidationError("every change needs an actor (a user or an automation label)")
    if isinstance(actor, str):
        return None, actor[:120]
    return actor, actor.get_username()


def _audit(*, subject_type: str, subject_id: int, action: str, actor, reason: str = "",
           before: dict | None = None, after: dict | None = None) -> AuditEntry:
    user, label = _actor(actor)
    return AuditEntry.objects.create(
        subject_type=subject_type, subject_id=subject_id, action=action, actor=user, actor_label=label,
        reason=reason or "", before=before or {}, after=after or {},
    )


def _diff(before: dict, after: dict) -> tuple[dict, dict]:
    changed = [key for key in after if before.get(key) != after[key]]
    return {k: before.get(k) for k in changed}, {k: after[k] for k in changed}
