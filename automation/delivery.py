"""The one way reminders and digests leave the work kernel: a durable workflow run.

Called inside the transaction that claims a send, so the claim and the run (with its outbox row)
commit together: a crash cannot lose a claimed reminder, and the run's idempotency key means a
repeat cannot start a second one. The workflow's steps deliver (in-app inbox, e-mail) with retries.
"""

from __future__ import annotations

from automation.workflows.services import workflow_start

WORKFLOW_FOR_KIND = {"task.reminder": "task.remind", "digest.ready": "digest.send"}


def member_notify(*, user_id: int, kind: str, title: str, body: str, data: dict, idempotency_key: str,
                  url: str = "") -> int:
    """Tell a member something (`kind` is "task.reminder" or "digest.ready"); returns the run id."""
    run = workflow_start(
        WORKFLOW_FOR_KIND[kind],
        {"user_id": user_id, "kind": kind, "title": title, "body": body, "url": url, "data": data},
        idempotency_key=idempotency_key,
    )
    return run.pk
