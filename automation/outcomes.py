"""Automation's part of the outcome dashboard (rooms/outcomes.py): what became of approved action
items (done, and how long it took from the approval), how fast tickets are resolved, and the model
cost per completed task. The assistant's figures come through its selectors (`assistant.outcomes`).

A task's done time is its audit trail's: the last entry that set its status to done.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from assistant import outcomes as assistant_outcomes
from rooms.outcomes import OutcomeScope, figure, median_per_day, per_day, section, series

from .models import AuditEntry, Task, Ticket


def tasks_done(scope: OutcomeScope, *, source_kind: str | None = None) -> list[tuple[int, str, dt.datetime]]:
    """(task id, source id, done at) of the scope's tasks that are done and became so in its range."""
    done_at = (AuditEntry.objects.filter(subject_type="task", subject_id=OuterRef("pk"), after__status=Task.Status.DONE)
               .order_by("-at", "-id").values("at")[:1])
    tasks = Task.objects.filter(scope.rooms(), status=Task.Status.DONE)
    if source_kind is not None:
        tasks = tasks.filter(source_kind=source_kind)
    return list(tasks.annotate(done_at=Subquery(done_at)).filter(scope.during("done_at"))
                .values_list("pk", "source_id", "done_at"))


def _count_by_day(scope: OutcomeScope, moments) -> dict[dt.date, int]:
    counts: dict[dt.date, int] = {}
    for moment in moments:
        day = scope.day_of(moment)
        counts[day] = counts.get(day, 0) + 1
    return counts


def approval_to_done_seconds(scope: OutcomeScope) -> list[tuple[dt.date, float]]:
    """From an action item's approval to its task being done, by the day it was done."""
    done = tasks_done(scope, source_kind=Task.SourceKind.ACTION_ITEM)
    approved = assistant_outcomes.action_items_approved_at(int(source_id) for _pk, source_id, _at in done)
    return [(scope.day_of(done_at), (done_at - approved[int(source_id)]).total_seconds())
            for _pk, source_id, done_at in done if int(source_id) in approved]


def ticket_times(ticket_ids) -> dict[int, tuple[dt.datetime, dt.datetime | None]]:
    """(opened at, resolved at or None) of these tickets, for stages that link to them (iot's firings)."""
    return {pk: (created_at, resolved_at) for pk, created_at, resolved_at in
            Ticket.objects.filter(pk__in=list(ticket_ids)).values_list("pk", "created_at", "resolved_at")}


def ticket_resolve_seconds(scope: OutcomeScope) -> list[tuple[dt.date, float]]:
    """From a ticket being opened to its resolution, by the day it was resolved."""
    tickets = Ticket.objects.filter(scope.rooms(), scope.during("resolved_at")).values_list("created_at", "resolved_at")
    return [(scope.day_of(resolved_at), (resolved_at - created_at).total_seconds()) for created_at, resolved_at in tickets]


def automation_outcome_sections(scope: OutcomeScope) -> list[dict]:
    item_counts = assistant_outcomes.action_item_counts_by_day(scope)
    items_done = _count_by_day(scope, (at for _pk, _source, at in tasks_done(scope, source_kind=Task.SourceKind.ACTION_ITEM)))
    all_done = _count_by_day(scope, (at for _pk, _source, at in tasks_done(scope)))
    approval_days, approval_median = median_per_day(scope, approval_to_done_seconds(scope))
    resolved = ticket_resolve_seconds(scope)
    resolve_days, resolve_median = median_per_day(scope, resolved)
    opened = dict(Ticket.objects.filter(scope.rooms(), scope.during("created_at"))
                  .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
                  .values("day").annotate(n=Count("id")).values_list("day", "n"))
    costs, total_cost, unpriced = assistant_outcomes.model_cost_by_day(scope)
    cost_per_task = [None if not all_done.get(day) or costs.get(day, 0.0) is None
                     else round(costs.get(day, 0.0) / all_done[day], 6) for day in scope.days]
    total_done = sum(all_done.values())
    item_lines = [("proposed", "Proposed", item_counts["proposed"]), ("approved", "Approved", item_counts["approve"]),
                  ("edited", "Edited", item_counts["edit"]), ("rejected", "Rejected", item_counts["reject"]),
                  ("done", "Done", items_done)]
    return [
        section(key="action_items", order=20, title="Action items", unit="count",
                series_list=[series(key, label, per_day(scope, counts)) for key, label, counts in item_lines],
                figures=[figure(key, label, sum(counts.values()), "count") for key, label, counts in item_lines]),
        section(key="approval_to_done", order=30, title="Approval → done", unit="seconds",
                series_list=[series("approval_to_done_median", "Median approval → done", approval_days)],
                figures=[figure("approval_to_done_median", "Median approval → done", approval_median, "seconds"),
                         figure("tasks_done", "Tasks done", total_done, "count")]),
        section(key="cost_per_task", order=43, title="Estimated model cost per completed task", unit="cost",
                series_list=[series("cost_per_task", "Cost per completed task", cost_per_task)],
                figures=[figure("cost_per_task", "Cost per completed task",
                                None if not total_done or total_cost is None else round(total_cost / total_done, 6),
                                "cost"),
                         figure("tasks_done", "Tasks done", total_done, "count")],
                note="Unknown where a model call has no price." if unpriced else ""),
        section(key="tickets", order=50, title="Tickets: opened → resolved", unit="seconds",
                series_list=[series("ticket_resolve_median", "Median time to resolve", resolve_days)],
                figures=[figure("ticket_resolve_median", "Median time to resolve", resolve_median, "seconds"),
                         figure("tickets_opened", "Tickets opened", sum(opened.values()), "count"),
                         figure("tickets_resolved", "Tickets resolved", len(resolved), "count")]),
    ]
