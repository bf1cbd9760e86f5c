"""Test audio: synthesised speech (espeak-ng), silence and noise, as float32 mono 16 kHz arrays.

No Django, no scipy: resampling goes through PyAV's AudioResampler (libswresample).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np

SAMPLE_RATE = 16_000


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def wav_16k(path: str | os.PathLike) -> np.ndarray:
    """Decode any audio file PyAV can read to float32 mono 16 kHz in [-1, 1]."""
    import av

    resampler = av.AudioResampler(format="fltp", layout="mono", rate=SAMPLE_RATE)
    parts: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):  # flush the resampler's tail
            parts.append(out.to_ndarray().reshape(-1))
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def speak(
    text: str, path: str | os.PathLike | None = None, *, wpm: int = 160, voice: str = "en-us"
) -> np.ndarray:
    """Synthesise `text` with espeak-ng and return it as float32 mono 16 kHz.

    With `path`, the 22.05 kHz WAV espeak-ng writes is kept there; otherwise a temp file is used.
    """
    if not espeak_available():
        raise RuntimeError("espeak-ng is not installed")
    tmp = None
    if path is None:
        fd, tmp = tempfile.mkstemp(suffix=".wav")
        os.close(fd)
        path = tmp
    try:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(path), text],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return wav_16k(path)
    finally:
        if tmp is not None:
            os.unlink(tmp)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.float32)


def noise(seconds: float, level: float = 0.01, seed: int = 0) -> np.ndarray:
    """White noise with standard deviation `level` (0.01 ≈ -40 dBFS)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(round(seconds * SAMPLE_RATE))) * level).astype(np.float32)


def chunks(samples: np.ndarray, seconds: float = 0.5):
    """Yield consecutive pieces of `seconds` length (the last one may be shorter)."""
    step = int(round(seconds * SAMPLE_RATE))
    for i in range(0, len(samples), step):
        yield samples[i : i + step]


def write_wav_16k(samples: np.ndarray, path: str | os.PathLike) -> str:
    """Save float32 mono 16 kHz samples as a 16-bit PCM WAV (what a fake microphone plays)."""
    import wave

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    return str(path)


def utterance_wav(text: str, path: str | os.PathLike, *, lead_s: float = 1.0, tail_s: float = 1.5) -> str:
    """Speech with silence around it, as a person talking after a pause and then stopping."""
    return write_wav_16k(np.concatenate([silence(lead_s), speak(text), silence(tail_s)]), path)
