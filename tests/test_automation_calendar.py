"""Free/busy from ICS calendars and owner suggestions that explain themselves."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from automation import selectors, services
from automation.models import BusyInterval, CalendarFeed

CALENDARS = Path(__file__).parent / "fixtures" / "calendars"
UTC = dt.UTC
# Thursday 27 Nov 2025, 09:00 UTC; the work is due Friday 28 Nov.
NOW = dt.datetime(2025, 11, 27, 9, 0, tzinfo=UTC)
FRIDAY = dt.date(2025, 11, 28)


def ics(name: str) -> str:
    return (CALENDARS / name).read_text()


def import_calendar(user, name: str) -> CalendarFeed:
    feed = services.calendar_feed_add(user=user, actor=user, name=name, content=ics(name))
    services.calendar_feed_import(feed, now=NOW)
    return feed


def busy(user) -> list[tuple[str, str]]:
    return [(b.start.strftime("%a %H:%M"), b.end.strftime("%a %H:%M"))
            for b in BusyInterval.objects.filter(user=user).order_by("start")]


@pytest.mark.django_db
def test_ics_import_expands_recurrence_time_zones_and_skips_free_or_cancelled(people):
    # when
    import_calendar(people["alice"], "alice.ics")
    import_calendar(people["bob"], "bob.ics")
    import_calendar(people["carol"], "carol.ics")
    import_calendar(people["dana"], "dana-freebusy.ics")

    # then: alice's daily focus block from Wed (now-1 day), cancelled lunch left out
    assert busy(people["alice"])[:3] == [("Wed 09:00", "Wed 15:00"), ("Thu 09:00", "Thu 15:00"),
                                         ("Fri 09:00", "Fri 15:00")]
    # bob: the Berlin 10:00 review is 09:00 UTC; the transparent reading block is free time
    assert busy(people["bob"]) == [("Thu 09:00", "Thu 17:00"), ("Fri 09:00", "Fri 11:00")]
    # carol: a two-day all-day offsite
    assert busy(people["carol"]) == [("Thu 00:00", "Sat 00:00")]
    # dana: VFREEBUSY busy periods (one given as a duration), FREE periods ignored
    assert busy(people["dana"]) == [("Thu 09:00", "Thu 12:00"), ("Fri 09:00", "Fri 10:00")]


@pytest.mark.django_db
def test_recurrence_exception_dates_are_free(people):
    # given alice's focus block skips Tuesday 25 Nov
    feed = services.calendar_feed_add(user=people["alice"], actor=people["alice"], content=ics("alice.ics"))

    # when imported as of Monday
    services.calendar_feed_import(feed, now=dt.datetime(2025, 11, 24, 8, 0, tzinfo=UTC))

    # then
    days = [b.start.date().isoformat() for b in BusyInterval.objects.filter(user=people["alice"])]
    assert "2025-11-24" in days and "2025-11-26" in days
    assert "2025-11-25" not in days


@pytest.mark.django_db
def test_reimport_replaces_intervals_and_broken_file_keeps_old_ones(people):
    feed = import_calendar(people["bob"], "bob.ics")
    before = busy(people["bob"])

    # when imported again: no duplicates
    services.calendar_feed_import(feed, now=NOW)
    assert busy(people["bob"]) == before

    # when the stored text is broken: an error is recorded and the old intervals stay
    CalendarFeed.objects.filter(pk=feed.pk).update(content="BEGIN:VCALENDAR\nthis is not ics")
    feed.refresh_from_db()
    with pytest.raises(ValidationError):
        services.calendar_feed_import(feed, now=NOW)
    feed.refresh_from_db()
    assert feed.last_error
    assert busy(people["bob"]) == before


@pytest.mark.django_db
def test_uploading_broken_ics_is_refused(people):
    with pytest.raises(ValidationError):
        services.calendar_feed_add(user=people["bob"], actor=people["bob"], content="hello")
    assert not CalendarFeed.objects.exists()


@pytest.mark.django_db
def test_owner_suggest_picks_most_free_hours_and_says_why(people):
    # given
    for name in ("alice", "bob", "carol"):
        import_calendar(people[name], f"{name}.ics")

    # when
    owner, reason = selectors.owner_suggest(
        candidates=[people["alice"], people["bob"], people["carol"]], due_date=FRIDAY, now=NOW
    )

    # then: Thu+Fri 09-17 is 16 h; bob is busy 10 h of it, alice 12 h, carol all of it
    assert owner == people["bob"]
    assert reason == (
        "Bob Baker is free 6 h before Fri 28 Nov; Alice Archer is free 4 h; "
        "Carol Chen has no free time before Fri 28 Nov"
    )


@pytest.mark.django_db
def test_owner_suggest_on_the_due_day_and_when_nobody_is_free(people):
    import_calendar(people["carol"], "carol.ics")
    friday_morning = dt.datetime(2025, 11, 28, 9, 0, tzinfo=UTC)

    # when only carol is asked, on her offsite day
    owner, reason = selectors.owner_suggest(candidates=[people["carol"]], due_date=FRIDAY, now=friday_morning)

    # then nobody is suggested, and the reason says why
    assert owner is None
    assert reason == "Carol Chen is busy all day"


@pytest.mark.django_db
def test_owner_suggest_ties_go_to_fewer_open_tasks_and_past_due_gives_none(people):
    # given neither has a calendar; bob already owns an open task
    services.task_create(title="Existing work", owner=people["bob"], actor=people["dana"])

    # when
    owner, _ = selectors.owner_suggest(candidates=[people["bob"], people["carol"]], due_date=FRIDAY, now=NOW)
    past, past_reason = selectors.owner_suggest(candidates=[people["bob"]], due_date=dt.date(2025, 11, 20), now=NOW)

    # then
    assert owner == people["carol"]
    assert past is None and "has passed" in past_reason
    assert selectors.owner_suggest(candidates=[], due_date=FRIDAY, now=NOW) == (None, "no candidates to choose from")


@pytest.mark.django_db
def test_feed_urls_only_from_admins_and_fetched_from_a_local_server(people):
    # given a calendar served over http on 127.0.0.1
    body = ics("bob.ics").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/bob.ics"
    try:
        # when bob tries to set up a URL feed himself: refused
        with pytest.raises(ValidationError, match="only an admin"):
            services.calendar_feed_add(user=people["bob"], actor=people["bob"], url=url)
        # when the admin does, and the periodic import runs
        services.calendar_feed_add(user=people["bob"], actor=people["dana"], url=url)
        result = services.calendar_import_all(now=NOW)
    finally:
        server.shutdown()
        server.server_close()

    # then
    assert result == {"imported": 1, "failed": 0}
    assert busy(people["bob"]) == [("Thu 09:00", "Thu 17:00"), ("Fri 09:00", "Fri 11:00")]


@pytest.mark.django_db
def test_unreachable_feed_is_recorded_not_fatal(people):
    feed = services.calendar_feed_add(user=people["bob"], actor=people["dana"], url="http://127.0.0.1:9/none.ics")

    result = services.calendar_import_all(now=NOW)

    feed.refresh_from_db()
    assert result == {"imported": 0, "failed": 1}
    assert "could not fetch" in feed.last_error
