"""Password sign-in that cannot be guessed at: failures are counted in Redis (shared by every web
node) per username from one address, and per address; past the limit the form refuses even a right
password until the window passes. Unknown user and wrong password read the same.

The sign-in page also offers single sign-on when it is on, and signing out of a session that came
from the provider signs out there too (office/oidc.py)."""

from __future__ import annotations

import hashlib
import logging

import redis
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, LogoutView
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect

from office.oidc import provider_end_session_url
from office.redis_client import redis_client

logger = logging.getLogger(__name__)


def _keys(username: str, address: str) -> list[str]:
    who = hashlib.sha256(f"{username.strip().lower()}|{address}".encode()).hexdigest()[:32]
    return [f"office:signin-fail:pair:{who}", f"office:signin-fail:addr:{address}"]


def _limits() -> list[int]:
    return [settings.OFFICE_SIGNIN_MAX_FAILURES, settings.OFFICE_SIGNIN_MAX_FAILURES_PER_ADDRESS]


def signin_locked(username: str, address: str) -> bool:
    try:
        counts = redis_client().mget(_keys(username, address))
    except redis.RedisError as exc:
        logger.warning("sign-in throttle unavailable (%s); not limiting", exc)
        return False
    return any(int(count or 0) >= limit for count, limit in zip(counts, _limits(), strict=True))


def signin_failed(username: str, address: str) -> None:
    try:
        pipe = redis_client().pipeline()
        for key in _keys(username, address):
            # the window starts at the first failure (SET NX EX), later ones only count
            pipe.set(key, 0, ex=settings.OFFICE_SIGNIN_LOCK_SECONDS, nx=True).incr(key)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("sign-in throttle unavailable (%s); failure not counted", exc)


def signin_succeeded(username: str, address: str) -> None:
    try:
        redis_client().delete(_keys(username, address)[0])
    except redis.RedisError:
        pass


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": "Too many failed sign-ins. Wait a few minutes, then try again.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = (self.request.META.get("REMOTE_ADDR") if self.request else "") or "unknown"
        if signin_locked(username, address):
            logger.warning("sign-in refused: too many failures", extra={"address": address})
            raise ValidationError(self.error_messages["locked"], code="locked")
        try:
            cleaned = super().clean()
        except ValidationError:
            signin_failed(username, address)
            raise
        signin_succeeded(username, address)
        return cleaned


class SignInView(LoginView):
    """The password form, and "Sign in with <provider>" above it while single sign-on is on."""

    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "oidc_enabled": settings.OIDC_ENABLED,
                "oidc_provider_name": settings.OFFICE_OIDC_PROVIDER_NAME}


class SignOutView(LogoutView):
    """Signs out here, and at the provider too when the session came from it."""

    def post(self, request, *args, **kwargs):
        at_provider = provider_end_session_url(request)  # read before the session is flushed
        response = super().post(request, *args, **kwargs)
        return HttpResponseRedirect(at_provider) if at_provider else response
