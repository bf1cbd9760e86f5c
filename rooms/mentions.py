"""@mentions in chat: who a message names, and which of them may read it.

Syntax (docs/protocol.md, "Mentions"): `@username` (letters, digits and `_ . + -`, any case; a
trailing full stop ends the sentence, not the name) or `@"Display Name"` (in double quotes, any
case). Only active members who may read the conversation count, never the author: naming someone
who cannot read a private room tells them nothing, not even that the room talked about them.
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.db.models.functions import Lower

from . import selectors
from .models import ChatMessage, Profile

User = get_user_model()

MENTION = re.compile(r'(?<![\w@])@(?:"([^"\n]{1,80})"|([\w.+-]{1,150}))')
MAX_MENTIONS = 20  # per message; more is a broadcast, not a mention


def mention_tokens(body: str) -> tuple[set[str], set[str]]:
    """(usernames, display names) named in `body`, lower-cased; at most MAX_MENTIONS in all."""
    usernames: set[str] = set()
    names: set[str] = set()
    for match in MENTION.finditer(body):
        if len(usernames) + len(names) >= MAX_MENTIONS:
            break
        quoted, bare = match.groups()
        if quoted is not None and quoted.strip():
            names.add(" ".join(quoted.split()).lower())
        elif bare is not None and bare.rstrip("."):
            usernames.add(bare.rstrip(".").lower())
    return usernames, names


def chat_mentioned_readers(message: ChatMessage) -> list:
    """The members `message` mentions who may read its conversation, the author excluded, by id."""
    if "@" not in message.body:
        return []
    usernames, names = mention_tokens(message.body)
    if not usernames and not names:
        return []
    named = User.objects.annotate(username_lower=Lower("username")).filter(
        Q(username_lower__in=usernames)
        | Q(pk__in=Profile.objects.annotate(name_lower=Lower("display_name"))
            .filter(name_lower__in=names).values("user_id")),
        is_active=True,
    ).exclude(pk=message.author_id)
    # The one access rule for conversations (selectors), asked per person named: at most MAX_MENTIONS.
    return [user for user in named.select_related("profile").order_by("pk").distinct()
            if selectors.threads_visible_to(user).filter(pk=message.thread_id).exists()]
