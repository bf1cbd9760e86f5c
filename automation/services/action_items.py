"""Action items to tasks: suggest an owner from the calendars, make one task per approved item."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from rooms.services import SYSTEM_USERNAME

from .. import selectors
from ..models import Task
from .work_tasks import task_create

User = get_user_model()


def _action_item_candidates(item) -> list:
    """Who could own an action item: the meeting's participants, else the room's members."""
    people = []
    if getattr(item, "meeting_id", None):
        people = [p.user for p in item.meeting.participants.select_related("user__profile").order_by("joined_at", "id")]
    if not people and item.room_id:
        people = [m.user for m in item.room.memberships.select_related("user__profile").order_by("id")]
    return [u for u in people if u.is_active and u.get_username() != SYSTEM_USERNAME]


def action_item_owner_suggest(item, *, participant_ids) -> None:
    """A proposal the meeting gave no owner: suggest the participant the calendars say is free
    before the due date, with the reason (who is free how long) for whoever approves it."""
    if item.owner_id is not None:
        return
    candidates = list(User.objects.filter(pk__in=participant_ids, is_active=True))
    if not candidates:
        return
    with transaction.atomic():  # a savepoint: a failure here leaves the proposal's transaction usable
        user, reason = selectors.owner_suggest(candidates=candidates, due_date=item.due_date, now=timezone.now())
        item.suggested_owner = user
        item.owner_reason = reason or ""
        item.save(update_fields=["suggested_owner", "owner_reason"])


def task_create_from_action_item(item, *, actor) -> Task:
    """The task for an approved action item (one per item, however often this is called).

    Owner: the item's owner, else its suggested owner, else whoever of the meeting has the most free
    calendar time before the due date, else nobody. Provenance links back to the item, its transcript
    segments and the model that proposed it.
    """
    existing = Task.objects.filter(source_kind=Task.SourceKind.ACTION_ITEM, source_id=str(item.pk)).first()
    if existing is not None:
        return existing
    owner, owner_how, owner_reason = None, "unassigned", ""
    if getattr(item, "owner_id", None):
        owner, owner_how, owner_reason = item.owner, "owner", getattr(item, "owner_reason", "") or ""
    elif getattr(item, "suggested_owner_id", None):
        owner, owner_how, owner_reason = item.suggested_owner, "suggested", getattr(item, "owner_reason", "") or ""
    else:
        owner, owner_reason = selectors.owner_suggest(
            candidates=_action_item_candidates(item), due_date=item.due_date, now=timezone.now()
        )
        owner_how = "calendar" if owner is not None else "unassigned"
    if owner is not None and not owner.is_active:
        owner, owner_how = None, "unassigned"
    provenance = {
        "action_item": item.pk,
        "meeting": getattr(item, "meeting_id", None),
        "segments": list(getattr(item, "source_segment_ids", None) or []),
        "speaker": getattr(item, "speaker_id", None),
        "model_id": getattr(item, "model_id", ""),
        "prompt_version": getattr(item, "prompt_version", ""),
        "confidence": getattr(item, "confidence", None),
        "owner_from": owner_how,
        "owner_reason": owner_reason,
    }
    text = (item.text or "").strip()
    description = text if len(" ".join(text.split())) > 200 else ""
    try:
        with transaction.atomic():
            return task_create(
                title=text, description=description, owner=owner, due_date=item.due_date, room=item.room,
                source_kind=Task.SourceKind.ACTION_ITEM, source_id=str(item.pk), provenance=provenance,
                actor=actor, reason=f"action item #{item.pk} approved",
            )
    except IntegrityError:
        # A concurrent approval made the task first.
        existing = Task.objects.filter(source_kind=Task.SourceKind.ACTION_ITEM, source_id=str(item.pk)).first()
        if existing is None:
            raise
        return existing
