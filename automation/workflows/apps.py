from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "automation.workflows"
    label = "workflows"
    verbose_name = "Workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Definitions and connectors are plain Python registries filled at import time; no
        # database access here (beat schedules are created by `manage.py workflow_schedules`).
        from django.conf import settings
        from django.db.models.signals import post_delete, post_save
        from django.utils.module_loading import autodiscover_modules, import_module

        from . import (
            connectors,  # noqa: F401  (registers the built-in connectors)
            metrics,
            receivers,
        )
        from .models import WebhookEndpoint

        autodiscover_modules("workflow_definitions")
        for module in getattr(settings, "OFFICE_WORKFLOW_MODULES", []):
            import_module(module)
        # A saved or deleted endpoint is checked at once (docs/adr/0017); the results are metrics.
        post_save.connect(receivers.webhook_endpoint_changed, sender=WebhookEndpoint,
                          dispatch_uid="workflows.check_saved_endpoint")
        post_delete.connect(receivers.webhook_endpoint_changed, sender=WebhookEndpoint,
                            dispatch_uid="workflows.check_deleted_endpoint")
        metrics.collector_register()
