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
        from django.utils.module_loading import autodiscover_modules, import_module

        from . import connectors  # noqa: F401  (registers the built-in connectors)

        autodiscover_modules("workflow_definitions")
        for module in getattr(settings, "OFFICE_WORKFLOW_MODULES", []):
            import_module(module)
