"""The meetings archive in the browser: a search shows highlighted snippets that open the exact turn."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant import indexing
from tests.assistant_fixtures import PLANNING, record_meeting
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_search_in_the_archive_opens_the_turn_that_said_it(office, people, live_office, sign_in):
    # given a recorded meeting in Atlas, indexed as the worker would
    meeting = record_meeting(office["atlas"], people, PLANNING, start=dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC))
    indexing.index_segments(list(meeting.segments.values_list("pk", flat=True)))
    seq = next(i for i, (_, text) in enumerate(PLANNING, start=1) if "older Android phones" in text)

    # when bob opens the archive and searches
    bob = sign_in("bob", PASSWORD)
    bob.goto(f"{live_office}/meetings/")
    assert bob.locator(f'#meeting-table tr[data-meeting-id="{meeting.pk}"]').count() == 1
    bob.fill("#archive-q", "Android crash")
    bob.press("#archive-q", "Enter")

    # then the turn is found with the words marked, and its link opens it in the transcript
    hit = bob.locator("#hits-transcript li").first
    hit.wait_for()
    assert hit.locator("mark").all_inner_texts()[:2] == ["crash", "Android"]
    bob.screenshot(path=str(ARTIFACTS / "meetings-archive-search.png"), full_page=True)
    hit.locator("a").click()
    bob.wait_for_url(f"**/meetings/{meeting.pk}/#seg-{seq}")
    assert bob.url.endswith(f"/meetings/{meeting.pk}/#seg-{seq}")
