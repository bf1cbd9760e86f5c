"""How a step or connector says whether trying again can help."""

from __future__ import annotations


class TransientError(Exception):
    """Worth retrying later (timeouts, 5xx, connection refused). Any unexpected exception counts
    as transient too, within the step's retry budget."""


class PermanentError(Exception):
    """Retrying cannot help (4xx, bad configuration, missing data): the step fails at once."""


class ConnectorUnavailable(Exception):
    """The connector's circuit breaker is open: the step is postponed, not failed."""

    def __init__(self, connector: str, retry_after_seconds: float):
        super().__init__(f"connector {connector!r} is unavailable (circuit open); retry in {retry_after_seconds:.0f}s")
        self.connector = connector
        self.retry_after_seconds = retry_after_seconds
