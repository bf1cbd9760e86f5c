from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector for the room knowledge index (assistant); created here so every app can rely on it."""

    dependencies = []
    operations = [VectorExtension()]
