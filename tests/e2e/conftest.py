"""Browser tests: a real Daphne serving the test database, driven through Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from office.embedded import free_port, wait_for_port
from tests.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _database_url_for(db: dict) -> str:
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    host = db["HOST"]
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{db['NAME']}?host={host}"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgresql://{user}{password}@{host}{port}/{db['NAME']}"


def _live_env(**extra: str) -> dict:
    """The environment of processes that serve the test database (Daphne, the transcription worker)."""
    from django.conf import settings

    return {
        **os.environ,
        # the office's settings with the test process's password hasher (tests/live_settings.py)
        "DJANGO_SETTINGS_MODULE": "tests.live_settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DATABASE_URL": _database_url_for(settings.DATABASES["default"]),
        "DATABASE_CONN_MAX_AGE": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _wait_until_settled(timeout: float = 20.0) -> None:
    """Wait until Daphne and the transcription worker have finished what closing the pages set off.

    Closing a browser context closes its socket, and Daphne then writes (room visits, meeting
    participants) and the worker stores the last segment. Flushing the test database while one of
    those transactions runs can deadlock the flush's TRUNCATE, so the test waits for: nobody left
    on any map (the hubs' presence in Redis), no audio stream still claimed, and no other session
    on the test database busy for half a second."""
    import redis
    from django.conf import settings
    from django.db import connection

    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + timeout
    quiet_since = None
    try:
        while time.monotonic() < deadline:
            present = sum(client.hlen(key) for key in client.scan_iter("office:presence:*"))
            streams = client.scard("office:audio:streams")
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle'"
                )
                busy = cursor.fetchone()[0]
            if present or streams or busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= 0.5:
                return
            time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def settled_before_flush(_django_db_helper):
    """Torn down after the test's pages are closed and before pytest-django flushes the database."""
    yield
    _wait_until_settled()


@contextlib.contextmanager
def running_daphne(log_name: str, **env: str):
    """Daphne in a subprocess on the test database (with `env` added); yields its base URL."""
    port = free_port()
    log = open(ARTIFACTS.parent / ".data" / "test" / log_name, "wb")  # noqa: SIM115
    daphne = subprocess.Popen(
        [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "office.asgi:application"],
        env=_live_env(**env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(daphne)
        log.close()


@pytest.fixture(scope="session")
def live_office(django_db_setup, django_db_blocker):
    """Daphne on the test database; data must be committed (transactional tests)."""
    with running_daphne("daphne-e2e.log") as url:
        yield url


@pytest.fixture(scope="session")
def transcription_worker(live_office):
    """`manage.py transcription_worker` in a subprocess against the test database, as beside Daphne."""
    log_path = ARTIFACTS.parent / ".data" / "test" / "transcription-worker-e2e.log"
    log = open(log_path, "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "transcription_worker"],
        env=_live_env(LOG_LEVEL="INFO"), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while b"ready" not in log_path.read_bytes():  # the model is loaded
            if worker.poll() is not None:
                pytest.fail(f"the transcription worker exited ({worker.returncode}); see {log_path}")
            if time.monotonic() > deadline:
                pytest.fail(f"the transcription worker did not get ready in 90 s; see {log_path}")
            time.sleep(0.2)
        yield worker
    finally:
        stop_process(worker)
        log.close()


def _launch_chromium(playwright, extra_args=()):
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs it (scripts/install-test-system-packages.sh)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])


@contextlib.contextmanager
def _playwright():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    # Playwright's sync API keeps an event loop on this thread, which Django's async guard mistakes
    # for async code; the browser tests' own code is synchronous, so the guard is lifted meanwhile.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            yield playwright
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@contextlib.contextmanager
def _chromium(extra_args=(), playwright=None):
    """A Chromium, from `playwright` or from a Playwright of its own."""
    if playwright is None:
        with _playwright() as own, _chromium(extra_args, own) as chromium:
            yield chromium
        return
    chromium = _launch_chromium(playwright, extra_args)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="package")
def playwright():
    """One Playwright for all the browser tests: its sync API allows one per thread, and starting it
    and a Chromium took seconds per module. Tests get contexts of their own (cookies, pages) and close them."""
    with _playwright() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(playwright):
    with _chromium(playwright=playwright) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory):
    """What the fake microphone plays (Chromium loops the file): a sentence with silence around it."""
    from tests.audio import espeak_available, utterance_wav

    if not espeak_available():
        pytest.skip("espeak-ng makes the test speech (make test installs it)")
    path = tmp_path_factory.mktemp("speech") / "quarterly.wav"
    return utterance_wav("The quarterly report is due on Friday.", path, lead_s=1.0, tail_s=3.0)


@pytest.fixture(scope="module")
def media_browser(playwright, speech_wav):
    """A Chromium whose microphone is a fake device playing `speech_wav`, permission granted."""
    with _chromium([
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech_wav}",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
    ], playwright) as chromium:
        yield chromium


def _signer(browser, live_office, contexts, **context_options):
    def _sign_in(username: str, password: str):
        context = browser.new_context(viewport={"width": 1280, "height": 800}, **context_options)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_office}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_selector("#office-app")
        page.wait_for_function("document.querySelector('#connection-state')?.textContent.trim() === 'connected'")
        return page

    return _sign_in


@pytest.fixture
def sign_in(browser, live_office):
    """A signed-in page per persona, each in its own browser context (own cookies)."""
    contexts = []
    yield _signer(browser, live_office, contexts)
    for context in contexts:
        context.close()


@pytest.fixture
def sign_in_with_microphone(media_browser, live_office):
    """Like `sign_in`, in the Chromium with the fake microphone (microphone permission granted)."""
    contexts = []
    yield _signer(media_browser, live_office, contexts, permissions=["microphone"])
    for context in contexts:
        context.close()
