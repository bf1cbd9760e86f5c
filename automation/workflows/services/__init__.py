"""The workflow engine's writes: `runs` (start, operator retry/skip/cancel), `steps` (claim, execute,
record the outcome), `approvals`, `outbox` (relay, requeue of stalled steps, the beat tick) and
`state` (run transitions and the event log the others share), `checks` (synthetic connector checks);
the inbox (`..inbox`) is re-exported.
"""

from ..inbox import chat_mentions_notify, notification_create, notification_mark_read, notification_payload
from .approvals import approval_can_decide, approval_decide
from .checks import (
    CHECK_TASK,
    CHECKS_TASK,
    connector_check_queue,
    connector_check_run,
    connector_checks_due,
    connector_checks_run_all,
    connector_checks_schedule_ensure,
)
from .outbox import (
    STEP_EXECUTE_TASK,
    TICK_TASK_NAME,
    outbox_relay,
    steps_requeue_stalled,
    workflow_schedules_ensure,
    workflow_tick,
)
from .runs import RUN_ACTIONS, run_act, run_cancel, run_retry, run_skip_step, workflow_start
from .steps import _claim as _claim  # tests claim a step by hand (a worker that dies mid-step)
from .steps import step_execute

__all__ = [
    "CHECKS_TASK",
    "CHECK_TASK",
    "RUN_ACTIONS",
    "STEP_EXECUTE_TASK",
    "TICK_TASK_NAME",
    "approval_can_decide",
    "approval_decide",
    "connector_check_queue",
    "connector_check_run",
    "connector_checks_due",
    "connector_checks_run_all",
    "connector_checks_schedule_ensure",
    "chat_mentions_notify",
    "notification_create",
    "notification_mark_read",
    "notification_payload",
    "outbox_relay",
    "run_act",
    "run_cancel",
    "run_retry",
    "run_skip_step",
    "step_execute",
    "steps_requeue_stalled",
    "workflow_schedules_ensure",
    "workflow_start",
    "workflow_tick",
]
