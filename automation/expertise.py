"""Completed tasks as evidence for "who knows about X?" (assistant.experts asks through the
`expert_evidence` signal; this app answers, the assistant never imports it).

A task someone finished on a topic says they know it. Tasks are not in the knowledge index (they
change owner and status often), so they are found here by their words (full text over title and
description, only done tasks with an owner in the rooms the asker may read), then scored by meaning
with the same embedder as the index, so their similarity is comparable with the index's passages.
"""

from __future__ import annotations

import numpy as np
from django.contrib.postgres.search import SearchRank, SearchVector

from assistant import embeddings
from assistant.expert_ranking import COMPLETED
from assistant.selectors import any_word_query

from .models import Task

MAX_TASKS = 30


def completed_tasks_evidence(*, query: str, vector, room_ids: list[int], limit: int = MAX_TASKS) -> list[dict]:
    """Done tasks in `room_ids` (checked by the caller) whose words match `query`, best first:
    [{"person", "kind", "text", "similarity", "key", "room", "citation"}]."""
    words = any_word_query(query)
    if words is None or not room_ids:
        return []
    document = SearchVector("title", "description", config="english")
    tasks = list(Task.objects.filter(status=Task.Status.DONE, owner__isnull=False, owner__is_active=True,
                                     room_id__in=room_ids)
                 .annotate(document=document).filter(document=words)
                 .annotate(rank=SearchRank(document, words)).order_by("-rank", "-updated_at", "pk")[:limit])
    if not tasks:
        return []
    texts = [f"{task.title}. {task.description}".strip() for task in tasks]
    similarity = embeddings.embed(texts) @ np.asarray(vector, dtype=np.float32)
    return [{"person": task.owner_id, "kind": COMPLETED, "text": text, "similarity": float(score),
             "key": f"task:{task.pk}", "room": task.room_id,
             "citation": {"label": f"Task done: {task.title}",
                          "url": f"/tasks/?room={task.room_id}&closed=1#task-{task.pk}"}}
            for task, text, score in zip(tasks, texts, similarity, strict=True)]
