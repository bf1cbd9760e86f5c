"""Signal receivers: thin adapters that call one module (connected in `IotConfig.ready()`)."""

from __future__ import annotations

from . import outcomes


def sensor_outcomes(sender, *, scope, **kwargs) -> list[dict]:
    """The outcome dashboard's sensor event → ticket → resolved times (rooms/outcomes.py)."""
    return outcomes.sensor_outcome_sections(scope)
