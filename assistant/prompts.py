"""Prompts are versioned files (`assistant/prompt_files/<name>.v<N>.txt`): every model call records the
name and version it used, so a change in behaviour can be traced to a change in wording.

File format: the system message, a line `---user---`, then the user message. `$name` placeholders
(string.Template) are filled from the caller's variables; JSON braces need no escaping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template

PROMPT_DIR = Path(__file__).resolve().parent / "prompt_files"
_FILE = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.txt$")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    system: str
    user: str

    def messages(self, **variables) -> list[dict]:
        return [
            {"role": "system", "content": Template(self.system).substitute(variables).strip()},
            {"role": "user", "content": Template(self.user).substitute(variables).strip()},
        ]


@cache
def prompt(name: str) -> Prompt:
    """The newest version of prompt `name`."""
    versions = []
    for path in PROMPT_DIR.glob(f"{name}.v*.txt"):
        match = _FILE.match(path.name)
        if match and match["name"] == name:
            versions.append((int(match["version"]), path))
    if not versions:
        raise LookupError(f"no prompt file for {name!r} in {PROMPT_DIR}")
    version, path = max(versions)
    system, sep, user = path.read_text().partition("---user---")
    if not sep:
        raise ValueError(f"{path.name} has no ---user--- line")
    return Prompt(name=name, version=f"v{version}", system=system, user=user)
