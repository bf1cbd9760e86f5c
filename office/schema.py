"""OpenAPI schema generation (drf-spectacular) with component names that cannot collide, and the
error answers every operation can give."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

# office.api.exception_handler's shape, which the control-character check (office.input_checks) shares.
ErrorOut = inline_serializer("Error", {
    "error": inline_serializer("ErrorBody", {
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "detail": serializers.JSONField(help_text="the messages, per field where there are fields"),
    }),
})


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

    def _get_response_bodies(self, direction="response"):
        """The documented answers plus the errors any request can get, so that a client (and the
        schema fuzz, tests/test_schema_fuzz.py) knows every status code it may see."""
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            responses.setdefault(code, self._get_response_for_code(ErrorOut, code, direction=direction))
        return responses

    def _error_codes(self) -> list[str]:
        # 400: bad input, or control characters anywhere in the request; 403: not signed in, not
        # allowed, or a read-only token; 429: the per-user rate limit.
        codes = ["400", "403", "429"]
        takes_input = bool(self._get_parameters()) or self.method in ("POST", "PUT", "PATCH")
        if takes_input:
            codes.append("404")  # a path, parameter or field names something missing or not yours
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes.append("409")  # the state changed under the caller (office.api.call_service)
        if self._get_request_body(direction="request") is not None:
            codes.append("415")  # a body in a media type the operation does not take
        return codes
