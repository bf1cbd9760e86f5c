from django.core.management.base import BaseCommand

from iot.schedules import periodic_tasks_ensure


class Command(BaseCommand):
    help = "Register the IoT rule timer tick in django-celery-beat's database scheduler (idempotent)."

    def handle(self, *args, **options):
        for name in periodic_tasks_ensure():
            self.stdout.write(f"beat entry ensured: {name}")
