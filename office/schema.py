"""OpenAPI schema generation (drf-spectacular) with component names that cannot collide."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema


class OfficeAutoSchema(AutoSchema):
    """A serializer declared inside its view (`TaskListApi.InputSerializer`, `AskApi.Body`) is named
    after the view (`TaskListInput`, `AskBody`): dozens of views call theirs `InputSerializer`, and
    same-named components would overwrite each other in the schema."""

    def get_serializer_name(self, serializer, direction):
        name = super().get_serializer_name(serializer, direction)
        parts = type(serializer).__qualname__.split(".")
        if len(parts) > 1 and "<locals>" not in parts:
            view = parts[-2].removesuffix("Api").removesuffix("View")
            if not name.startswith(view):
                return view + name
        return name
