"""Pages: the office itself (the rest happens over the socket and the API), its map editor (admins), and a
member's API tokens."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import selectors, services
from .models import ApiToken, Room
from .sfu import sfu_configured


def office_home(request):
    office_map = selectors.default_office_map()
    if office_map is None:
        return render(request, "rooms/no_map.html", status=404)
    return redirect("office-page", map_id=office_map.id)


def office_page(request, map_id: int):
    try:
        office_map = selectors.office_map_get(map_id)
    except selectors.NotFound as exc:
        raise Http404("no such map") from exc
    profile = services.profile_ensure(request.user)
    # The page says "SFU unavailable — mesh" in a crowded walled room when the server has no SFU.
    sfu = {"offered": sfu_configured(), "from_participants": settings.OFFICE_SFU_FROM_PARTICIPANTS}
    return render(request, "rooms/office.html", {"office_map": office_map, "profile": profile, "sfu": sfu})


def map_editor_page(request, map_id: int):
    """The map editor (admins): every change it makes goes through the REST API and its services."""
    if not request.user.is_staff:
        raise PermissionDenied("only admins edit the map")
    try:
        office_map = selectors.office_map_get(map_id)
    except selectors.NotFound as exc:
        raise Http404("no such map") from exc
    return render(request, "rooms/map_editor.html", {"office_map": office_map, "kinds": Room.Kind.choices})


def api_tokens_page(request):
    """Create and revoke your own API tokens; a new token is shown on this one response only."""
    new_token = None
    if request.method == "POST":
        try:
            row, new_token = services.api_token_create(user=request.user, name=request.POST.get("name", ""),
                                                        scope=request.POST.get("scope", ""))
            messages.success(request, f"Token “{row.name}” created. Copy it now: it is not shown again.")
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
    response = render(request, "rooms/api_tokens.html", {
        "tokens": selectors.api_tokens_for(request.user), "new_token": new_token, "scopes": ApiToken.Scope.choices,
    })
    if new_token:
        response["Cache-Control"] = "no-store"  # the one page that holds the secret is never cached
    return response


@require_POST
def api_token_revoke_view(request, token_id: int):
    try:
        row = services.api_token_revoke(user=request.user, token_id=token_id)
    except selectors.NotFound as exc:
        raise Http404(str(exc)) from exc
    messages.success(request, f"Token “{row.name}” revoked.")
    return redirect("api-tokens")
