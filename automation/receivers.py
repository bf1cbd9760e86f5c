"""Signal receivers: thin adapters that call one service."""

from __future__ import annotations

from . import services


def task_from_approved_action_item(sender, *, item, actor=None, **kwargs) -> None:
    """Runs inside the approval's transaction, so the approval and its task commit (or fail) together."""
    services.task_create_from_action_item(item, actor=actor if actor is not None else f"approval #{item.pk}")
