"""Everything that must happen before the office's processes start, in order (office.processes.SETUP_STEPS):
migrations, the saved rankers, beat's database schedules. Idempotent; run on every deploy."""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from office.processes import DEMO_ONLY_STEPS, SETUP_STEPS


class Command(BaseCommand):
    help = "Migrate and register rankers and periodic tasks (with --demo: load the demo office too)."

    def add_arguments(self, parser):
        parser.add_argument("--demo", action="store_true", help="also load the demo office (make run)")

    def handle(self, *args, demo, **options):
        for name, *step_args in SETUP_STEPS:
            if name in DEMO_ONLY_STEPS and not demo:
                continue
            call_command(name, *step_args)
