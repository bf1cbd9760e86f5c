from django.core.management.base import BaseCommand

from automation.workflows.services import workflow_schedules_ensure


class Command(BaseCommand):
    help = "Store the workflow tick in the beat schedule tables (idempotent; make run calls it)."

    def handle(self, *args, **options):
        task = workflow_schedules_ensure()
        self.stdout.write(f"{task.name}: every {task.interval.every} s")
