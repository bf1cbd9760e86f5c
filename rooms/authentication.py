"""API tokens on the REST API: `Authorization: Bearer office_<prefix>_<secret>`. A read token may
only read (GET, HEAD, OPTIONS); the socket and the pages stay on the session."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS

from .models import ApiToken
from .services import api_token_authenticate


class ApiTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None  # no token: the session decides
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("send one token: Authorization: Bearer <token>")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("the token is not valid") from exc
        row = api_token_authenticate(token)
        if row is None:
            raise exceptions.AuthenticationFailed("the token is not valid (unknown, revoked, or its member left)")
        if row.scope == ApiToken.Scope.READ and request.method not in SAFE_METHODS:
            raise exceptions.PermissionDenied("this token may only read; create a read-and-write token to change things")
        return row.user, row

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes the token (a bearer token)."""

    target_class = "rooms.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "an API token from /settings/tokens/"}
