"""The ranker registry page in a real Chromium against a real Daphne: dana, an admin, sees the
registered versions with their stage and card figures, and the weekly drift."""

from __future__ import annotations

import pytest

from assistant import registry
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_sees_the_ranker_versions_and_drift(office, people, live_office, sign_in):
    # given the saved rankers registered (v1 of each kind current)
    registry.versions_register_installed()
    # when dana opens the registry page
    dana = sign_in("dana", PASSWORD)
    dana.goto(f"{live_office}/assistant/versions/")
    # then each kind's table shows v1 as current, with its cross-validated figures
    row = dana.locator('#versions-action_items tr[data-version="v1"]')
    row.wait_for()
    assert "v1" in row.inner_text() and "current" in row.locator(".wf-badge").inner_text()
    assert dana.locator('#versions-decisions tr[data-version="v1"] .wf-badge').inner_text() == "current"
    # and the drift table has a row per week
    assert dana.locator("#drift tr[data-week]").count() == 8
    ARTIFACTS.mkdir(exist_ok=True)
    dana.screenshot(path=str(ARTIFACTS / "assistant-versions.png"), full_page=True)
