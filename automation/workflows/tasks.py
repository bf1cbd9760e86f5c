"""Celery adapters: they take ids and call one service. Delivery is at least once (acks_late,
reject on worker loss); the services make a repeated message harmless."""

from celery import shared_task

from . import services


@shared_task(name="workflows.step_execute", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def step_execute_task(step_id: int) -> str:
    return services.step_execute(step_id)


@shared_task(name="workflows.tick", ignore_result=True)
def tick_task() -> dict:
    return services.workflow_tick()


@shared_task(name="workflows.connector_check", ignore_result=True)
def connector_check_task(connector: str, target: str, reason: str = "schedule") -> bool | None:
    row = services.connector_check_run(connector=connector, target=target, reason=reason)
    return None if row is None else row.ok


@shared_task(name="workflows.connector_checks", ignore_result=True)
def connector_checks_task() -> dict:
    return services.connector_checks_due()
