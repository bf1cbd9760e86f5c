"""Starting the test provider: migrate its SQLite database, create its RSA signing key, serve it with
`runserver` on 127.0.0.1 in a process group of its own; people and the office's clients are set up
with its management commands, which the serving process runs when asked (views.py)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from office.embedded import free_port, wait_for_port
from tests.processes import stop_process_group, wait_until

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.oidc_provider_site.settings"


@dataclass
class OpenIdProvider:
    url: str
    env: dict

    @property
    def issuer(self) -> str:
        return f"{self.url}/openid"

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "django", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"provider command {args[0]} failed:\n{done.stderr}")
        return done.stdout

    def command(self, *args: str) -> str:
        """One of the provider's test commands, run by the serving process (see views.py)."""
        answer = requests.post(f"{self.url}/test-commands/{args[0]}/", data=json.dumps(args[1:]), timeout=30,
                               headers={"X-Test-Token": self.env["OIDC_TEST_PROVIDER_TOKEN"]})
        if not answer.ok:
            raise AssertionError(f"provider command {args[0]} failed ({answer.status_code}); see the provider's log")
        return answer.text

    def set_client(self, client_id: str, *, secret: str, redirect_uris: list[str],
                   post_logout_redirect_uris: list[str]) -> None:
        self.command("provider_client", client_id, "--secret", secret,
                     *[arg for uri in redirect_uris for arg in ("--redirect-uri", uri)],
                     *[arg for uri in post_logout_redirect_uris for arg in ("--post-logout-redirect-uri", uri)])

    def set_user(self, username: str, *, password: str, first_name: str = "", last_name: str = "",
                 email: str = "", groups: tuple[str, ...] = ()) -> str:
        """Create or update the person; returns their `sub`."""
        return self.command("provider_user", username, "--password", password, "--first-name", first_name,
                            "--last-name", last_name, "--email", email,
                            *[arg for group in groups for arg in ("--group", group)]).strip()

    def office_env(self, *, client_id: str, secret: str, admin_group: str = "office-admins") -> dict[str, str]:
        """The office's environment for signing in through this provider (its endpoints from the issuer)."""
        return {"OIDC_ENABLED": "true", "OIDC_OP_ISSUER": self.issuer, "OIDC_RP_CLIENT_ID": client_id,
                "OIDC_RP_CLIENT_SECRET": secret, "OFFICE_OIDC_PROVIDER_NAME": "Test ID",
                "OFFICE_OIDC_ADMIN_GROUP": admin_group}


@contextlib.contextmanager
def running_provider(data_dir: Path, log_path: Path):
    """The provider on a free port of 127.0.0.1 for the `with` block."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS, "OIDC_TEST_PROVIDER_DIR": str(data_dir),
           "OIDC_TEST_PROVIDER_TOKEN": secrets.token_urlsafe(16), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    provider = OpenIdProvider(url=f"http://127.0.0.1:{port}", env=env)
    provider.manage("migrate", "--verbosity", "0")
    if "kid" not in provider.manage("creatersakey"):  # the command reports failures on stdout, exit 0
        raise AssertionError("the test provider could not create its signing key")
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", "--noreload", f"127.0.0.1:{port}"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_for_port(port, timeout=30)
            wait_until(lambda: requests.get(f"{provider.issuer}/jwks", timeout=5).ok, 30, "the provider's JWKS")
            yield provider
        finally:
            stop_process_group(server)
