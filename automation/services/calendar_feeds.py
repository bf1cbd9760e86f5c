"""Members' calendar feeds (uploaded ICS or an admin's URL) imported as free/busy intervals."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from .. import calendars
from ..models import BusyInterval, CalendarFeed

logger = logging.getLogger(__name__)


def calendar_feed_add(*, user, actor, name: str = "", url: str = "", content: str = "") -> CalendarFeed:
    """Add a member's calendar: uploaded ICS text (the member or an admin), or an http(s) URL that
    only an admin may set up (the server fetches it). Only admins set up other members' calendars.
    Uploaded text is imported at once."""
    if getattr(actor, "pk", None) != user.pk and not getattr(actor, "is_staff", False):
        raise PermissionDenied("only admins set up other members' calendars")
    url, content = (url or "").strip(), content or ""
    if bool(url) == bool(content):
        raise ValidationError("give either a feed URL or the ICS text")
    if url:
        if not getattr(actor, "is_staff", False):
            raise ValidationError("only an admin can set up a calendar feed URL")
        if not url.lower().startswith(("http://", "https://")):
            raise ValidationError("a calendar feed URL must be http or https")
    else:
        if len(content.encode()) > settings.OFFICE_CALENDAR_MAX_BYTES:
            raise ValidationError("the calendar file is too large")
        try:
            calendars.parse(content)  # reject a broken file before storing it
        except calendars.CalendarError as exc:
            raise ValidationError(str(exc)) from exc
    feed = CalendarFeed.objects.create(
        user=user, name=(name or "")[:120], url=url, content=content,
        configured_by=actor if getattr(actor, "pk", None) else None,
    )
    if content:
        calendar_feed_import(feed)
    return feed


def calendar_feed_import(feed: CalendarFeed, *, now: dt.datetime | None = None) -> int:
    """Replace the feed's busy intervals with those in its calendar (from now-1 day to the horizon).
    A fetch or parse failure is recorded on the feed and raised; the old intervals stay."""
    now = now or timezone.now()
    try:
        text = feed.content if not feed.url else calendars.fetch(feed.url)
        intervals = calendars.busy_intervals(
            text, start=now - dt.timedelta(days=1), end=now + dt.timedelta(days=settings.OFFICE_CALENDAR_HORIZON_DAYS)
        )
    except calendars.CalendarError as exc:
        CalendarFeed.objects.filter(pk=feed.pk).update(last_error=str(exc)[:1000])
        raise ValidationError(f"calendar could not be imported: {exc}") from exc
    with transaction.atomic():
        BusyInterval.objects.filter(feed=feed).delete()
        BusyInterval.objects.bulk_create(
            BusyInterval(user_id=feed.user_id, feed=feed, start=lo, end=hi, source=f"feed:{feed.pk}:{uid}"[:255])
            for lo, hi, uid in intervals
        )
        CalendarFeed.objects.filter(pk=feed.pk).update(last_imported_at=now, last_error="")
    return len(intervals)


def calendar_import_all(*, now: dt.datetime | None = None) -> dict:
    """Re-import every URL feed (periodic); one broken feed does not stop the others."""
    result = {"imported": 0, "failed": 0}
    for feed in CalendarFeed.objects.exclude(url="").order_by("id"):
        try:
            calendar_feed_import(feed, now=now)
            result["imported"] += 1
        except ValidationError:
            logger.warning("calendar feed %s could not be imported", feed.pk)
            result["failed"] += 1
    return result
