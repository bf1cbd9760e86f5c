"""Register the work kernel's periodic tasks in the beat database scheduler (safe to run again)."""

from django.core.management.base import BaseCommand

from automation.schedules import periodic_tasks_ensure


class Command(BaseCommand):
    help = "Create or update the periodic tasks for reminders, digests and calendar imports."

    def handle(self, *args, **options):
        for name in periodic_tasks_ensure():
            self.stdout.write(f"scheduled: {name}")
