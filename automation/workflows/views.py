"""Pages: the run history (admins), the approvals inbox and the notification inbox (members).
Buttons POST with CSRF and call the same services as the REST API."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services
from .models import Approval, WorkflowRun


def _staff_only(request) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("the run history is for admins")


@require_GET
def runs_page(request):
    _staff_only(request)
    status = request.GET.get("status") or ""
    if status not in WorkflowRun.Status.values:
        status = ""
    counts = selectors.status_counts()
    return render(request, "workflows/runs.html", {
        "runs": selectors.runs_list(status=status or None),
        "status": status,
        "statuses": [(value, label, counts.get(value, 0)) for value, label in WorkflowRun.Status.choices],
        "total": sum(counts.values()),
        "checks": selectors.connector_checks_latest(),
    })


@require_GET
def run_page(request, run_id: int):
    _staff_only(request)
    try:
        run = selectors.run_get(run_id)
    except selectors.NotFound as exc:
        raise Http404(str(exc)) from exc
    return render(request, "workflows/run.html", selectors.run_detail(run))


@require_POST
def run_action(request, run_id: int, action: str):
    _staff_only(request)
    try:
        run = selectors.run_get(run_id)
    except selectors.NotFound as exc:
        raise Http404(str(exc)) from exc
    if action not in services.RUN_ACTIONS:
        raise Http404("unknown action")
    try:
        services.run_act(run, request.user, action=action, note=request.POST.get("note", ""))
        messages.success(request, f"{action.capitalize()}: done.")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    return redirect("workflows-run", run_id=run.pk)


@require_GET
def approvals_page(request):
    show = request.GET.get("show", "pending")
    decision = None if show == "all" else Approval.Decision.PENDING
    return render(request, "workflows/approvals.html", {
        "approvals": selectors.approvals_for(request.user, decision=decision),
        "show": "all" if decision is None else "pending",
    })


@require_POST
def approval_decide(request, approval_id: int):
    try:
        approval = selectors.approval_get_for(request.user, approval_id)
    except selectors.NotFound as exc:
        raise Http404(str(exc)) from exc
    verdict = request.POST.get("decision")
    if verdict not in ("approve", "reject"):
        messages.error(request, "Choose approve or reject.")
        return redirect("workflows-approvals")
    try:
        services.approval_decide(approval, request.user, verdict == "approve", request.POST.get("note", ""))
        messages.success(request, f"{'Approved' if verdict == 'approve' else 'Rejected'}: {approval.summary}")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    return redirect("workflows-approvals")


@require_GET
def notifications_page(request):
    return render(request, "workflows/notifications.html", {
        "notifications": selectors.notifications_for(request.user, limit=100),
        "unread": selectors.notifications_unread_count(request.user),
    })


@require_POST
def notifications_read(request):
    services.notification_mark_read(user=request.user)
    return redirect("workflows-notifications")
