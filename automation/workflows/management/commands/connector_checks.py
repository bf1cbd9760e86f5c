from django.core.management.base import BaseCommand

from automation.workflows.services import connector_checks_run_all


class Command(BaseCommand):
    help = "Run every connector's synthetic check now, in this process, and print the results (docs/adr/0017)."

    def handle(self, *args, **options):
        failing = 0
        for check in connector_checks_run_all():
            failing += not check.ok
            state = "ok" if check.ok else "FAILING"
            breaker = f" breaker {check.breaker_state}" if check.breaker_state else ""
            self.stdout.write(f"{check.connector} {check.label}: {state} in {check.latency_ms:.0f} ms{breaker}: "
                              f"{check.detail}")
        if failing:
            self.stderr.write(f"{failing} failing")
