"""How the code is shaped: the largest modules, and imports between apps by direction.

    .venv/bin/python scripts/code_shape.py [--top 10]

Counts module-level and function-level `import` statements (not strings); migrations are left out.
The allowed directions are enforced by import-linter (`pyproject.toml`); this prints the numbers.
"""

from __future__ import annotations

import argparse
import ast
import collections
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
APPS = ["office", "rooms", "transcription", "assistant", "automation", "iot"]


def modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield app, path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    sizes, edges, files = [], collections.Counter(), collections.defaultdict(set)
    for app, path in modules():
        text = path.read_text()
        sizes.append((text.count("\n"), path.relative_to(ROOT)))
        for node in ast.walk(ast.parse(text)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in APPS and top != app:
                    edges[(app, top)] += 1
                    files[(app, top)].add(path)
    print(f"largest modules (of {len(sizes)}):")
    for lines, path in sorted(sizes, reverse=True)[: args.top]:
        print(f"  {lines:5d}  {path}")
    print("imports between apps (importer -> imported: statements, files):")
    for (a, b), n in sorted(edges.items()):
        print(f"  {a:14s} -> {b:14s} {n:3d}  {len(files[(a, b)]):2d}")


if __name__ == "__main__":
    main()
