"""Regenerate the event tables of docs/protocol.md from the apps' event catalogues (office/protocol.py)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from office import protocol

DOC = Path(settings.BASE_DIR) / "docs" / "protocol.md"


class Command(BaseCommand):
    help = "Rewrite the generated event tables in docs/protocol.md (--check: only say whether they are current)."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="exit 1 if the document is out of date")

    def handle(self, *args, check: bool = False, **options):
        text = DOC.read_text()
        fresh = protocol.regenerate(text, import_string)
        if fresh == text:
            self.stdout.write("docs/protocol.md is current")
            return
        if check:
            raise CommandError("docs/protocol.md is out of date: run manage.py protocol_doc")
        DOC.write_text(fresh)
        self.stdout.write("docs/protocol.md regenerated")
