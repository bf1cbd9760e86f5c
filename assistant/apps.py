from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "assistant"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the indexing receivers)
