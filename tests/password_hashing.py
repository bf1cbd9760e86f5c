"""The password hasher of the test process and of the office processes the tests start."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 with 1,000 rounds instead of 1,000,000 (half a second a password here): the
    `people` fixture alone hashed four passwords per test, minutes of the suite. It keeps the
    algorithm's name, so a process on the office's own settings (the MQTT broker, the production
    shape) still checks these hashes, the rounds being in each hash. Daphne and the transcription
    worker run with it too (tests/live_settings.py): a Daphne on Django's rounds would bring the
    hash up to them at a browser sign-in, under the feet of a test that holds the user."""

    iterations = 1_000
