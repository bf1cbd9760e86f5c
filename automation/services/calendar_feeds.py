"""Members' calendar feeds (uploaded ICS or an admin's URL) imported as free/busy intervals."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlsplit

import pybreaker
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from .. import calendars
from ..models import BusyInterval, CalendarFeed
from ..workflows.breakers import breaker_for, retry_after_seconds
from ..workflows.errors import PermanentError, TransientError

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
        text = feed.content if not feed.url else _fetch_through_breaker(feed)
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


def calendar_feed_breaker(feed_id: int) -> pybreaker.CircuitBreaker:
    """One breaker per URL feed: a failing connector check opens it, so the import keeps the old
    intervals without calling a server that is known to be down (docs/adr/0017)."""
    return breaker_for(f"calendar_feed.{feed_id}")


def _fetch_through_breaker(feed: CalendarFeed) -> str:
    breaker = calendar_feed_breaker(feed.pk)
    try:
        return breaker.call(calendars.fetch, feed.url)
    except pybreaker.CircuitBreakerError:
        raise calendars.CalendarError(
            f"the feed is unavailable (circuit open); next try in {retry_after_seconds(breaker):.0f}s") from None


def calendar_feeds_checked() -> list[tuple[int, str]]:
    """The feeds a connector check fetches (those with a URL): (id, what a person recognises). The
    label is the feed's name and host, never the URL, whose path often holds a private token."""
    return [(pk, f"{name or 'calendar'} ({urlsplit(url).hostname or '?'})")
            for pk, name, url in CalendarFeed.objects.exclude(url="").order_by("id").values_list("pk", "name", "url")]


def calendar_feed_check(feed_id: int) -> str:
    """The connector check of a URL feed: the import's own fetch, conditional on the last import (a 304
    is a pass), and a parse of what came back; nothing is stored. A failed fetch is an outage
    (TransientError), a file that is not iCalendar is not (PermanentError)."""
    feed = CalendarFeed.objects.exclude(url="").filter(pk=feed_id).first()
    if feed is None:
        raise PermanentError(f"calendar feed {feed_id!r} is gone or has no URL")
    try:
        text = calendars.fetch(feed.url, if_modified_since=feed.last_imported_at)
    except calendars.CalendarError as exc:
        raise TransientError(str(exc)) from exc
    if text is None:
        return "not modified since the last import"
    try:
        calendars.parse(text)
    except calendars.CalendarError as exc:
        raise PermanentError(str(exc)) from exc
    return f"{len(text.encode())} bytes of iCalendar"
