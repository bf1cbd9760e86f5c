"""A real OpenID Connect provider for the sign-on tests: a second, tiny Django project running
django-oidc-provider on SQLite in a temporary directory, started on 127.0.0.1 (see process.py)."""
