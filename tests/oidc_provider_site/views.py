"""The provider's two test commands (`provider_user`, `provider_client`) run by the serving process
when a test asks: a `python -m django` process per change cost one and a half seconds each. Only the
test process that started the provider knows the token."""

from __future__ import annotations

import hmac
import io
import json
import os

from django.core.management import call_command
from django.http import HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

COMMANDS = {"provider_user", "provider_client"}


@csrf_exempt
@require_POST
def run_command(request, command: str):
    if not hmac.compare_digest(request.headers.get("X-Test-Token", ""), os.environ["OIDC_TEST_PROVIDER_TOKEN"]):
        return HttpResponseForbidden()
    if command not in COMMANDS:
        return HttpResponseNotFound()
    out = io.StringIO()
    call_command(command, *json.loads(request.body), stdout=out)
    return HttpResponse(out.getvalue(), content_type="text/plain")
