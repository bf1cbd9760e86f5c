"""The ranker registry page (admins): versions per kind with their card figures, promote / shadow /
roll back buttons (POST with CSRF, the same services as the command line), and weekly drift."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import registry
from .models import AssistantVersion


def _staff_only(request) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("the ranker registry is for admins")


def _kind(kind: str) -> str:
    if kind not in AssistantVersion.Kind.values:
        raise Http404("no such ranker kind")
    return kind


@require_GET
def versions_page(request):
    _staff_only(request)
    return render(request, "assistant/versions.html", {
        "kinds": registry.versions_overview(),
        "drift": registry.drift_by_week(),
        "tolerance": registry.GUARD_TOLERANCE,
        "window_days": registry.DECISION_WINDOW_DAYS,
    })


VERSION_ACTIONS = {
    "promote": (registry.version_promote, "promoted: it is now current"),
    "shadow": (registry.version_set_shadow, "now runs in shadow"),
}


@require_POST
def version_action(request, kind: str, version: str, action: str):
    _staff_only(request)
    if action not in VERSION_ACTIONS:
        raise Http404("unknown action")
    service, done = VERSION_ACTIONS[action]
    try:
        service(_kind(kind), version, request.user)
        messages.success(request, f"{kind} {version} {done}.")
    except (ValueError, LookupError) as exc:  # the guard's refusal, or an artefact that is gone
        messages.error(request, str(exc))
    return redirect("assistant-versions")


@require_POST
def version_rollback(request, kind: str):
    _staff_only(request)
    try:
        row = registry.version_rollback(_kind(kind), request.user)
        messages.success(request, f"{kind} rolled back: {row.version} is current again.")
    except (ValueError, LookupError) as exc:
        messages.error(request, str(exc))
    return redirect("assistant-versions")
