"""Signal receivers: thin adapters that call one service (connected in `AutomationConfig.ready()`)."""

from __future__ import annotations

from office.queueing import enqueue_on_commit

from . import expertise, knowledge, outcomes, personal_data, services
from .workflows import services as workflow_services


def task_from_approved_action_item(sender, *, item, actor=None, **kwargs) -> None:
    """Runs inside the approval's transaction, so the approval and its task commit (or fail) together."""
    services.task_create_from_action_item(item, actor=actor if actor is not None else f"approval #{item.pk}")


def owner_suggested_for_proposal(sender, *, item, participant_ids, **kwargs) -> None:
    """An ownerless proposal gets the participant the calendars say is free (inside its transaction)."""
    services.action_item_owner_suggest(item, participant_ids=participant_ids)


def chat_mentions_notified(sender, *, message, **kwargs) -> None:
    """Inside the chat message's transaction: the people it @mentions get a notification with it."""
    workflow_services.chat_mentions_notify(message=message)


def ticket_saved(sender, instance, **kwargs) -> None:
    """A ticket's text, status or room changed: its knowledge chunk is redone once this commits."""
    enqueue_on_commit("automation.index_tickets", [instance.pk])


def completed_tasks_as_expert_evidence(sender, *, query, vector, room_ids, **kwargs) -> list[dict]:
    """"Who knows about X?": the done tasks on the topic, from the asker's readable rooms only."""
    return expertise.completed_tasks_evidence(query=query, vector=vector, room_ids=room_ids)


def tickets_swept(sender, *, limit, **kwargs) -> dict:
    """The assistant's periodic index sweep: tickets whose indexing a lost enqueue left undone."""
    return {"tickets": knowledge.tickets_sweep(limit=limit)}


def person_work_erase(sender, *, user, actor, reassign_to=None, **kwargs) -> dict:
    """Inside the erasure's transaction: tasks re-assigned (audited), personal rows deleted."""
    return personal_data.person_work_erase(user=user, actor=actor, reassign_to=reassign_to)


def person_work_export(sender, *, user, **kwargs) -> dict:
    """Their tasks, reminders, digests, calendars and notifications, for their export."""
    return personal_data.person_work_export(user=user)


def personal_data_audit(sender, *, action, user, actor, counts, **kwargs) -> None:
    """Every export, erasure and retention sweep leaves an audit entry."""
    personal_data.personal_data_audit(action=action, user=user, actor=actor, counts=counts)


def calendar_feed_changed(sender, instance, **kwargs) -> None:
    """A URL feed was saved or deleted: its connector check runs once this commits (docs/adr/0017)."""
    if instance.url:
        workflow_services.connector_check_queue(connector="calendar_feed", target=str(instance.pk))


def work_outcomes(sender, *, scope, **kwargs) -> list[dict]:
    """The outcome dashboard's action items done, approval → done, tickets and cost per task (rooms/outcomes.py)."""
    return outcomes.automation_outcome_sections(scope)
