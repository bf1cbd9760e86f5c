"""Pages: the office itself (the rest happens over the socket and the API)."""

from django.http import Http404
from django.shortcuts import redirect, render

from . import selectors, services


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
    return render(request, "rooms/office.html", {"office_map": office_map, "profile": profile})
