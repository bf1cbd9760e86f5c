"""The words of a question that can find a passage: the word half of hybrid retrieval reads these
(assistant.selectors, archive), and so does bench/experts.py, which runs without Django."""

from __future__ import annotations

import re

_STOPWORDS = frozenset(
    "a an the of to and or in on at for by with about from as is are was were be been do does did what which who "
    "whom whose when where why how that this these those it its they them their we our you your i me my he she "
    "his her there here than then so not no any all some can could would should will shall may might must "
    "discuss discussed discussion talk talked say said think thought group team meeting meetings".split()
)


def content_words(text: str) -> list[str]:
    """The words of a question that can find a passage (no stopwords, no single letters), once each."""
    return list(dict.fromkeys(w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS and len(w) > 1))
