"""Register every ranker saved in assistant/rankers/ in the registry (safe to run again); a kind with no
current version gets OFFICE_RANKER_VERSION, what the product used before the registry."""

from django.core.management.base import BaseCommand

from assistant.registry import current_version, versions_register_installed


class Command(BaseCommand):
    help = "Register the saved rankers and make OFFICE_RANKER_VERSION current where none is."

    def handle(self, *args, **options):
        for row in versions_register_installed():
            self.stdout.write(f"registered: {row.kind} {row.version} ({row.stage})")
        for kind in ("action_items", "decisions"):
            self.stdout.write(f"current {kind} ranker: {current_version(kind)}")
