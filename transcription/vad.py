"""Streaming voice-activity detection with the Silero VAD (v6) ONNX model bundled in faster-whisper.

faster-whisper's own `get_speech_timestamps` runs the model over a whole array with a fresh LSTM
state each call. For live audio we keep the recurrent state (h, c) and the 64-sample context
between calls, so feeding a stream in pieces gives the same per-window probabilities as running
it whole, and each 512-sample window (32 ms at 16 kHz) is scored exactly once. An idle stream
costs one small ONNX call per `accept()`.

Per window we keep a speech flag with hysteresis (on at `threshold`, off below `neg_threshold`),
which the engine uses to gate Whisper, find pauses and drop words that lie in silence.
No Django here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000
WINDOW = 512  # samples per Silero window at 16 kHz
CONTEXT = 64  # samples of left context the v5/v6 model expects before each window

_model_lock = threading.Lock()
_model = None


def get_vad_session():
    """The shared onnxruntime session of faster-whisper's bundled Silero VAD (loaded once)."""
    global _model
    with _model_lock:
        if _model is None:
            from faster_whisper.vad import get_vad_model

            _model = get_vad_model()  # SileroVADModel: 1 intra-op thread, CPU provider
        return _model.session


@dataclass(frozen=True)
class VadSettings:
    threshold: float = 0.5
    neg_threshold: float = 0.35


class StreamingVAD:
    """Incremental Silero VAD over a 16 kHz float32 mono stream.

    `accept(samples)` scores every complete 512-sample window and returns the new speech flags
    (one bool per window, in order). Window `i` covers samples [i*512, (i+1)*512) of the stream.
    """

    def __init__(self, settings: VadSettings | None = None):
        self.settings = settings or VadSettings()
        self._session = get_vad_session()
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._leftover = np.zeros(0, dtype=np.float32)
        self._triggered = False
        self.windows = 0  # windows scored so far
        self.last_prob = 0.0

    @property
    def samples_scored(self) -> int:
        return self.windows * WINDOW

    def accept(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score the complete windows now available. Returns (probs, speech_flags)."""
        audio = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._leftover.size:
            audio = np.concatenate([self._leftover, audio])
        n = audio.size // WINDOW
        self._leftover = audio[n * WINDOW :].copy()
        if n == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=bool)
        windows = audio[: n * WINDOW].reshape(n, WINDOW)
        contexts = np.empty((n, CONTEXT), dtype=np.float32)
        contexts[0] = self._context
        if n > 1:
            contexts[1:] = windows[:-1, -CONTEXT:]
        batch = np.ascontiguousarray(np.concatenate([contexts, windows], axis=1))
        probs, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        self._context = windows[-1, -CONTEXT:].copy()

        flags = np.empty(n, dtype=bool)
        on, off = self.settings.threshold, self.settings.neg_threshold
        trig = self._triggered
        for i, p in enumerate(probs):
            if p >= on:
                trig = True
            elif p < off:
                trig = False
            flags[i] = trig
        self._triggered = trig
        self.windows += n
        self.last_prob = float(probs[-1])
        return probs, flags
