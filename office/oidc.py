"""Single sign-on views (docs/adr/0016): mozilla-django-oidc's, open without a session (you cannot have
one yet), answering 404 while OIDC_ENABLED is off, and telling a failed sign-in on the sign-in page
instead of a 400 or 500. The member behind the claims is rooms' business (rooms/oidc.py)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import path
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

logger = logging.getLogger(__name__)


def provider_end_session_url(request) -> str | None:
    """The provider's end-session address for this session, coming back to the sign-in page; None when
    the session did not come from the provider (or it has no end-session endpoint)."""
    id_token = request.session.get("oidc_id_token")
    if not (settings.OIDC_ENABLED and settings.OIDC_OP_LOGOUT_ENDPOINT and id_token):
        return None
    back_here = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
    return f"{settings.OIDC_OP_LOGOUT_ENDPOINT}?{urlencode({'id_token_hint': id_token, 'post_logout_redirect_uri': back_here})}"


def provider_logout_url(request) -> str:
    """mozilla-django-oidc's OIDC_OP_LOGOUT_URL_METHOD: signing out of a session that came from the
    provider ends it there too, so the next "Sign in with" asks again on a shared computer."""
    return provider_end_session_url(request) or resolve_url(settings.LOGOUT_REDIRECT_URL)


class _OnlyWhenEnabled:
    def dispatch(self, request, *args, **kwargs):
        if not settings.OIDC_ENABLED:
            raise Http404("single sign-on is not enabled")
        return super().dispatch(request, *args, **kwargs)


class SignOnStartView(_OnlyWhenEnabled, OIDCAuthenticationRequestView):
    """Sends the browser to the provider with a fresh state, nonce and PKCE challenge."""


class SignOnCallbackView(_OnlyWhenEnabled, OIDCAuthenticationCallbackView):
    """The provider sends the browser back here with a code; the backend redeems it."""

    def get(self, request):
        try:
            return super().get(request)
        except SuspiciousOperation as exc:  # a state this browser never asked for, a bad nonce or signature
            logger.warning("single sign-on refused: %s", exc)
        except requests.RequestException as exc:  # the provider down, or it refused the code
            logger.warning("single sign-on failed at the provider: %s", exc)
        return self.login_failure()

    def login_failure(self):
        messages.error(self.request, f"Signing in with {settings.OFFICE_OIDC_PROVIDER_NAME} did not work out. "
                                     "Try again; if it keeps failing, ask an admin.")
        return HttpResponseRedirect(resolve_url(settings.LOGIN_REDIRECT_URL_FAILURE))


# Named as mozilla-django-oidc names them: its backend reverses the callback's name.
urlpatterns = [
    path("authenticate/", login_not_required(SignOnStartView.as_view()), name="oidc_authentication_init"),
    path("callback/", login_not_required(SignOnCallbackView.as_view()), name="oidc_authentication_callback"),
]
