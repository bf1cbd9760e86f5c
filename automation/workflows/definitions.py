"""Workflow definitions: named, versioned, ordered lists of steps, registered at import time.

    from automation.workflows.definitions import step, workflow

    def notify(ctx):
        ctx.send("notification", {"user_id": ctx.input["owner_id"], "title": "New task"}, key="owner")

    @workflow("task.notify_owner", version=1)
    def notify_owner():
        return [step(notify, retries=5, backoff=2.0)]

A run keeps the version it started with, so changing a workflow means registering a new version
and keeping the old one registered until its runs have finished. This module is plain Python (no
models), so definition modules can be imported before Django is set up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import StepContext

StepFunction = Callable[["StepContext"], Any]
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")


class UnknownWorkflow(LookupError):
    pass


@dataclass(frozen=True)
class StepSpec:
    """One step. `fn(ctx)` returns a JSON-safe result; it is re-run on retry, so its side effects
    go through `ctx.send` (recorded once per idempotency key)."""

    fn: StepFunction
    name: str
    retries: int = 3  # attempts after the first before the step fails for good
    backoff: float = 2.0  # seconds before the first retry; doubles each time, with full jitter
    max_backoff: float = 600.0
    needs_approval: bool | Callable[[StepContext], bool] = False
    approval_summary: str | Callable[[StepContext], str] | None = None
    approver: Callable[[StepContext], int | None] | None = None  # user id; None: any admin
    compensate: StepFunction | None = None  # undoes this step when a later one fails for good
    lease_seconds: int | None = None  # how long one attempt may run before it counts as lost

    def requires_approval(self, ctx: StepContext) -> bool:
        if callable(self.needs_approval):
            return bool(self.needs_approval(ctx))
        return bool(self.needs_approval)

    def summary_for(self, ctx: StepContext) -> str:
        if callable(self.approval_summary):
            return str(self.approval_summary(ctx))
        if self.approval_summary:
            return self.approval_summary
        return f"{ctx.workflow_name}: {self.name}"


def step(
    fn: StepFunction,
    *,
    name: str | None = None,
    retries: int = 3,
    backoff: float = 2.0,
    max_backoff: float = 600.0,
    needs_approval: bool | Callable[[StepContext], bool] = False,
    approval_summary: str | Callable[[StepContext], str] | None = None,
    approver: Callable[[StepContext], int | None] | None = None,
    compensate: StepFunction | None = None,
    lease_seconds: int | None = None,
) -> StepSpec:
    """Describe a step; the name defaults to the function's name."""
    if retries < 0 or backoff < 0 or max_backoff < 0:
        raise ValueError("retries and backoff must not be negative")
    return StepSpec(
        fn=fn, name=name or fn.__name__, retries=retries, backoff=backoff, max_backoff=max_backoff,
        needs_approval=needs_approval, approval_summary=approval_summary, approver=approver,
        compensate=compensate, lease_seconds=lease_seconds,
    )


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    version: int
    steps: tuple[StepSpec, ...]
    description: str = ""

    def step_at(self, index: int) -> StepSpec:
        return self.steps[index]

    def _fingerprint(self) -> tuple:
        return tuple((s.name, s.fn.__module__, s.fn.__qualname__) for s in self.steps)


_registry: dict[str, dict[int, WorkflowDefinition]] = {}


def workflow_register(name: str, *, version: int, steps: list[StepSpec], description: str = "") -> WorkflowDefinition:
    """Register a definition. Re-registering the same steps (a module imported twice) is fine;
    different steps under an existing name and version are an error: bump the version."""
    if not _NAME.match(name):
        raise ValueError(f"workflow name {name!r}: lower-case letters, digits and . _ - only")
    if version < 1:
        raise ValueError("workflow versions start at 1")
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"workflow {name} v{version}: step names must be unique, got {names}")
    definition = WorkflowDefinition(name=name, version=version, steps=tuple(steps), description=description)
    existing = _registry.get(name, {}).get(version)
    if existing is not None and existing._fingerprint() != definition._fingerprint():
        raise ValueError(f"workflow {name} v{version} is already registered with other steps; bump the version")
    _registry.setdefault(name, {})[version] = definition
    return definition


def workflow(name: str, *, version: int = 1, description: str = ""):
    """Decorator for a function that returns the ordered list of steps."""

    def decorator(build: Callable[[], list[StepSpec]]):
        workflow_register(name, version=version, steps=list(build()), description=description or (build.__doc__ or ""))
        return build

    return decorator


def definition_get(name: str, version: int | None = None) -> WorkflowDefinition:
    """The given version, or the newest one when `version` is None."""
    versions = _registry.get(name)
    if not versions:
        raise UnknownWorkflow(f"no workflow named {name!r} is registered")
    if version is None:
        return versions[max(versions)]
    try:
        return versions[version]
    except KeyError:
        raise UnknownWorkflow(f"workflow {name!r} has no version {version} registered") from None


def definitions_all() -> list[WorkflowDefinition]:
    return [d for versions in _registry.values() for d in versions.values()]
