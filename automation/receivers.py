"""Signal receivers: thin adapters that call one service (connected in `AutomationConfig.ready()`)."""

from __future__ import annotations

from office.queueing import enqueue_on_commit

from . import knowledge, services


def task_from_approved_action_item(sender, *, item, actor=None, **kwargs) -> None:
    """Runs inside the approval's transaction, so the approval and its task commit (or fail) together."""
    services.task_create_from_action_item(item, actor=actor if actor is not None else f"approval #{item.pk}")


def owner_suggested_for_proposal(sender, *, item, participant_ids, **kwargs) -> None:
    """An ownerless proposal gets the participant the calendars say is free (inside its transaction)."""
    services.action_item_owner_suggest(item, participant_ids=participant_ids)


def ticket_saved(sender, instance, **kwargs) -> None:
    """A ticket's text, status or room changed: its knowledge chunk is redone once this commits."""
    enqueue_on_commit("automation.index_tickets", [instance.pk])


def tickets_swept(sender, *, limit, **kwargs) -> dict:
    """The assistant's periodic index sweep: tickets whose indexing a lost enqueue left undone."""
    return {"tickets": knowledge.tickets_sweep(limit=limit)}
