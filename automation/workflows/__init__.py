"""Durable workflows on Celery with their state in PostgreSQL.

Other apps define workflows with `workflow`/`step` (automation.workflows.definitions), start them
with `services.workflow_start`, and perform side effects only through `StepContext.send`, so every
effect is recorded once in the ledger under an idempotency key.
"""
