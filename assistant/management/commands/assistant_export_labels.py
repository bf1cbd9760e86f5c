"""Write the turns people labelled by deciding on proposals, as bench/train_ranker.py --extra-labels reads them."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand

from assistant.registry import training_labels_from_decisions, training_set_hash


class Command(BaseCommand):
    help = "Export labelled turns from people's approve/edit/reject decisions to a JSON file."

    def add_arguments(self, parser):
        parser.add_argument("path", help="where to write the JSON ({kind: [{features, label}]})")
        parser.add_argument("--kind", choices=["action_items", "decisions", "all"], default="all")

    def handle(self, *args, path, kind, **options):
        labels = {}
        for name in (["action_items", "decisions"] if kind == "all" else [kind]):
            labels.update(training_labels_from_decisions(name))
        Path(path).write_text(json.dumps(labels) + "\n")
        counts = ", ".join(f"{name} {len(rows)} ({sum(r['label'] for r in rows)} positive)" for name, rows in labels.items())
        self.stdout.write(f"wrote {path}: {counts}; sha256 {training_set_hash(labels)}")
