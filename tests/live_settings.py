"""The office's settings for the processes the browser tests start on the test database (Daphne,
the transcription worker): office/settings.py as it is, with the test process's password hasher."""

from office.settings import *  # noqa: F403

PASSWORD_HASHERS = ["tests.password_hashing.QuickPBKDF2PasswordHasher"]
