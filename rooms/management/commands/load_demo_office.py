from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from rooms.demo import demo_office_load


class Command(BaseCommand):
    help = "Load the demo office (once) and print the demo members' sign-in details."

    def handle(self, *args, **options):
        credentials: Path = settings.DATA_DIR / "demo-credentials.txt"
        created = demo_office_load()
        if created:
            settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
            credentials.write_text("".join(f"{user} {password}\n" for user, password in created.items()))
            credentials.chmod(0o600)
            self.stdout.write("Demo office created.")
        if credentials.exists():
            self.stdout.write("Demo sign-ins (username / password; dana is the admin):")
            for line in credentials.read_text().splitlines():
                user, password = line.split(" ", 1)
                self.stdout.write(f"  {user:<8} {password}")
