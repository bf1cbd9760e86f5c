"""Topics across meetings: what several meetings talked about, found without labels.

A meeting's transcript windows (already embedded in the knowledge index) are grouped into discussion
units of a few minutes each; units are clustered (agglomerative, cosine, average linkage, cut at a
distance) and every cluster of at least two units is a topic, named by its most distinctive words
(c-TF-IDF of its units' text against the other clusters'). A meeting's weight in a topic is the share
of its units that fell in it, and meetings that share topics are related.

Incremental (the hourly `assistant.topics_refresh`): a new meeting's units join the nearest topic when
close enough; once enough new meetings wait, or a day has passed, the scope is clustered again, and the
new clusters take over the ids of the old topics whose centroids they match, so links stay valid.

Privacy (docs/adr/0019): each visibility scope is clustered on its own: the shared rooms (open and
meeting rooms, which every member reads) together, each private room by itself. A topic therefore never
mixes a private room's words with anyone else's, and it records the rooms it was made from
(`Topic.room_ids`); it is shown only to who may read all of them, and its meetings, notes and items are
filtered by the viewer's rooms again when read.

The pure part (units, clustering, naming, matching) is `topic_clustering`, shared with
`bench/topics.py`, which runs it over the AMI meetings.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter, defaultdict

import numpy as np
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from rooms.models import Room, display_name
from rooms.selectors import rooms_visible_to
from transcription.models import Meeting, MeetingParticipant

from . import embeddings
from .models import (
    EMBEDDING_DIMENSIONS,
    ActionItem,
    KnowledgeChunk,
    MeetingSummary,
    MeetingTopic,
    Topic,
    TopicClustering,
)
from .selectors import action_item_payloads, action_items_visible_to
from .topic_clustering import (
    CLUSTER_DISTANCE,
    MATCH_SIMILARITY,
    MIN_TOPIC_UNITS,
    UNIT_WINDOWS,
    DiscussionUnit,
    centroids_of,
    cluster_units,
    discussion_units,
    match_topics,
    meeting_profiles,
    nearest_topics,
    profile_similarity,
    topic_label,
    topic_terms,
)

logger = logging.getLogger(__name__)

RECLUSTER_AFTER_MEETINGS = 5  # new meetings waiting before the scope is clustered again
RECLUSTER_EVERY = dt.timedelta(hours=24)
SHARED_SCOPE = "shared"


# --- scopes and units in the database ---

def scope_of(room: Room) -> str:
    return f"room:{room.pk}" if room.kind == Room.Kind.PRIVATE else SHARED_SCOPE


def _scope_rooms(scope: str):
    if scope == SHARED_SCOPE:
        return Room.objects.exclude(kind=Room.Kind.PRIVATE)
    return Room.objects.filter(pk=int(scope.split(":", 1)[1]), kind=Room.Kind.PRIVATE)


def _windows_of(meeting_id: int):
    return KnowledgeChunk.objects.filter(source_kind=KnowledgeChunk.SourceKind.TRANSCRIPT,
                                         source_id__startswith=f"window:{meeting_id}:")


def _meetings_with_windows(scope: str):
    """Ended meetings of the scope's rooms that the knowledge index holds windows of."""
    prefix = Concat(Value("window:"), Cast(OuterRef("pk"), CharField()), Value(":"))
    windows = KnowledgeChunk.objects.filter(source_kind=KnowledgeChunk.SourceKind.TRANSCRIPT,
                                            room_id=OuterRef("room_id"), source_id__startswith=prefix)
    return (Meeting.objects.filter(room__in=_scope_rooms(scope), ended_at__isnull=False)
            .filter(Exists(windows)).order_by("started_at", "pk"))


def scopes_with_meetings() -> list[str]:
    rooms = Room.objects.filter(pk__in=Meeting.objects.filter(ended_at__isnull=False).values("room_id"))
    return sorted({scope_of(room) for room in rooms})


def _units_of(meetings: list[Meeting]) -> list[DiscussionUnit]:
    units: list[DiscussionUnit] = []
    for meeting in meetings:
        windows = list(_windows_of(meeting.pk).filter(room_id=meeting.room_id).only("embedding", "text", "locator"))
        windows.sort(key=lambda chunk: int(chunk.locator.get("seq", 0)))
        units += discussion_units(meeting.pk, np.array([w.embedding for w in windows], dtype=np.float32),
                                  [w.text for w in windows])
    return units


def _participant_names(meetings: list[Meeting]) -> set[str]:
    """People's names, so a topic is not named after who spoke in it."""
    names: set[str] = set()
    for row in MeetingParticipant.objects.filter(meeting__in=meetings).select_related("user__profile"):
        names |= set(re.findall(r"[a-z]+", f"{display_name(row.user)} {row.user.username}".lower()))
    return names


# --- services: the writes the hourly job makes ---

def topics_recluster(scope: str) -> TopicClustering:
    """Cluster all of a scope's meetings again; new clusters keep the ids of the old topics they match."""
    meetings = list(_meetings_with_windows(scope).select_related("room"))
    units = _units_of(meetings)
    vectors = np.array([u.vector for u in units], dtype=np.float32).reshape(-1, EMBEDDING_DIMENSIONS)
    labels = cluster_units(vectors)
    terms = topic_terms([u.text for u in units], labels, extra_stop_words=_participant_names(meetings))
    centroids = centroids_of(vectors, labels)
    room_of = {m.pk: m.room_id for m in meetings}
    profiles = meeting_profiles([u.meeting for u in units], labels)
    unit_counts = Counter((u.meeting, int(label)) for u, label in zip(units, labels.tolist(), strict=True))
    with transaction.atomic():
        old = list(Topic.objects.select_for_update().filter(scope=scope).order_by("pk"))
        order = sorted(centroids)
        matched = match_topics(np.array([centroids[c] for c in order]).reshape(-1, EMBEDDING_DIMENSIONS),
                               np.array([t.centroid for t in old], dtype=np.float32).reshape(-1, EMBEDDING_DIMENSIONS))
        run = TopicClustering.objects.create(
            scope=scope, units=len(units), meetings=len(meetings), topics=len(order),
            params={"unit_windows": UNIT_WINDOWS, "distance": CLUSTER_DISTANCE, "min_units": MIN_TOPIC_UNITS,
                    "match_similarity": MATCH_SIMILARITY, "embedder": embeddings.model_id() if units else ""})
        MeetingTopic.objects.filter(topic__scope=scope).delete()
        kept: dict[int, Topic] = {}
        for i, c in enumerate(order):
            fields = {"label": topic_label(terms.get(c, [])), "top_terms": terms.get(c, []),
                      "centroid": centroids[c], "size": int((labels == c).sum()), "clustering": run,
                      "room_ids": sorted({room_of[u.meeting] for u, label in zip(units, labels, strict=True)
                                          if label == c})}
            if i in matched:
                topic = old[matched[i]]
                for name, value in fields.items():
                    setattr(topic, name, value)
                topic.save()
            else:
                topic = Topic.objects.create(scope=scope, **fields)
            kept[c] = topic
        Topic.objects.filter(scope=scope).exclude(pk__in=[t.pk for t in kept.values()]).delete()
        MeetingTopic.objects.bulk_create([
            MeetingTopic(meeting_id=meeting_id, topic=kept[c], weight=round(weight, 4),
                         units=unit_counts[(meeting_id, c)], assigned="clustered")
            for meeting_id, profile in profiles.items() for c, weight in profile.items()])
    logger.info("topics of %s: %d units of %d meetings in %d topics", scope, len(units), len(meetings), len(order))
    return run


def topics_assign(scope: str, meetings: list[Meeting]) -> int:
    """Link new meetings to the scope's existing topics: each unit joins the nearest topic within
    ASSIGN_DISTANCE, whose centroid moves to take it in. Returns the links made."""
    units = _units_of(meetings)
    if not units:
        return 0
    links = 0
    with transaction.atomic():
        topics = list(Topic.objects.select_for_update().filter(scope=scope).order_by("pk"))
        if not topics:
            return 0
        centroids = np.array([t.centroid for t in topics], dtype=np.float32)
        vectors = np.array([u.vector for u in units], dtype=np.float32)
        nearest = nearest_topics(vectors, centroids)
        room_of = {m.pk: m.room_id for m in meetings}
        totals = Counter(u.meeting for u in units)
        joined: dict[tuple[int, int], int] = Counter()
        for unit, index in zip(units, nearest.tolist(), strict=True):
            if index < 0:
                continue
            joined[(unit.meeting, index)] += 1
            topic = topics[index]
            moved = np.asarray(topic.centroid, dtype=np.float32) * topic.size + unit.vector
            topic.centroid = embeddings.l2_normalise(moved[None, :])[0]
            topic.size += 1
            topic.room_ids = sorted(set(topic.room_ids) | {room_of[unit.meeting]})
        for topic in {topics[index] for _, index in joined}:
            topic.save(update_fields=["centroid", "size", "room_ids", "updated_at"])
        for (meeting_id, index), count in joined.items():
            MeetingTopic.objects.update_or_create(
                meeting_id=meeting_id, topic=topics[index],
                defaults={"weight": round(count / totals[meeting_id], 4), "units": count, "assigned": "nearest"})
            links += 1
    return links


def topics_refresh(*, now: dt.datetime | None = None) -> dict:
    """The hourly job: per scope, link new meetings to existing topics, or cluster the scope again when
    RECLUSTER_AFTER_MEETINGS new meetings wait or the last clustering is a day old. Scopes left without
    meetings lose their topics."""
    now = now or timezone.now()
    done: dict[str, str] = {}
    scopes = scopes_with_meetings()
    Topic.objects.exclude(scope__in=scopes).delete()
    for scope in scopes:
        last = TopicClustering.objects.filter(scope=scope).order_by("-ran_at", "-pk").first()
        waiting = _meetings_with_windows(scope).exclude(
            Exists(MeetingTopic.objects.filter(meeting=OuterRef("pk"))))
        if last is not None:
            waiting = waiting.filter(ended_at__gt=last.ran_at)
        waiting = list(waiting.select_related("room"))
        if last is None or len(waiting) >= RECLUSTER_AFTER_MEETINGS or now - last.ran_at >= RECLUSTER_EVERY:
            if last is None and not waiting:
                continue
            run = topics_recluster(scope)
            done[scope] = f"clustered: {run.topics} topics over {run.meetings} meetings"
        elif waiting:
            done[scope] = f"assigned: {topics_assign(scope, waiting)} links for {len(waiting)} meetings"
    return done


# --- selectors: what a person may see ---

def _readable_room_ids(user) -> list[int]:
    return list(rooms_visible_to(user).values_list("pk", flat=True))


def topics_visible_to(user):
    """Topics made only from rooms `user` may read (all of them: one unreadable room hides the topic)."""
    return Topic.objects.filter(room_ids__contained_by=_readable_room_ids(user))


def topic_for_user(user, topic_id: int) -> Topic | None:
    return topics_visible_to(user).filter(pk=topic_id).first()


def topics_overview(user) -> list[dict]:
    """The topics `user` may see, with how many of their meetings `user` may read, largest first."""
    readable = _readable_room_ids(user)
    topics = list(topics_visible_to(user).order_by("-size", "pk"))
    counts = Counter(MeetingTopic.objects.filter(topic__in=topics, meeting__room_id__in=readable)
                     .values_list("topic_id", flat=True))
    return [{"topic": t, "meetings": counts.get(t.pk, 0)} for t in topics if counts.get(t.pk)]


def topic_detail(user, topic: Topic, *, experts: bool = True) -> dict:
    """A topic's meetings (readable ones, most about it first), the decisions and open questions of their
    final notes, their open action items, and who knows about it."""
    readable = _readable_room_ids(user)
    links = list(MeetingTopic.objects.filter(topic=topic, meeting__room_id__in=readable)
                 .select_related("meeting__room").order_by("-weight", "-meeting__started_at"))
    meetings = [link.meeting for link in links]
    finals = {s.meeting_id: s for s in MeetingSummary.objects.filter(meeting__in=meetings, kind=MeetingSummary.Kind.FINAL)}
    decisions, questions = [], []
    for meeting in meetings:
        summary = finals.get(meeting.pk)
        if summary is not None:
            decisions += [{"text": str(d), "meeting": meeting} for d in summary.decisions]
            questions += [{"text": str(q), "meeting": meeting} for q in summary.open_questions]
    items = (action_items_visible_to(user).filter(meeting__in=meetings)
             .exclude(status=ActionItem.Status.REJECTED).order_by("-created_at"))
    return {
        "topic": topic,
        "meetings": [{"meeting": link.meeting, "weight": link.weight} for link in links],
        "decisions": decisions, "open_questions": questions,
        "action_items": action_item_payloads(items[:50]),
        "experts": topic_experts(user, topic, sorted({m.room_id for m in meetings})) if experts and meetings else [],
    }


def topic_experts(user, topic: Topic, room_ids: list[int]) -> list[dict]:
    """Who knows about the topic (assistant/experts.py), asked with its top terms, in its readable rooms."""
    from .experts import experts_find

    found = experts_find(user=user, query=" ".join(topic.top_terms[:5]) or topic.label, room_ids=room_ids, limit=5)
    return [{"name": display_name(e.person), "score": e.score, "evidence": e.evidence_count,
             "reasons": e.reasons[:2]} for e in found]


def related_meetings(user, meeting: Meeting, *, limit: int = 5) -> list[dict]:
    """Meetings `user` may read that share topics with `meeting`, most alike first (cosine of their
    topic profiles), with the topics they share. Only topics `user` may see count."""
    readable = _readable_room_ids(user)
    visible = topics_visible_to(user)
    mine = {link.topic_id: link.weight for link in MeetingTopic.objects.filter(meeting=meeting, topic__in=visible)}
    if not mine:
        return []
    others = (MeetingTopic.objects.filter(meeting__room_id__in=readable, topic__in=visible)
              .filter(meeting__in=MeetingTopic.objects.filter(topic_id__in=mine).values("meeting_id"))
              .exclude(meeting=meeting).select_related("meeting__room", "topic"))
    profiles: dict[int, dict[int, float]] = defaultdict(dict)
    found: dict[int, Meeting] = {}
    labels: dict[int, str] = {}
    for link in others:
        profiles[link.meeting_id][link.topic_id] = link.weight
        found[link.meeting_id] = link.meeting
        labels[link.topic_id] = link.topic.label
    ranked = sorted(profiles, key=lambda m: (-profile_similarity(mine, profiles[m]), -found[m].started_at.timestamp()))
    return [{"meeting": found[m], "similarity": round(profile_similarity(mine, profiles[m]), 4),
             "topics": [{"id": t, "label": labels[t]} for t in sorted(profiles[m], key=lambda t: -mine.get(t, 0.0))
                        if t in mine]}
            for m in ranked[:limit]]
