"""Create or update a person at the test provider: name, address, password and exactly these groups."""

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--email", default="")
        parser.add_argument("--group", action="append", default=[])

    def handle(self, *args, username, password, first_name, last_name, email, group, **options):
        user, _ = User.objects.update_or_create(
            username=username, defaults={"first_name": first_name, "last_name": last_name, "email": email})
        user.set_password(password)
        user.save()
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in group])
        self.stdout.write(str(user.pk))  # the person's `sub` (django-oidc-provider's default)
