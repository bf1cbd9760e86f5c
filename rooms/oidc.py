"""Single sign-on (docs/adr/0016): mozilla-django-oidc runs the code flow and checks the ID token; this
backend turns the provider's claims into a member (rooms.services.member_sign_in_with_identity)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import SuspiciousOperation, ValidationError
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from . import services

logger = logging.getLogger(__name__)


def admin_from_claims(claims: dict) -> bool | None:
    """Whether the claims carry OFFICE_OIDC_ADMIN_GROUP in OFFICE_OIDC_ADMIN_CLAIM; None (leave the
    role alone) when no admin group is configured."""
    group = settings.OFFICE_OIDC_ADMIN_GROUP
    if not group:
        return None
    value = claims.get(settings.OFFICE_OIDC_ADMIN_CLAIM)
    if isinstance(value, str):
        value = value.split()  # some providers send a space-separated string
    return isinstance(value, list) and group in value


def _claimed_true(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class OidcMemberBackend(OIDCAuthenticationBackend):
    """Matches by the `sub` claim, never by a name or an unverified address (see the service)."""

    def authenticate(self, request, **kwargs):
        # Only the callback view passes a nonce; a password sign-in never reaches the provider, even
        # if its URL happens to carry code and state.
        if "nonce" not in kwargs:
            return None
        return super().authenticate(request, **kwargs)

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        # The userinfo answer must be about the person the signed ID token names (OIDC Core 5.3.2).
        if not claims.get("sub") or claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("the userinfo subject is not the ID token's")
        username = claims.get("preferred_username") or (claims.get("email") or "").split("@")[0]
        full_name = " ".join(part for part in (claims.get("given_name"), claims.get("family_name")) if part)
        try:
            return services.member_sign_in_with_identity(
                subject=str(claims["sub"]),
                username_hint=username,
                display_name=claims.get("name") or full_name or username,
                email=claims.get("email") or "",
                email_verified=_claimed_true(claims.get("email_verified")),
                admin=admin_from_claims(claims),
            )
        except ValidationError as exc:
            logger.warning("single sign-on refused: %s", exc)
            return None
