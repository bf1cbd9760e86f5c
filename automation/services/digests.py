"""Daily digests: build (or refresh) each member's digest, send each at most once."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from .. import selectors
from ..delivery import member_notify
from ..models import Digest
from .audit import _audit

DIGEST_ACTOR = "schedule:digests"


def _digest_window_start(user, date: dt.date, now: dt.datetime) -> dt.datetime:
    """Since the previous digest was made (or a day back for someone's first)."""
    previous = Digest.objects.filter(user=user, date__lt=date).order_by("-date").first()
    return previous.created_at if previous is not None else now - dt.timedelta(days=1)


def digest_build(*, user, date: dt.date, now: dt.datetime | None = None) -> Digest | None:
    """Build (or refresh, until it is sent) a member's digest for `date`; None when there is nothing to say."""
    now = now or timezone.now()
    with transaction.atomic():
        existing = Digest.objects.select_for_update().filter(user=user, date=date).first()
        if existing is not None and existing.sent_at is not None:
            return existing
        content = selectors.digest_content_for(user, date=date, since=_digest_window_start(user, date, now), now=now)
        if selectors.digest_is_empty(content) and existing is None:
            return None
        text = selectors.digest_text(user, content)
        if existing is None:
            return Digest.objects.create(user=user, date=date, content=content, text=text)
        existing.content, existing.text = content, text
        existing.save(update_fields=["content", "text"])
        return existing


def digests_build(date: dt.date, *, now: dt.datetime | None = None) -> list[Digest]:
    """Every active member's digest for `date` (members with nothing to read get none)."""
    now = now or timezone.now()
    digests = []
    for user in selectors.active_members():
        digest = digest_build(user=user, date=date, now=now)
        if digest is not None:
            digests.append(digest)
    return digests


def digest_send(digest: Digest, *, now: dt.datetime | None = None) -> bool:
    """Send a digest at most once: a conditional UPDATE claims it; False if already sent."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = Digest.objects.filter(pk=digest.pk, sent_at__isnull=True).update(sent_at=now)
        if not claimed:
            return False
        digest.sent_at = now
        _audit(subject_type="digest", subject_id=digest.pk, action="sent", actor=DIGEST_ACTOR,
               reason=f"daily digest for {digest.date.isoformat()}", before={"sent_at": None},
               after={"sent_at": now.isoformat()})
        counts = {key: len(digest.content.get(key, [])) for key in ("due", "assigned", "missed")}
        member_notify(
            user_id=digest.user_id, kind="digest.ready", title=f"Your digest for {digest.date:%a %d %b}",
            body=digest.text, data={"digest": digest.pk, "date": digest.date.isoformat(), **counts},
            idempotency_key=f"digest:{digest.pk}", url="/tasks/",
        )
    return True


def digests_send_daily(date: dt.date | None = None, *, now: dt.datetime | None = None) -> int:
    """Build and send today's digests (the daily beat entry); safe to run twice."""
    now = now or timezone.now()
    date = date or timezone.localdate(now)
    return sum(digest_send(d, now=now) for d in digests_build(date, now=now) if d.sent_at is None)
