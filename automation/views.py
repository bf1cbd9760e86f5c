"""Pages: the tasks board and the facilities tickets list. Changes are plain form POSTs (with CSRF)
that call one service and come back to the page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from rooms import selectors as room_selectors
from rooms.models import RoomMembership

from . import selectors, services
from .models import Task, Ticket

TABS = (("mine", "Mine"), ("team", "My team"), ("all", "Everything I can see"))


def _back(request, fallback: str):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback)


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _visible_room(request, room_id: int | None):
    return room_selectors.room_get_visible(user=request.user, room_id=room_id) if room_id else None


def _visible_or_404(selector, request, object_id: int):
    try:
        return selector(request.user, object_id)
    except selectors.NotFound as exc:
        raise Http404(str(exc)) from exc


def _submit(request, change, *, success: str = "") -> None:
    """Run one form's change; a refusal becomes a message on the page the form came from (the API
    answers the same refusal with a 4xx). A PermissionDenied still answers 403."""
    try:
        change()
    except selectors.NotFound as exc:  # a room named in the form that this member may not see
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        if success:
            messages.success(request, success)


def tasks_page(request):
    tab = request.GET.get("tab", "mine")
    room_id = _int(request.GET.get("room"))
    if room_id is not None:
        tab = "room"
    try:
        tasks = list(selectors.tasks_for_tab(request.user, tab=tab, room_id=room_id,
                                             include_closed=request.GET.get("closed") == "1"))
    except selectors.NotFound as exc:
        raise Http404(str(exc)) from exc
    rooms = room_selectors.rooms_visible_to(request.user).order_by("name")
    team_room_ids = set(RoomMembership.objects.filter(user=request.user).values_list("room_id", flat=True))
    return render(request, "automation/tasks.html", {
        "tasks": tasks,
        "tab": tab,
        "tabs": TABS,
        "room_id": room_id,
        "rooms": rooms,
        "team_room_ids": sorted(team_room_ids),
        "members": selectors.active_members().order_by("username"),
        "statuses": Task.Status.choices,
        "show_closed": request.GET.get("closed") == "1",
    })


@require_POST
def task_create_view(request):
    room_id, owner_id = _int(request.POST.get("room")), _int(request.POST.get("owner"))
    owner = selectors.active_members().filter(pk=owner_id).first() if owner_id else None
    _submit(request, lambda: services.task_create(
        title=request.POST.get("title", ""), description=request.POST.get("description", ""), owner=owner,
        room=_visible_room(request, room_id), due_date=request.POST.get("due_date") or None, actor=request.user,
    ), success="Task created.")
    return _back(request, "automation-tasks")


@require_POST
def task_status_view(request, task_id: int):
    task = _visible_or_404(selectors.task_for_user, request, task_id)
    _submit(request, lambda: services.task_update(task, actor=request.user, reason=request.POST.get("reason", ""),
                                                  status=request.POST.get("status", "")))
    return _back(request, "automation-tasks")


def tickets_page(request):
    show = request.GET.get("show", "open")
    tickets = selectors.tickets_visible_to(request.user)
    if show == "open":
        tickets = tickets.filter(status__in=Ticket.OPEN_STATUSES)
    return render(request, "automation/tickets.html", {
        "tickets": list(tickets.order_by("-created_at")[:500]),
        "show": show,
        "rooms": room_selectors.rooms_visible_to(request.user).order_by("name"),
        "kinds": Ticket.Kind.choices,
        "severities": Ticket.Severity.choices,
        "transitions": {k: sorted(v) for k, v in services.TICKET_TRANSITIONS.items()},
        # For rows the page adds live (static/automation/work.js).
        "labels": {"kind": dict(Ticket.Kind.choices), "severity": dict(Ticket.Severity.choices),
                   "status": dict(Ticket.Status.choices)},
    })


@require_POST
def ticket_report_view(request):
    label = request.user.get_username()
    room_id = _int(request.POST.get("room"))
    _submit(request, lambda: services.ticket_open(
        kind=request.POST.get("kind", ""), room=_visible_room(request, room_id),
        severity=request.POST.get("severity", "medium"), title=request.POST.get("title", ""),
        detail=request.POST.get("detail", ""), source=f"member:{label}", dedupe_key="", actor_label=label,
        actor=request.user,
    ), success="Thanks, the problem is reported.")
    return _back(request, "automation-tickets")


@require_POST
def ticket_status_view(request, ticket_id: int):
    ticket = _visible_or_404(selectors.ticket_for_user, request, ticket_id)
    _submit(request, lambda: services.ticket_update(ticket, actor=request.user, reason=request.POST.get("reason", ""),
                                                    status=request.POST.get("status", "")))
    return _back(request, "automation-tickets")
