"""Signal receivers: thin adapters that call one service (connected in `WorkflowsConfig.ready()`)."""

from __future__ import annotations

from . import services


def webhook_endpoint_changed(sender, instance, **kwargs) -> None:
    """An endpoint was saved or deleted: its synthetic check runs once this commits (docs/adr/0017)."""
    services.connector_check_queue(connector="webhook", target=str(instance.pk))
