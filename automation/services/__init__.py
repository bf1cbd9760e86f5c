"""Writes to the work state, each validated, audited in its transaction and announced after commit:
`audit` (actors, audit rows), `work_tasks` (tasks), `action_items` (tasks from approved action items,
owner suggestions), `tickets` (facilities tickets), `reminders`, `digests` and `calendar_feeds`
(free/busy imports). People, agents and automations write only through here (`automation.services`).
"""

from .action_items import action_item_owner_suggest, task_create_from_action_item
from .calendar_feeds import (
    calendar_feed_add,
    calendar_feed_breaker,
    calendar_feed_check,
    calendar_feed_import,
    calendar_feeds_checked,
    calendar_import_all,
)
from .digests import DIGEST_ACTOR, digest_build, digest_send, digests_build, digests_send_daily
from .reminders import REMINDER_ACTOR, reminder_schedule, reminder_time, reminders_send_due
from .tickets import TICKET_FIELDS, TICKET_TRANSITIONS, ticket_open, ticket_resolve, ticket_update
from .work_tasks import TASK_FIELDS, task_create, task_update

__all__ = [
    "DIGEST_ACTOR",
    "REMINDER_ACTOR",
    "TASK_FIELDS",
    "TICKET_FIELDS",
    "TICKET_TRANSITIONS",
    "action_item_owner_suggest",
    "calendar_feed_add",
    "calendar_feed_breaker",
    "calendar_feed_check",
    "calendar_feeds_checked",
    "calendar_feed_import",
    "calendar_import_all",
    "digest_build",
    "digest_send",
    "digests_build",
    "digests_send_daily",
    "reminder_schedule",
    "reminder_time",
    "reminders_send_due",
    "task_create",
    "task_create_from_action_item",
    "task_update",
    "ticket_open",
    "ticket_resolve",
    "ticket_update",
]
