"""How reminders and digests reach people: durable workflows (found by the workflow engine's
autodiscovery). Each effect goes through a connector once per run, so a retried step never
reminds twice; a member without an e-mail address gets only the in-app notification."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from automation.workflows.definitions import step, workflow


def _email_of(user_id: int) -> str:
    return get_user_model().objects.filter(pk=user_id, is_active=True).values_list("email", flat=True).first() or ""


def notify_in_app(ctx):
    message = ctx.input
    return ctx.send("notification", {"user_id": message["user_id"], "title": message["title"],
                                     "body": message["body"], "url": message.get("url", "")}, key="inbox")


def notify_by_email(ctx):
    address = _email_of(ctx.input["user_id"])
    if not address:
        return "no e-mail address"
    return ctx.send("email", {"to": [address], "subject": ctx.input["title"], "body": ctx.input["body"]}, key="email")


@workflow("task.remind", version=1, description="Remind a task's owner before it is due.")
def task_remind():
    return [step(notify_in_app, retries=5, backoff=2.0), step(notify_by_email, retries=5, backoff=30.0)]


@workflow("digest.send", version=1, description="Deliver a member's daily digest.")
def digest_send():
    return [step(notify_in_app, retries=5, backoff=2.0), step(notify_by_email, retries=5, backoff=30.0)]
