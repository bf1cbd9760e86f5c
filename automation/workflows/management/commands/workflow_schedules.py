from django.core.management.base import BaseCommand

from automation.workflows.services import workflow_schedules_ensure


class Command(BaseCommand):
    help = "Store the workflow tick and the connector checks in the beat schedule tables (idempotent)."

    def handle(self, *args, **options):
        for task in workflow_schedules_ensure():
            self.stdout.write(f"{task.name}: every {task.interval.every} s")
