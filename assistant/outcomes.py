"""The assistant's part of the outcome dashboard (rooms/outcomes.py): how people decide on its
proposals, and what its model calls take (tokens, latency, estimated cost).

Cost is an estimate from `OFFICE_MODEL_PRICE_PER_1K_TOKENS` ({endpoint or model id: price per 1k
tokens}, the endpoint first). A call with no price has an unknown cost, and so has every total it is
part of: an unknown is never shown as zero.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Count, F, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from rooms.outcomes import OutcomeScope, Percentile, figure, median_per_day, per_day, section, series

from .models import ActionItem, ActionItemDecision, ModelCall

# Latency is what a model took to answer: calls served from the cache or refused by a down endpoint
# never reached one.
LATENCY_EXCLUDED = (ModelCall.Status.CACHED, ModelCall.Status.UNAVAILABLE)


def _day(field: str) -> TruncDate:
    return TruncDate(field, tzinfo=timezone.get_current_timezone())


# --- action items: proposals and decisions ---

def action_item_counts_by_day(scope: OutcomeScope) -> dict[str, dict[dt.date, int]]:
    """Proposals shown to people (shadow rankers' excluded) by the day they were made, and decisions
    by action ("approve", "edit", "reject") by the day they were taken."""
    counts: dict[str, dict[dt.date, int]] = {"proposed": {}, **{a: {} for a in ActionItemDecision.Action.values}}
    proposed = (ActionItem.objects.filter(scope.rooms(), scope.during("created_at"), shadow=False)
                .annotate(day=_day("created_at")).values("day").annotate(n=Count("id")))
    for row in proposed:
        counts["proposed"][row["day"]] = row["n"]
    decided = (ActionItemDecision.objects.filter(scope.rooms("item__room"), scope.during("at"), item__shadow=False)
               .annotate(day=_day("at")).values("day", "action").annotate(n=Count("id")))
    for row in decided:
        counts[row["action"]][row["day"]] = row["n"]
    return counts


def action_items_approved_at(item_ids) -> dict[int, dt.datetime]:
    """When each of these action items was approved (its approve decision)."""
    rows = (ActionItemDecision.objects.filter(item_id__in=list(item_ids), action=ActionItemDecision.Action.APPROVE)
            .values("item_id").annotate(at=Min("at")))
    return {row["item_id"]: row["at"] for row in rows}


def review_seconds_by_day(scope: OutcomeScope) -> list[tuple[dt.date, float]]:
    """Human review time: from the proposal to its approval or rejection, by the day it was decided."""
    items = (ActionItem.objects.filter(scope.rooms(), scope.during("decided_at"), shadow=False)
             .values_list("created_at", "decided_at"))
    return [(scope.day_of(decided_at), (decided_at - created_at).total_seconds()) for created_at, decided_at in items]


# --- model calls ---

def model_price_per_1k(*, endpoint: str, model_id: str) -> float | None:
    prices = settings.OFFICE_MODEL_PRICE_PER_1K_TOKENS
    return prices.get(endpoint, prices.get(model_id))


def _priced(rows) -> tuple[float | None, int]:
    """(the cost of these (endpoint, model_id, tokens, calls) groups, None if any has no price; calls unpriced)."""
    cost, unpriced = 0.0, 0
    for row in rows:
        price = model_price_per_1k(endpoint=row["endpoint"], model_id=row["model_id"])
        if price is None:
            unpriced += row["calls"]
        else:
            cost += row["tokens"] / 1000 * price
    return (None if unpriced else round(cost, 6)), unpriced


def _model_calls(scope: OutcomeScope):
    return ModelCall.objects.filter(scope.rooms(), scope.during("created_at"))


def model_cost_by_day(scope: OutcomeScope) -> tuple[dict[dt.date, float | None], float | None, int]:
    """(estimated cost by day, None on days with an unpriced call; the range's cost, None if any call
    is unpriced; the number of unpriced calls). Days without calls cost 0."""
    groups = (_model_calls(scope).annotate(day=_day("created_at")).values("day", "endpoint", "model_id")
              .annotate(tokens=Sum(F("prompt_tokens") + F("completion_tokens")), calls=Count("id")))
    by_day: dict[dt.date, list[dict]] = {}
    for row in groups:
        by_day.setdefault(row["day"], []).append(row)
    costs = {day: _priced(rows)[0] for day, rows in by_day.items()}
    total, unpriced = _priced([row for rows in by_day.values() for row in rows])
    return costs, total, unpriced


def model_tokens_by_day(scope: OutcomeScope) -> dict[dt.date, dict[str, int]]:
    rows = (_model_calls(scope).annotate(day=_day("created_at")).values("day")
            .annotate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), calls=Count("id")))
    return {row["day"]: {"prompt": row["prompt"], "completion": row["completion"], "calls": row["calls"]}
            for row in rows}


def model_latency_by_day(scope: OutcomeScope) -> dict[dt.date, dict[str, float]]:
    """p50 and p95 latency in ms by day (percentile_cont: interpolated)."""
    rows = (_model_calls(scope).exclude(status__in=LATENCY_EXCLUDED).annotate(day=_day("created_at")).values("day")
            .annotate(p50=Percentile("latency_ms", 0.5), p95=Percentile("latency_ms", 0.95)))
    return {row["day"]: {"p50": row["p50"], "p95": row["p95"]} for row in rows}


def model_use_by_purpose(scope: OutcomeScope) -> list[dict]:
    """Per task the assistant does (summaries, action items, answers...): calls, tokens, latency, cost."""
    calls = _model_calls(scope)
    answered = ~Q(status__in=LATENCY_EXCLUDED)
    rows = {row["purpose"]: {**row, "cost": 0.0} for row in calls.values("purpose").annotate(
        calls=Count("id"), prompt_tokens=Sum("prompt_tokens"), completion_tokens=Sum("completion_tokens"),
        p50_ms=Percentile("latency_ms", 0.5, filter=answered), p95_ms=Percentile("latency_ms", 0.95, filter=answered))}
    groups = calls.values("purpose", "endpoint", "model_id").annotate(
        tokens=Sum(F("prompt_tokens") + F("completion_tokens")), calls=Count("id"))
    by_purpose: dict[str, list[dict]] = {}
    for group in groups:
        by_purpose.setdefault(group["purpose"], []).append(group)
    for purpose, groups_of_purpose in by_purpose.items():
        rows[purpose]["cost"] = _priced(groups_of_purpose)[0]
    return [rows[purpose] for purpose in sorted(rows)]


def _round(value, digits=1):
    return None if value is None else round(value, digits)


def assistant_outcome_sections(scope: OutcomeScope) -> list[dict]:
    review_days, review_median = median_per_day(scope, review_seconds_by_day(scope))
    tokens = model_tokens_by_day(scope)
    latency = model_latency_by_day(scope)
    costs, total_cost, unpriced = model_cost_by_day(scope)
    purposes = model_use_by_purpose(scope)
    all_latency = _model_calls(scope).exclude(status__in=LATENCY_EXCLUDED).aggregate(
        p50=Percentile("latency_ms", 0.5), p95=Percentile("latency_ms", 0.95))
    token_rows = list(tokens.values())
    cost_note = ("" if not unpriced else
                 f"Cost unknown for {unpriced} call{'s' if unpriced != 1 else ''}: no price for their endpoint or "
                 "model in OFFICE_MODEL_PRICE_PER_1K_TOKENS.")
    return [
        section(key="review_time", order=25, title="Human review time (proposal → decision)", unit="seconds",
                series_list=[series("review_median", "Median review time", review_days)],
                figures=[figure("review_median", "Median review time", review_median, "seconds")]),
        section(key="model_tokens", order=40, title="Model tokens", unit="tokens",
                series_list=[series("prompt_tokens", "Prompt tokens", per_day(scope, {d: v["prompt"] for d, v in tokens.items()})),
                             series("completion_tokens", "Completion tokens",
                                    per_day(scope, {d: v["completion"] for d, v in tokens.items()}))],
                figures=[figure("model_calls", "Model calls", sum(r["calls"] for r in token_rows), "count"),
                         figure("prompt_tokens", "Prompt tokens", sum(r["prompt"] for r in token_rows), "tokens"),
                         figure("completion_tokens", "Completion tokens", sum(r["completion"] for r in token_rows),
                                "tokens")],
                table={"columns": [
                    {"key": "purpose", "label": "Task", "unit": ""}, {"key": "calls", "label": "Calls", "unit": "count"},
                    {"key": "prompt_tokens", "label": "Prompt tokens", "unit": "tokens"},
                    {"key": "completion_tokens", "label": "Completion tokens", "unit": "tokens"},
                    {"key": "p50_ms", "label": "p50 latency", "unit": "ms"},
                    {"key": "p95_ms", "label": "p95 latency", "unit": "ms"},
                    {"key": "cost", "label": "Estimated cost", "unit": "cost"}],
                    "rows": [{**row, "p50_ms": _round(row["p50_ms"]), "p95_ms": _round(row["p95_ms"])}
                             for row in purposes]}),
        section(key="model_latency", order=41, title="Model latency", unit="ms",
                series_list=[series("p50_ms", "p50", per_day(scope, {d: _round(v["p50"]) for d, v in latency.items()},
                                                              empty=None)),
                             series("p95_ms", "p95", per_day(scope, {d: _round(v["p95"]) for d, v in latency.items()},
                                                              empty=None))],
                figures=[figure("p50_ms", "p50 latency", _round(all_latency["p50"]), "ms"),
                         figure("p95_ms", "p95 latency", _round(all_latency["p95"]), "ms")]),
        section(key="model_cost", order=42, title="Estimated model cost", unit="cost",
                series_list=[series("cost", "Estimated cost", per_day(scope, costs))],
                figures=[figure("cost", "Estimated cost", total_cost, "cost"),
                         figure("unpriced_calls", "Calls without a price", unpriced, "count")],
                note=cost_note),
    ]
