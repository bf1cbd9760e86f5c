"""`OFFICE_ENV=production` is a deployable configuration: Django's deployment checks (HSTS, SSL
redirect, proxy header, secure cookies, secret, DEBUG) and the API schema checks pass with it, and it
refuses to start with DEBUG on or a secret that is not from the environment."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "OFFICE_ENV": "production",
            "ALLOWED_HOSTS": "office.example.test", "SECRET_KEY": secrets.token_urlsafe(60)}
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_production_settings_pass_the_deployment_checks():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_same_checks_fail_without_the_production_switch():
    """The test above can fail: plain development settings are not deployable."""
    result = manage("check", "--deploy", "--fail-level", "WARNING", OFFICE_ENV="development")
    assert result.returncode != 0 and "security.W004" in result.stderr + result.stdout


def test_production_refuses_debug_and_a_missing_secret():
    debug = manage("check", DEBUG="1")
    assert debug.returncode != 0 and "DEBUG must be off" in debug.stderr
    no_secret = manage("check", SECRET_KEY="")
    assert no_secret.returncode != 0 and "needs SECRET_KEY" in no_secret.stderr
