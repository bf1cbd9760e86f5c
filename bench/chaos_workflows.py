"""Chaos bench for durable workflows: N runs of a three-step workflow while Celery workers are
SIGKILLed and restarted at random; afterwards every run must have finished and every side effect
must exist exactly once.

    .venv/bin/python bench/chaos_workflows.py              # 1000 runs, 2 workers
    .venv/bin/python bench/chaos_workflows.py --runs 200 --kill-every 2,5

Runs on its own throwaway stack (bench/common.py: embedded PostgreSQL + Valkey in a temp dir, free
ports), with real `celery worker` processes (prefork, one child each, as `make run` starts them)
and a real `celery beat` on the database scheduler running the workflow tick.

The side effects go to a sink table without a unique constraint (bench_chaos_sink), written by a
transactional connector through `ctx.send`, so only the ledger stands between a re-executed step
and a duplicate row. Every call of the connector (attempted effect, whether it committed or was
rolled back by a kill) is also counted in Redis. Prints a summary and writes
bench/results/chaos_workflows.json; exit status 1 when a run was lost or an effect duplicated.

This module is also imported by the workers (OFFICE_WORKFLOW_MODULES=bench.chaos_workflows) to
register the workflow and the sink connector; the bench driver code runs only under __main__.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, ahead of bench/

from automation.workflows.connectors import connector_register
from automation.workflows.definitions import step, workflow
from automation.workflows.errors import TransientError

WORKFLOW = "bench.chaos"
ATTEMPTED_KEY = "bench:chaos:attempted"
SINK_TABLE = "bench_chaos_sink"


class SinkConnector:
    """Appends a row per effect; no unique constraint, so a second delivery would show up."""

    name = "bench_sink"
    transactional = True

    def deliver(self, message: dict, *, idempotency_key: str) -> dict:
        from django.db import connection
        from redis.exceptions import RedisError

        from office.redis_client import redis_client

        try:  # outside the transaction: survives a kill (a count for the report, so Redis may be away)
            redis_client().hincrby(ATTEMPTED_KEY, idempotency_key, 1)
        except RedisError:
            pass
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {SINK_TABLE} (effect_key, run_id) VALUES (%s, %s)",
                           [idempotency_key, message["run_id"]])
        time.sleep(random.uniform(0, 0.02))  # widen the window in which a kill lands mid-transaction
        return {"ok": True}

    def breaker_name(self, message: dict) -> str:
        return self.name


connector_register(SinkConnector())


def _effect(ctx, label: str):
    time.sleep(random.uniform(0, 0.03))  # work before the effect
    result = ctx.send("bench_sink", {"run_id": ctx.run_id}, key=label)
    time.sleep(random.uniform(0, 0.03))  # work after it: a kill here re-runs a step whose effect committed
    return result


def reserve(ctx):
    return _effect(ctx, "reserve")


def charge(ctx):
    if random.random() < 0.05:
        raise TransientError("payment service hiccup (injected)")
    return _effect(ctx, "charge")


def confirm(ctx):
    return _effect(ctx, "confirm")


@workflow(WORKFLOW, version=1)
def chaos_flow():
    return [
        step(reserve, lease_seconds=5),
        step(charge, lease_seconds=5, retries=5, backoff=0.5, max_backoff=2.0),
        step(confirm, lease_seconds=5),
    ]


# --- pieces bench/faults.py reuses ---

def worker_env(stack_env: dict[str, str]) -> dict[str, str]:
    """The stack's environment for workers that run this module's workflow (fast tick and requeue)."""
    import os

    from bench.common import ROOT

    return {
        **stack_env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "OFFICE_WORKFLOW_MODULES": "bench.chaos_workflows",
        "OFFICE_WORKFLOW_TICK_SECONDS": "1",
        "OFFICE_WORKFLOW_REQUEUE_AFTER_SECONDS": "3",
        "DATABASE_CONN_MAX_AGE": "0",
    }


def worker_command(name: str) -> list[str]:
    """A Celery worker as `make run` starts it (prefork, one child)."""
    from bench.common import VENV_BIN

    return [str(VENV_BIN / "celery"), "-A", "office", "worker", "-l", "WARNING", "--concurrency", "1",
            "-n", f"{name}@bench", "--without-gossip", "--without-mingle"]


def beat_command() -> list[str]:
    from bench.common import VENV_BIN

    return [str(VENV_BIN / "celery"), "-A", "office", "beat", "-l", "WARNING", "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler"]


def sink_create() -> None:
    """The sink table (Django set up) and the workflow tick in beat's schedule."""
    from django.db import connection

    from automation.workflows import services

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {SINK_TABLE} (id bigserial PRIMARY KEY, effect_key text NOT NULL, "
                       "run_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
    services.workflow_schedules_ensure()


def effect_counts(run_ids: list[int]) -> dict:
    """Runs by status and the sink's side effects: 3 per succeeded run, each exactly once."""
    from django.db import connection
    from django.db.models import Count

    from automation.workflows.models import WorkflowRun, WorkflowStep

    by_status = dict(WorkflowRun.objects.filter(pk__in=run_ids).values_list("status").annotate(n=Count("id"))
                     .values_list("status", "n"))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT effect_key, count(*) FROM {SINK_TABLE} GROUP BY effect_key")
        committed = dict(cursor.fetchall())
    succeeded = by_status.get(WorkflowRun.Status.SUCCEEDED, 0)
    return {
        "runs_completed": succeeded,
        "runs_lost": len(run_ids) - succeeded,
        "runs_by_status": by_status,
        "side_effects_expected": 3 * succeeded,
        "side_effects_committed": sum(committed.values()),
        "duplicated_side_effects": sum(n - 1 for n in committed.values() if n > 1),
        "missing_side_effects": 3 * succeeded - len(committed),
        "steps_run_more_than_once": WorkflowStep.objects.filter(run_id__in=run_ids, attempts__gt=1).count(),
    }


# --- the bench driver ---

def main() -> int:
    import json
    import os
    import signal
    import subprocess

    from bench.common import ROOT, BenchStack, base_args, log, write_results

    parser = base_args(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", default="3,8", help="seconds between kills: min,max (uniform)")
    parser.add_argument("--timeout", type=float, default=900, help="give up waiting for the runs after this")
    args = parser.parse_args()
    random.seed(args.seed)
    kill_min, kill_max = (float(x) for x in args.kill_every.split(","))

    stack = BenchStack(keep=args.keep)
    processes: dict[str, subprocess.Popen] = {}
    logs = []
    try:
        stack.start()
        env = worker_env(stack.env)
        os.environ.update({k: v for k, v in env.items() if k != "OFFICE_WORKFLOW_MODULES"})
        import django

        django.setup()
        from django.db.models import Count

        from automation.workflows import services
        from automation.workflows.models import WorkflowRun, WorkflowStepAttempt
        from office.redis_client import redis_client

        sink_create()
        rclient = redis_client()

        def spawn(name: str, command: list[str]) -> None:
            log_file = open(stack.tmp / f"{name}.log", "ab")  # noqa: SIM115
            logs.append(log_file)
            processes[name] = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log_file,
                                               stderr=subprocess.STDOUT, start_new_session=True)

        def start_worker(name: str) -> None:
            spawn(name, worker_command(name))

        workers = [f"worker{i + 1}" for i in range(args.workers)]
        for name in workers:
            start_worker(name)
        spawn("beat", beat_command())

        log(f"starting {args.runs} runs of {WORKFLOW} ({args.workers} workers, a SIGKILL every "
            f"{kill_min:g}-{kill_max:g} s)")
        started = time.monotonic()
        kills = 0
        next_kill = started + random.uniform(kill_min, kill_max)
        run_ids = []
        for i in range(args.runs):
            run_ids.append(services.workflow_start(WORKFLOW, {"n": i}, idempotency_key=f"chaos-{i}").pk)
            if time.monotonic() >= next_kill:  # the chaos starts while runs are still being started
                kills += _kill_one(processes, workers, start_worker, signal)
                next_kill = time.monotonic() + random.uniform(kill_min, kill_max)
        log(f"all runs started in {time.monotonic() - started:.1f}s")

        final = [WorkflowRun.Status.SUCCEEDED, WorkflowRun.Status.FAILED, WorkflowRun.Status.COMPENSATED,
                 WorkflowRun.Status.CANCELLED]
        last_report = 0.0
        while time.monotonic() - started < args.timeout:
            done = WorkflowRun.objects.filter(pk__in=run_ids, status__in=final).count()
            now = time.monotonic()
            if now - last_report > 5:
                log(f"{done}/{args.runs} runs finished, {kills} kills so far")
                last_report = now
            if done == args.runs:
                break
            if now >= next_kill:
                kills += _kill_one(processes, workers, start_worker, signal)
                next_kill = now + random.uniform(kill_min, kill_max)
            time.sleep(0.2)
        wall = time.monotonic() - started

        counts = effect_counts(run_ids)
        attempted = {k.decode(): int(v) for k, v in rclient.hgetall(ATTEMPTED_KEY).items()}
        outcomes = dict(WorkflowStepAttempt.objects.values_list("outcome").annotate(n=Count("id"))
                        .values_list("outcome", "n"))
        result = {
            "runs": args.runs,
            "workers": args.workers,
            **counts,
            "effect_attempts": sum(attempted.values()),
            "effect_attempts_rolled_back": sum(attempted.values()) - counts["side_effects_committed"],
            "attempt_outcomes": outcomes,
            "kills": kills,
            "wall_s": round(wall, 1),
            "runs_per_s": round(args.runs / wall, 1),
            "kill_every_s": [kill_min, kill_max],
        }
        print(json.dumps(result, indent=2))
        path = write_results("chaos_workflows.json", result)
        log(f"results in {path}")
        ok = result["runs_lost"] == 0 and result["duplicated_side_effects"] == 0 and result["missing_side_effects"] == 0
        log("OK: nothing lost, nothing duplicated" if ok else "FAILED: lost runs or duplicated/missing side effects")
        return 0 if ok else 1
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for log_file in logs:
            log_file.close()
        from django.db import connections

        connections.close_all()
        stack.stop()


def _kill_one(processes, workers, start_worker, signal) -> int:
    """SIGKILL a random worker's whole process group (main process and its pool child), restart it."""
    import os

    name = random.choice(workers)
    process = processes[name]
    if process.poll() is not None:
        start_worker(name)
        return 0
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    start_worker(name)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
