"""The ranker registry: a worse candidate is not promoted and a better one is (and can be rolled back),
people's decisions become the next training set, a shadow ranker's proposals are stored and never
shown, and the admin page (dana only) promotes, shadows and explains a refusal."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from django.core.management import call_command

from assistant import candidate_ranker, llm, meeting_notes, registry
from assistant.models import ActionItem, AssistantVersion
from assistant.testing import ScriptedTransport, by_purpose
from tests.assistant_fixtures import PLANNING, record_meeting
from tests.conftest import client_for
from transcription import services as transcription_services


class SilentPipeline:
    """A ranker pipeline that finds nothing worth writing up (pickled by joblib: module level)."""

    def predict_proba(self, x):
        return np.column_stack([np.ones(len(x)), np.zeros(len(x))])


@pytest.fixture
def rankers(tmp_path, monkeypatch, settings):
    """assistant/rankers/ in a temporary folder (v1 of both kinds), so tests can add versions to it."""
    for path in candidate_ranker.ARTEFACT_DIR.glob("*-v1.*"):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(candidate_ranker, "ARTEFACT_DIR", tmp_path)
    settings.OFFICE_RANKER_VERSION = "v1"
    return tmp_path


def ranker_copy(directory, version: str, *, kind: str = "action_items", **figures) -> None:
    """v1's pipeline saved as `version` with other cross-validated figures on its card."""
    v1 = candidate_ranker.load(kind, "v1")
    card = json.loads(json.dumps(v1.card))
    card["cross_validation"].update(figures)
    candidate_ranker.save(candidate_ranker.Ranker(kind=kind, version=version, pipeline=v1.pipeline, card=card),
                          directory)


def scripted() -> llm.LLMClient:
    return llm.LLMClient(ScriptedTransport(by_purpose()))


def decide(user, item, action: str):
    response = client_for(user).post(f"/api/action-items/{item.pk}/decision/", {"action": action},
                                     content_type="application/json")
    assert response.status_code == 200, response.content
    return response


def stage_of(version: str, kind: str = "action_items") -> str:
    return AssistantVersion.objects.get(kind=kind, version=version).stage


@pytest.fixture(autouse=True)
def _fresh_breakers():
    llm.reset_breakers()
    yield
    llm.reset_breakers()


@pytest.mark.django_db
def test_a_fresh_database_uses_the_configured_version_until_the_registry_names_one(rankers):
    # given no registered versions
    assert registry.current_version("action_items") == "v1"
    # when the saved rankers are registered
    call_command("assistant_register_rankers")
    # then v1 of each kind is current, and registering again changes nothing
    assert stage_of("v1") == "current" and stage_of("v1", "decisions") == "current"
    call_command("assistant_register_rankers")
    assert AssistantVersion.objects.count() == 2
    assert candidate_ranker.current("action_items").version == "v1"


@pytest.mark.django_db
def test_a_worse_candidate_is_refused_a_better_one_promoted_and_rollback_restores(rankers, people):
    # given v1 current, v2 with a worse cross-validated F1, v3 better on both figures
    v1 = candidate_ranker.load("action_items", "v1").card["cross_validation"]
    ranker_copy(rankers, "v2", turn_f1=v1["turn_f1"] - 0.05)
    ranker_copy(rankers, "v3", turn_f1=v1["turn_f1"] + 0.02, mean_average_precision=v1["mean_average_precision"] + 0.01)
    registry.versions_register_installed()
    dana = people["dana"]
    # when dana promotes v2
    worse, current = f"{v1['turn_f1'] - 0.05:.3f}", f"{v1['turn_f1']:.3f}"
    with pytest.raises(ValueError, match=rf"turn_f1 {re.escape(worse)} is worse than current v1's {re.escape(current)}"):
        registry.version_promote("action_items", "v2", dana)
    # then v1 stays current and the product still uses it
    assert stage_of("v1") == "current" and stage_of("v2") == "candidate"
    assert candidate_ranker.current("action_items").version == "v1"
    # when she promotes v3
    promoted = registry.version_promote("action_items", "v3", dana)
    # then v3 is current, promoted by her, v1 retired, and the product's ranker is v3
    assert promoted.stage == "current" and promoted.promoted_by == dana and promoted.promoted_at is not None
    assert stage_of("v1") == "retired"
    assert candidate_ranker.current("action_items").version == "v3"
    # when she rolls back
    back = registry.version_rollback("action_items", dana)
    # then v1 is current again and v3 retired
    assert back.version == "v1" and stage_of("v1") == "current" and stage_of("v3") == "retired"
    assert candidate_ranker.current("action_items").version == "v1"
    # and the override the bench installs still wins over the registry
    candidate_ranker.set_current("action_items", candidate_ranker.load("action_items", "v3"))
    try:
        assert candidate_ranker.current("action_items").version == "v3"
    finally:
        candidate_ranker.set_current("action_items", None)


@pytest.mark.django_db
def test_a_candidate_that_misses_what_people_approved_is_refused(rankers, office, people):
    # given a meeting whose proposals alice approved, and v2: same card figures, but it selects no turn
    meeting = record_meeting(office["atlas"], people, PLANNING)
    for item in meeting_notes.action_items_propose(meeting, client=scripted()):
        decide(people["alice"], item, "approve")
    v1 = candidate_ranker.load("action_items", "v1")
    candidate_ranker.save(candidate_ranker.Ranker(kind="action_items", version="v2", pipeline=SilentPipeline(),
                                                  card=v1.card), rankers)
    registry.versions_register_installed()
    # when dana promotes v2
    with pytest.raises(ValueError, match="decision agreement") as refused:
        registry.version_promote("action_items", "v2", people["dana"])
    # then the message says what each selects, and v1 stays current
    assert "v2 selects 0 approved minus 0 rejected turns = 0" in str(refused.value)
    assert stage_of("v1") == "current"
    # and forcing it is possible (the guard is a default, not a lock)
    registry.version_promote("action_items", "v2", people["dana"], force=True)
    assert stage_of("v2") == "current"


@pytest.mark.django_db
def test_a_rejection_changes_the_next_training_set(rankers, office, people, tmp_path):
    # given a meeting with proposals; alice approved bob's crash fix
    meeting = record_meeting(office["atlas"], people, PLANNING)
    items = meeting_notes.action_items_propose(meeting, client=scripted())
    fix = next(i for i in items if i.owner == people["bob"])
    notes = next(i for i in items if i.owner == people["carol"])
    decide(people["alice"], fix, "approve")
    before = registry.training_labels_from_decisions()
    # when alice rejects carol's release notes through the API
    decide(people["alice"], notes, "reject")
    out = tmp_path / "labels.json"
    call_command("assistant_export_labels", str(out), "--kind", "action_items")
    after = json.loads(out.read_text())
    # then the exported labels hold a 0 for the rejected item's turn, with the ranker's features
    rows = after["action_items"]
    rejected = [r for r in rows if r["item"] == notes.pk]
    assert rejected and {r["label"] for r in rejected} == {0}
    assert {r["segment"] for r in rejected} == set(notes.source_segment_ids)
    assert {r["label"] for r in rows if r["item"] == fix.pk} == {1}
    assert all(len(r["features"]) == len(candidate_ranker.HAND_FEATURES) + 2 * 384 for r in rows)
    # and the training set's hash differs from before the rejection
    assert len(before["action_items"]) < len(rows)
    assert registry.training_set_hash(before) != registry.training_set_hash(after)
    assert registry.training_set_hash(after) == registry.training_set_hash(registry.training_labels_from_decisions())


@pytest.mark.django_db
def test_shadow_proposals_are_stored_but_never_listed_or_announced(
        rankers, office, people, monkeypatch, django_capture_on_commit_callbacks):
    # given v1 current and v2 (the same turns, another version) in shadow
    ranker_copy(rankers, "v2")
    registry.versions_register_installed()
    registry.version_set_shadow("action_items", "v2", people["dana"])
    announced = []
    monkeypatch.setattr("office.events.send_event", lambda group, event: announced.append(event))
    meeting = record_meeting(office["atlas"], people, PLANNING)
    # when the meeting is finalised
    with django_capture_on_commit_callbacks(execute=True):
        meeting_notes.meeting_finalize(meeting, client=scripted())
    # then the shadow's proposals are stored with its version, beside the shown ones for the same tasks
    shadow = list(ActionItem.objects.filter(meeting=meeting, shadow=True))
    shown = list(ActionItem.objects.filter(meeting=meeting, shadow=False))
    assert shadow and shown
    assert {i.ranker_version for i in shadow} == {"action_items-ranker.v2"}
    assert {i.ranker_version for i in shown} == {"action_items-ranker.v1"}
    assert {i.dedupe_key for i in shadow} & {i.dedupe_key for i in shown}
    # and the room's list shows only the current ranker's proposals
    listed = client_for(people["alice"]).get(f"/api/action-items/?room={office['atlas'].pk}").json()
    assert {i["id"] for i in listed} == {i.pk for i in shown}
    notes = client_for(people["alice"]).get(f"/api/meetings/{meeting.pk}/notes/").json()
    assert {i["id"] for i in notes["action_items"]} == {i.pk for i in shown}
    # and no live event named a shadow item
    announced_ids = {e["item"]["id"] for e in announced if e.get("type") == "assistant.action_item"}
    assert announced_ids == {i.pk for i in shown}
    # and finalising again stores nothing twice
    meeting_notes.meeting_finalize(meeting, client=scripted())
    assert ActionItem.objects.filter(meeting=meeting, shadow=True).count() == len(shadow)


@pytest.mark.django_db
def test_shadow_rows_do_not_block_the_shown_proposals(rankers, office, people):
    # given a shadow run that already proposed this meeting's tasks
    ranker_copy(rankers, "v2")
    registry.versions_register_installed()
    registry.version_set_shadow("action_items", "v2", people["dana"])
    meeting = record_meeting(office["atlas"], people, PLANNING)
    assert registry.shadow_propose(meeting) > 0
    # when the current ranker proposes
    items = meeting_notes.action_items_propose(meeting, client=scripted())
    # then its proposals are stored all the same
    assert {"bob", "carol"} <= {i.owner.username for i in items if i.owner}


@pytest.mark.django_db
def test_the_versions_page_is_for_admins_and_promotes_or_explains_a_refusal(rankers, office, people, client):
    # given v1 current, v2 worse on mean AP, v3 better
    v1 = candidate_ranker.load("action_items", "v1").card["cross_validation"]
    ranker_copy(rankers, "v2", mean_average_precision=v1["mean_average_precision"] - 0.1)
    ranker_copy(rankers, "v3", turn_f1=v1["turn_f1"] + 0.01)
    registry.versions_register_installed()
    dana, bob = client_for(people["dana"]), client_for(people["bob"])
    # when dana opens the page
    page = dana.get("/assistant/versions/")
    # then she sees each kind's versions with their card figures, and the weekly drift
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-version="v1" data-stage="current"' in html and 'data-version="v3" data-stage="candidate"' in html
    assert f"<td>{v1['turn_f1']}</td>" in html and "Drift by week" in html and "n/a" in html
    assert html.count("data-week=") == 8
    # and bob may not, nor may anyone signed out
    assert bob.get("/assistant/versions/").status_code == 403
    assert bob.post("/assistant/versions/action_items/v3/promote/").status_code == 403
    anonymous = client.get("/assistant/versions/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    # when dana promotes v2, the guard's refusal is a message on the page, not an error
    refused = dana.post("/assistant/versions/action_items/v2/promote/", follow=True)
    assert refused.status_code == 200 and "mean_average_precision 0.449 is worse" in refused.content.decode()
    assert stage_of("v2") == "candidate"
    # when she promotes v3 and shadows v2
    done = dana.post("/assistant/versions/action_items/v3/promote/", follow=True)
    dana.post("/assistant/versions/action_items/v2/shadow/")
    # then the stages follow
    assert "action_items v3 promoted" in done.content.decode()
    assert (stage_of("v3"), stage_of("v1"), stage_of("v2")) == ("current", "retired", "shadow")
    # and rolling back from the page restores v1
    dana.post("/assistant/versions/action_items/rollback/")
    assert (stage_of("v1"), stage_of("v3")) == ("current", "retired")


@pytest.mark.django_db
def test_drift_counts_overrides_and_proposals_per_meeting(rankers, office, people):
    # given a finished meeting whose two proposals alice approved and rejected
    meeting = record_meeting(office["atlas"], people, PLANNING)
    items = meeting_notes.action_items_propose(meeting, client=scripted())
    transcription_services.meeting_end(meeting=meeting)
    decide(people["alice"], items[0], "approve")
    decide(people["alice"], items[1], "reject")
    # when the drift is read
    this_week = registry.drift_by_week()[0]
    # then this week shows one override in two decisions, and the proposals of one meeting
    assert this_week["decided"] == 2 and this_week["override_rate"] == 0.5
    assert this_week["meetings"] == 1 and this_week["proposals_per_meeting"] == len(items)
    assert this_week["not_found_share"] is None
