"""The test provider's settings. Its data lives in OIDC_TEST_PROVIDER_DIR (a temporary directory)."""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ["OIDC_TEST_PROVIDER_DIR"])

SECRET_KEY = "test-provider-only-not-a-secret-" + "0" * 32
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oidc_provider",
    "tests.oidc_provider_site",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.oidc_provider_site.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [HERE / "templates"],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "provider.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # a test provider: speed over strength
LOGIN_URL = "/accounts/login/"
# The browser test reaches the office and the provider on the same host (127.0.0.1, two ports), and
# cookies do not tell ports apart: the provider's cookies get names of their own.
SESSION_COOKIE_NAME = "provider_sessionid"
CSRF_COOKIE_NAME = "provider_csrftoken"

OIDC_USERINFO = "tests.oidc_provider_site.claims.userinfo"
OIDC_EXTRA_SCOPE_CLAIMS = "tests.oidc_provider_site.claims.GroupsScopeClaims"
