from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Approved action items become tasks inside the approving transaction. The assistant app
        # sends the signal; until it defines one there is nothing to connect.
        try:
            from assistant.signals import action_item_approved
        except ImportError:
            return
        from .receivers import task_from_approved_action_item

        action_item_approved.connect(task_from_approved_action_item, dispatch_uid="automation.task_from_action_item")
