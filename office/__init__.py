"""Shared infrastructure and wiring: settings, the Celery app, URL and socket composition
(`urls`, `routing`), embedded services for `make run` and tests (`embedded`, `runner`), live events
after commit (`events`), queueing work by task name (`queueing`), API error mapping (`api`),
health and metrics (`views`, `observability`). Imports no stage app outside `urls` and `routing`.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
