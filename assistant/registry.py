"""The ranker registry: which trained version of each turn ranker the product uses, and how a version
gets there (candidate → shadow → current → retired).

Services here write `AssistantVersion` rows (register, shadow, promote with a guard, roll back) and
store shadow runs; selectors read the current version, how a ranker agrees with people's decisions,
the labelled turns those decisions give the next training run, and weekly drift signals. See
docs/adr/0011-rankers-are-versioned-artefacts-promoted-through-a-registry.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from rooms.selectors import display_name
from transcription.models import Meeting, MeetingParticipant, TranscriptSegment

from . import candidate_ranker, embeddings
from .candidate_ranker import current_version
from .meeting_notes import SHADOW_KINDS, shadow_propose  # noqa: F401 (the registry runs shadows; the notes own them)
from .models import ActionItem, ActionItemDecision, AssistantVersion

logger = logging.getLogger(__name__)

Stage = AssistantVersion.Stage

GUARD_FIGURES = ("turn_f1", "mean_average_precision")
GUARD_TOLERANCE = 0.005  # the cards round figures to 3 decimals; a difference this small is noise
DECISION_WINDOW_DAYS = 30
# Only action items have stored proposals to compare; a decision ranker's choices are not stored rows.


# --- selectors ---

def card_figures(card: dict) -> dict:
    """What the admin page and the guard read from a card (None where the card has no figure)."""
    cv = card.get("cross_validation") or {}
    return {
        "turn_f1": cv.get("turn_f1"), "turn_precision": cv.get("turn_precision"),
        "turn_recall": cv.get("turn_recall"), "mean_average_precision": cv.get("mean_average_precision"),
        "training_rows": card.get("training_rows"), "extra_labels": card.get("extra_labels"),
        "training_data_sha256": card.get("training_data_sha256", ""),
    }


def versions_overview() -> list[dict]:
    """Per kind, its registered versions (newest first) with their card figures."""
    rows = list(AssistantVersion.objects.select_related("promoted_by__profile"))
    return [
        {"kind": kind, "label": label, "current": current_version(kind),
         "shadow_allowed": kind in SHADOW_KINDS,
         "has_retired": any(r.kind == kind and r.stage == Stage.RETIRED for r in rows),
         "versions": [{"row": r, "figures": card_figures(r.card),
                       "promoted_by": display_name(r.promoted_by) if r.promoted_by else ""}
                      for r in rows if r.kind == kind]}
        for kind, label in AssistantVersion.Kind.choices
    ]


def decided_items(*, days: int | None = DECISION_WINDOW_DAYS):
    """Shown action items people approved, edited or rejected (in the last `days`; None: ever)."""
    decisions = ActionItemDecision.objects.all()
    if days is not None:
        decisions = decisions.filter(at__gte=timezone.now() - dt.timedelta(days=days))
    return ActionItem.objects.filter(shadow=False, meeting__isnull=False,
                                     pk__in=decisions.values("item_id")).order_by("id")


def item_label(item: ActionItem) -> int:
    """1: people kept it (approved, or edited and still open); 0: they rejected it."""
    return 0 if item.status == ActionItem.Status.REJECTED else 1


@dataclass
class MeetingTurns:
    """A meeting's turns as a ranker sees them, embedded once for every ranker that scores them."""

    segment_ids: list[int]
    turns: list[candidate_ranker.Turn]
    names: list[str]
    vectors: np.ndarray


def meeting_turns(meeting_id: int) -> MeetingTurns:
    """Speaker = display name, names = the participants' display names (as the bench trains them)."""
    segments = list(TranscriptSegment.objects.filter(meeting_id=meeting_id)
                    .select_related("speaker__profile").order_by("seq"))
    participants = MeetingParticipant.objects.filter(meeting_id=meeting_id).select_related("user__profile")
    turns = [candidate_ranker.Turn(speaker=display_name(s.speaker), text=s.text) for s in segments]
    vectors = (embeddings.embed([t.clean or "." for t in turns]) if turns
               else np.zeros((0, embeddings.DIMENSIONS), dtype=np.float32))
    return MeetingTurns(segment_ids=[s.pk for s in segments], turns=turns,
                        names=[display_name(p.user) for p in participants], vectors=vectors)


def decision_agreement(ranker: candidate_ranker.Ranker, items, *,
                       turns_by_meeting: dict[int, MeetingTurns] | None = None) -> dict:
    """How a ranker's choice agrees with people's decisions on `items`: the approved (or edited) items'
    turns it selects minus the rejected items' turns it selects, over those items' meetings."""
    items = list(items)
    kept = {int(s) for i in items if item_label(i) == 1 for s in i.source_segment_ids}
    rejected = {int(s) for i in items if item_label(i) == 0 for s in i.source_segment_ids}
    turns_by_meeting = turns_by_meeting if turns_by_meeting is not None else {}
    selected: set[int] = set()
    for meeting_id in sorted({i.meeting_id for i in items}):
        if meeting_id not in turns_by_meeting:
            turns_by_meeting[meeting_id] = meeting_turns(meeting_id)
        mt = turns_by_meeting[meeting_id]
        if mt.turns:
            chosen = ranker.select(ranker.score(mt.turns, mt.names, mt.vectors))
            selected |= {mt.segment_ids[i] for i in chosen}
    approved_selected, rejected_selected = len(selected & kept), len(selected & rejected)
    return {"approved_turns": len(kept), "rejected_turns": len(rejected), "approved_selected": approved_selected,
            "rejected_selected": rejected_selected, "agreement": approved_selected - rejected_selected}


def promotion_problems(candidate: candidate_ranker.Ranker, current: candidate_ranker.Ranker, items) -> list[str]:
    """Why `candidate` may not replace `current`: each figure where it is worse (empty: it may)."""
    problems = []
    mine, theirs = card_figures(candidate.card), card_figures(current.card)
    for name in GUARD_FIGURES:
        if mine[name] is None:
            problems.append(f"{candidate.version}'s card has no cross-validated {name}")
        elif theirs[name] is not None and mine[name] < theirs[name] - GUARD_TOLERANCE:
            problems.append(f"cross-validated {name} {mine[name]:.3f} is worse than current "
                            f"{current.version}'s {theirs[name]:.3f}")
    items = list(items)
    if items:
        shared: dict[int, MeetingTurns] = {}
        a = decision_agreement(candidate, items, turns_by_meeting=shared)
        b = decision_agreement(current, items, turns_by_meeting=shared)
        if a["agreement"] < b["agreement"]:
            problems.append(
                f"decision agreement over the last {DECISION_WINDOW_DAYS} days is worse: {candidate.version} selects "
                f"{a['approved_selected']} approved minus {a['rejected_selected']} rejected turns = {a['agreement']}, "
                f"current {current.version} {b['approved_selected']} minus {b['rejected_selected']} = {b['agreement']}")
    return problems


# --- services ---

def _row(kind: str, version: str) -> AssistantVersion:
    row = AssistantVersion.objects.filter(kind=kind, version=version).first()
    if row is None:
        raise ValueError(f"{kind} ranker {version} is not registered")
    return row


def _audit(actor, what: str) -> None:
    who = actor.get_username() if actor is not None else "system"
    transaction.on_commit(lambda: logger.info("ranker registry: %s %s", who, what))


def version_register(kind: str, version: str) -> AssistantVersion:
    """Record a saved ranker (its card read from assistant/rankers/) as a candidate; registering again
    changes nothing. A version is immutable: a different artefact under a known version is refused."""
    ranker = candidate_ranker.load(kind, version)
    row, created = AssistantVersion.objects.get_or_create(kind=kind, version=version, defaults={"card": ranker.card})
    if not created and row.card.get("artefact_sha256") != ranker.card.get("artefact_sha256"):
        raise ValueError(f"{kind} ranker {version} on disk differs from the registered one: train a new version")
    if created:
        _audit(None, f"registered {kind} {version}")
    return row


def versions_register_installed() -> list[AssistantVersion]:
    """Register every ranker in assistant/rankers/, and make `OFFICE_RANKER_VERSION` current for a kind
    with no current version yet (it is what the product used before the registry)."""
    rows = []
    for kind in candidate_ranker.KINDS:
        for version in candidate_ranker.available_versions(kind):
            try:
                rows.append(version_register(kind, version))
            except (LookupError, ValueError) as exc:
                logger.warning("ranker %s %s not registered: %s", kind, version, exc)
        with transaction.atomic():
            has_current = AssistantVersion.objects.filter(kind=kind, stage=Stage.CURRENT).exists()
            updated = 0 if has_current else AssistantVersion.objects.filter(
                kind=kind, version=settings.OFFICE_RANKER_VERSION).update(stage=Stage.CURRENT, promoted_at=timezone.now())
            if updated:
                _audit(None, f"made {kind} {settings.OFFICE_RANKER_VERSION} current (OFFICE_RANKER_VERSION)")
    return rows


def version_set_shadow(kind: str, version: str, actor) -> AssistantVersion:
    """Run `version` beside the current ranker at the end of each meeting; its proposals are stored, never
    shown. One shadow per kind: the previous one goes back to candidate."""
    if kind not in SHADOW_KINDS:
        raise ValueError(f"shadow runs exist for {', '.join(SHADOW_KINDS)} only: {kind} proposals are not stored")
    row = _row(kind, version)
    if row.stage == Stage.CURRENT:
        raise ValueError(f"{kind} {version} is current: it cannot shadow itself")
    candidate_ranker.load(kind, version)  # its artefact must load before meetings depend on it
    with transaction.atomic():
        AssistantVersion.objects.filter(kind=kind, stage=Stage.SHADOW).exclude(pk=row.pk).update(stage=Stage.CANDIDATE)
        AssistantVersion.objects.filter(pk=row.pk).update(stage=Stage.SHADOW)
        _audit(actor, f"set {kind} {version} as shadow")
    row.refresh_from_db()
    return row


def version_promote(kind: str, version: str, actor, *, force: bool = False) -> AssistantVersion:
    """Make `version` the current ranker of `kind`, if it is not worse than the current one: on its card's
    cross-validated figures (turn F1, mean AP, within `GUARD_TOLERANCE`) and on people's decisions of the
    last 30 days. Raises ValueError naming what is worse; `force` skips the guard (not the artefact check)."""
    row = _row(kind, version)
    if row.stage == Stage.CURRENT:
        raise ValueError(f"{kind} {version} is already current")
    candidate = candidate_ranker.load(kind, version)
    was = current_version(kind)
    if not force:
        # Scoring the recent meetings takes a while: done before the transaction, re-checked inside it.
        problems = promotion_problems(candidate, candidate_ranker.load(kind, was), decided_items())
        if problems:
            raise ValueError(f"{kind} {version} was not promoted: " + "; ".join(problems))
    now = timezone.now()
    with transaction.atomic():
        list(AssistantVersion.objects.select_for_update().filter(kind=kind))
        if current_version(kind) != was:
            raise ValueError(f"the current {kind} ranker changed meanwhile: promote again")
        AssistantVersion.objects.filter(kind=kind, stage=Stage.CURRENT).update(stage=Stage.RETIRED, retired_at=now)
        AssistantVersion.objects.filter(pk=row.pk).update(stage=Stage.CURRENT, promoted_at=now, promoted_by=actor,
                                                          retired_at=None)
        _audit(actor, f"promoted {kind} {version} (was {was}){' with force' if force else ''}")
    row.refresh_from_db()
    return row


def version_rollback(kind: str, actor) -> AssistantVersion:
    """The most recently retired version becomes current again (no guard: this is the way back)."""
    with transaction.atomic():
        rows = list(AssistantVersion.objects.select_for_update().filter(kind=kind))
        retired = sorted((r for r in rows if r.stage == Stage.RETIRED and r.retired_at is not None),
                         key=lambda r: (r.retired_at, r.pk))
        if not retired:
            raise ValueError(f"no retired {kind} version to roll back to")
        previous = retired[-1]
        candidate_ranker.load(kind, previous.version)  # its artefact must still be there
        now = timezone.now()
        was = current_version(kind)
        AssistantVersion.objects.filter(kind=kind, stage=Stage.CURRENT).update(stage=Stage.RETIRED, retired_at=now)
        AssistantVersion.objects.filter(pk=previous.pk).update(stage=Stage.CURRENT, promoted_at=now,
                                                               promoted_by=actor, retired_at=None)
        _audit(actor, f"rolled {kind} back to {previous.version} (was {was})")
    previous.refresh_from_db()
    return previous


# --- labels for the next training run ---

def training_labels_from_decisions(kind: str = "action_items") -> dict:
    """The turns people labelled by deciding on proposals, in bench/train_ranker.py's --extra-labels shape:
    {kind: [{"features": [...], "label": 0|1, "item": id, "segment": id}]}. Approve or edit: 1 for the
    item's source turns; reject: 0. Only action items are decided by people today."""
    rows: list[dict] = []
    if kind == "action_items":
        items = list(decided_items(days=None))
        features_of: dict[int, tuple[dict[int, int], np.ndarray]] = {}
        for item in items:
            if item.meeting_id not in features_of:
                mt = meeting_turns(item.meeting_id)
                x = candidate_ranker.features(mt.turns, mt.names, mt.vectors) if mt.turns else np.zeros((0, 0))
                features_of[item.meeting_id] = ({sid: i for i, sid in enumerate(mt.segment_ids)}, x)
            index, x = features_of[item.meeting_id]
            for sid in item.source_segment_ids:
                if int(sid) in index:
                    rows.append({"features": [float(v) for v in x[index[int(sid)]]], "label": item_label(item),
                                 "item": item.pk, "segment": int(sid)})
    return {kind: rows}


def training_set_hash(labels: dict) -> str:
    """sha256 over the labelled rows (features as float32, labels as int8, kinds in order), the way
    bench/train_ranker.py hashes its training data."""
    digest = hashlib.sha256()
    for kind in sorted(labels):
        digest.update(kind.encode())
        for row in labels[kind]:
            digest.update(np.asarray(row["features"], dtype=np.float32).tobytes())
            digest.update(np.asarray([int(row["label"])], dtype=np.int8).tobytes())
    return digest.hexdigest()


# --- drift ---

def _week_of(moment: dt.datetime) -> str:
    year, week, _ = timezone.localtime(moment).isocalendar()
    return f"{year}-W{week:02d}"


def drift_by_week(weeks: int = 8) -> list[dict]:
    """Per ISO week, newest first: how often people overrode proposals ((edited + rejected) / decided),
    proposals per finished meeting (shown items only), and the share of answers "not found" (None: no
    stored record says whether an answer was found)."""
    now = timezone.now()
    labels = [_week_of(now - dt.timedelta(weeks=n)) for n in range(weeks)]
    start = timezone.localtime(now - dt.timedelta(weeks=weeks - 1))
    start = (start - dt.timedelta(days=start.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    decided: dict[str, dict[int, bool]] = {w: {} for w in labels}
    for item_id, action, at in (ActionItemDecision.objects.filter(at__gte=start, item__shadow=False)
                                .values_list("item_id", "action", "at")):
        week = decided.get(_week_of(at))
        if week is not None:
            week[item_id] = week.get(item_id, False) or action in ("edit", "reject")
    meetings: dict[str, int] = dict.fromkeys(labels, 0)
    proposals: dict[str, int] = dict.fromkeys(labels, 0)
    ended = dict(Meeting.objects.filter(ended_at__gte=start, last_seq__gt=0).values_list("pk", "ended_at"))
    for ended_at in ended.values():
        if _week_of(ended_at) in meetings:
            meetings[_week_of(ended_at)] += 1
    for meeting_id in ActionItem.objects.filter(shadow=False, meeting_id__in=list(ended)).values_list("meeting_id",
                                                                                                       flat=True):
        if _week_of(ended[meeting_id]) in proposals:
            proposals[_week_of(ended[meeting_id])] += 1
    return [
        {"week": w, "decided": len(decided[w]), "overridden": sum(decided[w].values()),
         "override_rate": (sum(decided[w].values()) / len(decided[w])) if decided[w] else None,
         "meetings": meetings[w], "proposals": proposals[w],
         "proposals_per_meeting": (proposals[w] / meetings[w]) if meetings[w] else None,
         "not_found_share": None}
        for w in labels
    ]
