"""Topics across meetings (assistant/topics.py): meetings cluster into named topics, a topic page lists
what its meetings decided and left open, a meeting page links related meetings, and a private room's
meetings never reach anyone outside it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from assistant import indexing, tasks, topics
from assistant.models import ActionItem, MeetingSummary, MeetingTopic, Topic
from office.celery import app
from rooms import services as room_services
from tests.assistant_fixtures import MONDAY, eager_tasks, record_meeting
from tests.conftest import client_for
from transcription import services as transcription_services

LAUNCH_A = [
    ("alice", "Let's go through the launch plan for the mobile app release."),
    ("bob", "The beta build of the mobile app is ready for the app store release."),
    ("carol", "QA found two crashes in the beta build on older Android phones."),
    ("bob", "I will fix the Android crashes before the app store submission."),
    ("alice", "The launch date for the mobile app stays on December 2."),
    ("carol", "Marketing wants the app store screenshots and release notes for the launch."),
    ("bob", "The release candidate build goes to beta testers on Monday."),
    ("alice", "We ship the mobile app release once QA signs off the beta build."),
]
LAUNCH_B = [
    ("carol", "Status of the mobile app launch: the app store review is still pending."),
    ("alice", "The beta testers reported one crash in the release build on Android."),
    ("bob", "I fixed the crash, the new release build of the app is uploading to the store."),
    ("carol", "The launch announcement and the release notes for the mobile app are drafted."),
    ("alice", "If the app store approves the build we launch the mobile app on December 2."),
    ("bob", "The press kit for the app launch needs the final store screenshots."),
    ("carol", "Beta feedback on the mobile app release is mostly positive."),
    ("alice", "Let's keep the launch date and ship the app release after review."),
]
LAUNCH_C = [
    ("bob", "Quick check on the mobile app launch and the app store release."),
    ("carol", "The store listing for the mobile app is live, the release notes are published."),
    ("alice", "The beta build crash on Android is fixed in the release candidate."),
    ("bob", "Launch day plan: the app release goes out at nine, the announcement follows."),
    ("carol", "Marketing has the app store screenshots for the launch campaign."),
    ("alice", "We launch the mobile app release as planned on December 2."),
    ("bob", "The beta testers get the final release build of the app today."),
    ("carol", "Good, the mobile app launch checklist is complete."),
]
BUDGET_A = [
    ("alice", "Let's review the quarterly budget and the travel expenses."),
    ("bob", "The budget spreadsheet shows we overspent on travel and hotel costs."),
    ("carol", "Finance needs the revised budget forecast and the expense report by Friday."),
    ("bob", "I will cut the hotel costs and update the budget spreadsheet."),
    ("alice", "The salary budget for next quarter stays flat, no new hires."),
    ("carol", "The accounting team flagged the invoices for the travel expenses."),
    ("bob", "We could save money on software licences in the budget."),
    ("alice", "We decided to freeze travel spending until the budget is balanced."),
]
BUDGET_B = [
    ("carol", "Budget follow-up: the expense report and the invoices are with finance."),
    ("alice", "The revised budget forecast cuts travel expenses by twenty percent."),
    ("bob", "Accounting approved the budget spreadsheet with the lower hotel costs."),
    ("carol", "The software licence costs in the budget went down after renegotiation."),
    ("alice", "The quarterly budget now balances, the salary costs are unchanged."),
    ("bob", "Finance wants the next expense report and the budget forecast in January."),
    ("carol", "Should we keep the travel spending freeze in the budget next quarter?"),
    ("alice", "Let's leave the travel budget question open until finance answers."),
]


def _meeting(office, people, room: str, lines, *, day: int):
    meeting = record_meeting(office[room], people, lines, start=MONDAY + dt.timedelta(days=day))
    indexing.index_segments(list(meeting.segments.values_list("pk", flat=True)))
    return transcription_services.meeting_end(meeting=meeting)


@pytest.fixture
def meetings(office, people):
    """Two launch meetings and two budget meetings in Atlas, and two launch meetings in the private Vault
    (alice only), each ended and indexed."""
    made = {
        "launch_a": _meeting(office, people, "atlas", LAUNCH_A, day=0),
        "budget_a": _meeting(office, people, "atlas", BUDGET_A, day=1),
        "launch_b": _meeting(office, people, "atlas", LAUNCH_B, day=2),
        "budget_b": _meeting(office, people, "atlas", BUDGET_B, day=3),
        "vault_a": _meeting(office, people, "vault", LAUNCH_A, day=4),
        "vault_b": _meeting(office, people, "vault", LAUNCH_B, day=5),
    }
    MeetingSummary.objects.create(meeting=made["launch_b"], kind="final", summary="Launch status.", through_seq=8,
                                  decisions=["Launch the mobile app on December 2"],
                                  open_questions=["Do we need the press kit?"])
    MeetingSummary.objects.create(meeting=made["vault_b"], kind="final", summary="Secret launch.", through_seq=8,
                                  decisions=["Vault-only decision"])
    ActionItem.objects.create(room=office["atlas"], meeting=made["launch_a"], text="Fix the Android crashes",
                              status="approved", owner=people["bob"], dedupe_key="a")
    ActionItem.objects.create(room=office["atlas"], meeting=made["launch_a"], text="Rejected idea", status="rejected",
                              dedupe_key="b")
    return made


def _topic_of(meeting) -> Topic:
    return MeetingTopic.objects.filter(meeting=meeting).order_by("-weight").first().topic


def test_launch_and_budget_meetings_cluster_into_two_named_topics(meetings, people):
    # given six ended, indexed meetings
    # when the hourly job (beat → assistant.topics_refresh) runs for the first time
    assert app.conf.beat_schedule["topics-refresh"] == {"task": "assistant.topics_refresh", "schedule": 3600.0}
    with eager_tasks():
        done = tasks.topics_refresh.delay().get()
    # then Atlas's meetings form two topics, each named by its own words, and the Vault its own topic
    assert set(done) == {"shared", f"room:{meetings['vault_a'].room_id}"}
    launch, budget = _topic_of(meetings["launch_a"]), _topic_of(meetings["budget_a"])
    assert launch != budget
    assert _topic_of(meetings["launch_b"]) == launch and _topic_of(meetings["budget_b"]) == budget
    assert "launch" in launch.label.split(", ") and "budget" in budget.label.split(", ")
    assert not {"alice", "bob", "carol", "um", "yeah"} & set(" ".join(launch.top_terms + budget.top_terms).split())
    vault_topic = _topic_of(meetings["vault_a"])
    assert vault_topic not in (launch, budget) and vault_topic.room_ids == [meetings["vault_a"].room_id]

    # and the topic page lists its meetings, decisions, open questions and open action items
    html = client_for(people["bob"]).get(f"/topics/{launch.pk}/").content.decode()
    assert f'data-meeting-id="{meetings["launch_a"].pk}"' in html and f'data-meeting-id="{meetings["launch_b"].pk}"' in html
    assert f'data-meeting-id="{meetings["budget_a"].pk}"' not in html
    assert "Launch the mobile app on December 2" in html and "Do we need the press kit?" in html
    assert "Fix the Android crashes" in html and "Rejected idea" not in html


def test_a_private_rooms_meetings_never_reach_a_non_member(meetings, people, office):
    # given the topics found
    topics.topics_refresh()
    vault_topic, launch = _topic_of(meetings["vault_a"]), _topic_of(meetings["launch_a"])
    bob, alice = client_for(people["bob"]), client_for(people["alice"])
    # when bob (not in the Vault) looks at topics and related meetings
    listing = bob.get("/topics/").content.decode()
    # then the Vault's topic is not listed, its page is a 404, and no Vault meeting shows anywhere
    assert f'data-topic-id="{launch.pk}"' in listing and f'data-topic-id="{vault_topic.pk}"' not in listing
    assert bob.get(f"/topics/{vault_topic.pk}/").status_code == 404
    page = bob.get(f"/topics/{launch.pk}/").content.decode()
    assert "Vault-only decision" not in page and f'data-meeting-id="{meetings["vault_a"].pk}"' not in page
    related = bob.get(f"/api/meetings/{meetings['launch_a'].pk}/related/").json()["related"]
    assert [r["id"] for r in related][:1] == [meetings["launch_b"].pk]
    assert not {meetings["vault_a"].pk, meetings["vault_b"].pk} & {r["id"] for r in related}
    assert bob.get(f"/api/meetings/{meetings['vault_a'].pk}/related/").status_code == 404
    # and alice, a member, gets the Vault's topic and its related meeting
    assert alice.get(f"/topics/{vault_topic.pk}/").status_code == 200
    assert [r["id"] for r in alice.get(f"/api/meetings/{meetings['vault_a'].pk}/related/").json()["related"]] == [
        meetings["vault_b"].pk]

    # when Atlas becomes private to alice before the next clustering
    atlas = office["atlas"]
    atlas.kind = "private"
    atlas.save(update_fields=["kind"])
    room_services.room_set_members(room=atlas, user_ids=[people["alice"].pk])
    # then the topics made from its words are hidden from bob at once
    assert bob.get(f"/topics/{launch.pk}/").status_code == 404
    assert f'data-topic-id="{launch.pk}"' not in bob.get("/topics/").content.decode()


def test_a_new_meeting_joins_the_nearest_topic_and_ids_survive_a_recluster(meetings, office, people):
    # given the topics found
    topics.topics_refresh()
    launch, budget = _topic_of(meetings["launch_a"]), _topic_of(meetings["budget_a"])
    # when a third launch meeting ends and the hourly job runs again
    third = _meeting(office, people, "atlas", LAUNCH_C, day=6)
    done = topics.topics_refresh()
    # then it joins the launch topic without a re-clustering
    assert done == {"shared": "assigned: 1 links for 1 meetings"}
    link = MeetingTopic.objects.get(meeting=third)
    assert (link.topic_id, link.assigned, link.weight) == (launch.pk, "nearest", 1.0)
    assert Topic.objects.get(pk=launch.pk).size == launch.size + 1
    # and the meeting page's related meetings list the other launch meetings, not the budget ones
    related = client_for(people["carol"]).get(f"/api/meetings/{third.pk}/related/").json()["related"]
    assert {r["id"] for r in related} == {meetings["launch_a"].pk, meetings["launch_b"].pk}
    assert related[0]["topics"] == [{"id": launch.pk, "label": Topic.objects.get(pk=launch.pk).label}]

    # when a day later the whole scope is clustered again
    done = topics.topics_refresh(now=timezone.now() + dt.timedelta(hours=25))
    # then the topics keep their ids, and the new meeting is now a clustered member
    assert done["shared"].startswith("clustered")
    assert _topic_of(third).pk == launch.pk and _topic_of(meetings["budget_b"]).pk == budget.pk
    assert MeetingTopic.objects.get(meeting=third).assigned == "clustered"
    assert Topic.objects.filter(scope="shared").count() == 2
