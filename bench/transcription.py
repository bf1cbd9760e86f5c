"""Live transcription benchmark: bare faster-whisper and the live path side by side (WER, deviation,
compute), silence/music/noise/babble, and caption latency at the client through the whole path
(aiortc client -> Daphne's server peer -> Redis audio stream -> `manage.py transcription_worker` ->
caption.final on the office socket) for 1, 2 and 4 simultaneous speakers.

    .venv/bin/python bench/transcription.py                 # everything, about 10 minutes on 2 cores
    .venv/bin/python bench/transcription.py --skip-live     # only the offline part (~4 minutes)
    .venv/bin/python bench/transcription.py --speakers 1    # only the single-speaker live run
    OFFICE_WHISPER_MODEL_PATH=... bench/transcription.py     # another CTranslate2 Whisper (e.g. base)

Part 1 (offline, in this process, no services). Per file, interleaved, best of --repeats: (bare)
`transcribe_file`, one whole-file transcribe() with the live path's decoding options; (live) the
worker's loop: a `SpeakerStream` fed 200 ms chunks with `process()` every 200 ms and `finish()` at
the end. Same model, same settings. a) 8 espeak-ng sentences with known text (WER of both);
b) ../shared/speech-dev, real human speech without reference text: deviation = WER of the live
finals against the bare text (also against faster-whisper's defaults, the README's reference), and
words of live finals inside the 77 s mix's silent gaps; c) engine latency over the live WAV;
d) 60 s each of silence, noise with clicks, music and babble: words out (should be 0).

Part 2 (live): a throwaway stack (embedded PostgreSQL/Valkey/MQTT, migrate, a 40x24 floor with the
assistant room Atlas made by bench/_transcription_setup.py, Daphne and one transcription worker
subprocess, both with OFFICE_RTC_HOST_ADDRESSES=127.0.0.1). Each speaker is a websockets client that
walks into Atlas and attaches a MediaPlayer WAV with aiortc; the WAV is the 8 sentences separated by
1.5 s pauses (each speaker in its own order, starting 0.7 s after the previous one). Latency of a
phrase = arrival of the caption.final that completes it at the speaker's socket minus the wall-clock
time the phrase's last sample was handed to the sender (recorded per 20 ms frame by a wrapper around
the player's track).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from common import (  # noqa: E402
    ROOT,
    BenchStack,
    CpuMeter,
    latency_summary,
    log,
    percentile,
    print_table,
    write_results,
    ws_close,
    ws_connect,
)

from tests.audio import SAMPLE_RATE, espeak_available, silence, speak, write_wav_16k  # noqa: E402

OVERHEAD_TARGET = 1.5  # live compute / bare compute, partials on
DEVIATION_TARGET = 0.005  # live finals' WER against the bare pass
P95_TARGET_S = {1: 1.5, 2: 1.5, 4: 2.0}  # caption p95 by simultaneous speakers (2 cores)
SPEECH_DEV = ROOT.parent / "shared" / "speech-dev"
CHUNK = int(0.2 * SAMPLE_RATE)  # transcription/peer.py CHUNK_SECONDS
from transcription.engine import LIVE_OPTIONS, LIVE_PROCESS_EVERY_S  # noqa: E402  (what the worker uses)

PROCESS_EVERY = int(LIVE_PROCESS_EVERY_S * SAMPLE_RATE)
INTO_ATLAS = [(9, 14), (8, 13), (7, 12), (6, 11), (6, 10), (6, 9), (6, 8), (6, 7), (6, 6), (6, 5)]

SENTENCES = [
    "Let's start with a quick update on the product launch before we move on to the budget.",
    "The design team finished the new onboarding screens and they are ready for review.",
    "I think we should push the release to next week so that testing can catch up.",
    "Can everyone please send me their status reports by the end of the day on Thursday?",
    "Our biggest risk right now is the integration with the payment provider.",
    "Marketing wants to run a small pilot with two customers in the northern region first.",
    "We agreed to hire another engineer for the mobile team next quarter.",
    "Please add the open questions to the shared document so we can discuss them tomorrow.",
]

# ------------------------------------------------------------------------------------------------
# Text: normalisation, WER, alignment
# ------------------------------------------------------------------------------------------------


def words_of(text: str) -> list[str]:
    text = text.replace("\u2019", "'").lower()
    return re.sub(r"[^\w\s]", "", text).split()


def align(ref: list[str], hyp: list[str]) -> tuple[int, list[tuple[int | None, int | None]]]:
    """Levenshtein distance and one optimal alignment: pairs (ref index, hyp index), None for a gap."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int32)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and d[i, j] == d[i - 1, j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    pairs.reverse()
    return int(d[n, m]), pairs


def wer(ref_text: str, hyp_text: str) -> tuple[int, int]:
    """(edits, reference words)."""
    ref = words_of(ref_text)
    return align(ref, words_of(hyp_text))[0], len(ref)


def speech_end_s(samples: np.ndarray, threshold: float = 0.01) -> float:
    """Seconds to just after the last sample louder than `threshold` (espeak pads a little silence)."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return (int(loud[-1]) + 1) / SAMPLE_RATE if loud.size else 0.0


def phrase_coverage(phrases, finals: list[tuple[float, str, object]]) -> list[dict]:
    """Which phrases the finals (time, text, tag) cover, and when.

    The reference (all phrases) is aligned with the hypothesis (all finals, in order); a phrase counts
    as captioned when at least half of its words are matched exactly, at the latest time among the
    finals holding its aligned words (`done_at`); `tags` are those finals' tags.
    """
    ref, owner = [], []
    for p, phrase in enumerate(phrases):
        w = words_of(phrase.text)
        ref += w
        owner += [p] * len(w)
    hyp, hyp_at, hyp_tag = [], [], []
    for at, text, tag in finals:
        w = words_of(text)
        hyp += w
        hyp_at += [at] * len(w)
        hyp_tag += [tag] * len(w)
    _dist, pairs = align(ref, hyp)
    out = []
    for p, phrase in enumerate(phrases):
        n = sum(1 for o in owner if o == p)
        got = [(i, j) for i, j in pairs if i is not None and owner[i] == p and j is not None]
        matched = sum(1 for i, j in got if ref[i] == hyp[j])
        captioned = matched >= max(1, (n + 1) // 2)
        out.append({
            "phrase": p, "words": n, "matched": matched, "captioned": captioned,
            "end_in_wav_s": round(phrase.end_s, 2),
            "done_at": max(hyp_at[j] for _i, j in got) if captioned else None,
            "tags": sorted({hyp_tag[j] for _i, j in got}),
        })
    return out


# ------------------------------------------------------------------------------------------------
# Audio material
# ------------------------------------------------------------------------------------------------


@dataclass
class Clip:
    text: str
    speech: np.ndarray  # espeak output, 16 kHz float32
    path: Path  # 1 s silence + speech + 1.5 s silence
    audio_s: float
    speech_end_s: float  # in the clip file


@dataclass
class Phrase:
    text: str
    end_s: float  # end of its last loud sample in the WAV


def make_clips(workdir: Path) -> list[Clip]:
    clips = []
    for k, text in enumerate(SENTENCES):
        speech = speak(text)
        audio = np.concatenate([silence(1.0), speech, silence(1.5)])
        path = Path(write_wav_16k(audio, workdir / f"clip{k}.wav"))
        clips.append(Clip(text, speech, path, len(audio) / SAMPLE_RATE, 1.0 + speech_end_s(speech)))
    return clips


def make_monologue(clips: list[Clip], order: list[int], path: Path, *, lead_s: float, pause_s: float,
                   tail_s: float) -> tuple[Path, list[Phrase], float]:
    parts = [silence(lead_s)]
    phrases = []
    pos = len(parts[0])
    for n, k in enumerate(order):
        if n:
            parts.append(silence(pause_s))
            pos += len(parts[-1])
        speech = clips[k].speech
        phrases.append(Phrase(clips[k].text, pos / SAMPLE_RATE + speech_end_s(speech)))
        parts.append(speech)
        pos += len(speech)
    parts.append(silence(tail_s))
    audio = np.concatenate(parts)
    return Path(write_wav_16k(audio, path)), phrases, len(audio) / SAMPLE_RATE


# ------------------------------------------------------------------------------------------------
# Part 1: offline engine
# ------------------------------------------------------------------------------------------------


def whisper_settings():
    """What `transcription.worker.engine_settings()` gives with this environment (no Django here)."""
    from transcription.engine import WhisperSettings, default_model_path

    return WhisperSettings(
        model_path=os.environ.get("OFFICE_WHISPER_MODEL_PATH") or default_model_path(),
        device=os.environ.get("OFFICE_WHISPER_DEVICE", "cpu"),
        compute_type=os.environ.get("OFFICE_WHISPER_COMPUTE_TYPE", "int8"),
        cpu_threads=int(os.environ.get("OFFICE_WHISPER_CPU_THREADS", "2")),
        model_id=os.environ.get("OFFICE_WHISPER_MODEL_ID", "whisper-tiny.en-ct2-int8"),
        language=os.environ.get("OFFICE_WHISPER_LANGUAGE", "en") or None,
        batch_size=int(os.environ.get("OFFICE_WHISPER_BATCH_SIZE", "0")),
    )


def load_baseline_engine(rev: str):
    """transcription/engine.py as it was at git revision `rev` (the "before" of a comparison), as a module."""
    import types

    source = subprocess.run(["git", "show", f"{rev}:transcription/engine.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("baseline_engine")
    module.__file__ = f"{rev}:transcription/engine.py"
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source.replace("from .vad import", "from transcription.vad import"), module.__file__, "exec"),
         module.__dict__)
    return module


BASELINE = None  # set by --baseline: (module, its WhisperSettings)


def stream_clip(model, settings, audio: np.ndarray, *, partials: bool = True, baseline: bool = False) -> dict:
    """The worker's loop over one clip, as fast as possible: feed 200 ms chunks, process() as the worker
    does (LIVE_PROCESS_EVERY_S, LIVE_OPTIONS), finish(). With `baseline`, the --baseline revision's engine."""
    from transcription.engine import SpeakerStream

    t0 = time.perf_counter()
    if baseline:
        engine, old_settings = BASELINE
        stream = engine.SpeakerStream(model, old_settings, speaker_key="bench", options=engine.LIVE_OPTIONS)
    else:
        stream = SpeakerStream(model, settings, speaker_key="bench", options=LIVE_OPTIONS)
    fed = last = 0
    finals = []  # (stream position s when emitted, text, seconds of the call that emitted it, at_finish)
    words = []  # (word, start_s, end_s) of every final
    partials_sent = 0
    call_s = []
    for i in range(0, len(audio), CHUNK):
        piece = audio[i:i + CHUNK]
        stream.feed(piece)
        fed += len(piece)
        if fed - last >= PROCESS_EVERY:
            last = fed
            c0 = time.perf_counter()
            events = stream.process() if baseline else stream.process(partials=partials)
            call_s.append(time.perf_counter() - c0)
            for e in events:
                if e.kind == "final":
                    finals.append((fed / SAMPLE_RATE, e.text, call_s[-1], False))
                    words += [(w, ws, we) for w, ws, we, _p in e.words]
                else:
                    partials_sent += 1
    c0 = time.perf_counter()
    for e in stream.finish():
        if e.kind == "final":
            finals.append((fed / SAMPLE_RATE, e.text, time.perf_counter() - c0, True))
            words += [(w, ws, we) for w, ws, we, _p in e.words]
    elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "finals": finals, "words": words, "partials": partials_sent,
            "whisper_runs": stream.whisper_runs, "whisper_seconds": stream.whisper_seconds,
            "partial_runs": getattr(stream, "partial_runs", 0), "partial_seconds": getattr(stream, "partial_seconds", 0.0),
            "process_calls": len(call_s), "max_call_s": max(call_s) if call_s else 0.0}


def bare_defaults(model, settings, audio: np.ndarray) -> tuple[str, float]:
    """The speech-dev README's reference: one transcribe() with faster-whisper's defaults but the model,
    language and beam size of the live path."""
    t0 = time.perf_counter()
    segments, _ = model.transcribe(audio, language=settings.language, beam_size=settings.beam_size)
    text = "".join(seg.text for seg in segments).strip()
    return text, time.perf_counter() - t0


def bare_filtered(model, settings, audio: np.ndarray) -> str:
    """The bare text without the segments the live path's hallucination filter drops ("Thank you." after
    the speech ends, ...): the part of the deviation that is the filter, not the streaming."""
    from transcription.engine import _transcribe_kwargs, segment_drop_reason

    segments, _ = model.transcribe(audio, **_transcribe_kwargs(settings))
    return "".join(seg.text for seg in segments if not segment_drop_reason(
        seg.text, no_speech_prob=seg.no_speech_prob, avg_logprob=seg.avg_logprob,
        compression_ratio=seg.compression_ratio)).strip()


def side_by_side(model, settings, path: Path, repeats: int) -> dict:
    """Bare pass and live path over one file, interleaved, best time of `repeats` each."""
    from tests.audio import wav_16k
    from transcription.engine import transcribe_file

    audio = wav_16k(path)
    bare_runs, live_runs, before_runs = [], [], []
    for _ in range(repeats):  # interleaved so all paths see the same machine load
        bare_runs.append(transcribe_file(path, settings))
        live_runs.append(stream_clip(model, settings, audio))
        if BASELINE is not None:
            before_runs.append(stream_clip(model, settings, audio, baseline=True))
    bare_text, bare_s = min(bare_runs, key=lambda r: r[1])
    live = min(live_runs, key=lambda r: r["seconds"])
    live_text = " ".join(f[1] for f in live["finals"]).strip()
    defaults_text, _ = bare_defaults(model, settings, audio)
    filtered_text = bare_filtered(model, settings, audio)
    dev, n = wer(bare_text, live_text)
    dev_filtered, n_filtered = wer(filtered_text, live_text)
    dev_defaults, n_defaults = wer(defaults_text, live_text)
    bare_vs_defaults, _ = wer(defaults_text, bare_text)
    before = {}
    if before_runs:
        best = min(before_runs, key=lambda r: r["seconds"])
        before_text = " ".join(f[1] for f in best["finals"]).strip()
        before_dev, _ = wer(bare_text, before_text)
        before = {"before_s": round(best["seconds"], 3),
                  "before_ratio": round(best["seconds"] / bare_s, 2) if bare_s else None,
                  "before_deviation": round(before_dev / n, 3) if n else 0.0, "_before_dev": before_dev,
                  "before_text": before_text}
    return {**before,
        "file": path.name, "audio_s": round(len(audio) / SAMPLE_RATE, 2), "bare_words": n,
        "bare_s": round(bare_s, 3), "live_s": round(live["seconds"], 3),
        "ratio": round(live["seconds"] / bare_s, 2) if bare_s else None,
        "finals": len(live["finals"]), "partials": live["partials"],
        "final_decodes": live["whisper_runs"], "final_s": round(live["whisper_seconds"], 3),
        "partial_decodes": live["partial_runs"], "partial_s": round(live["partial_seconds"], 3),
        "deviation": round(dev / n, 3) if n else 0.0, "_dev": dev,
        "deviation_vs_defaults": round(dev_defaults / n_defaults, 3) if n_defaults else 0.0,
        "_dev_defaults": dev_defaults, "_n_defaults": n_defaults, "_bare_vs_defaults": bare_vs_defaults,
        "deviation_vs_filtered": round(dev_filtered / n_filtered, 3) if n_filtered else 0.0,
        "_dev_filtered": dev_filtered, "_n_filtered": n_filtered,
        "bare_text": bare_text, "live_text": live_text, "defaults_text": defaults_text,
        "_words": live["words"],
    }


def words_in_gaps(words: list[tuple[str, float, float]], tsv: Path) -> list[str]:
    """Words of the live finals lying wholly inside the digital silence between the mix's parts."""
    parts = []
    for line in tsv.read_text().splitlines()[1:]:
        fields = line.split("\t")
        parts.append((float(fields[2]), float(fields[3])))
    gaps = [(a_end, b_start) for (_a0, a_end), (b_start, _b1) in zip(parts, parts[1:], strict=False)]
    return [w for w, start, end in words if any(g0 <= start and end <= g1 for g0, g1 in gaps)]


def totals(rows: list[dict]) -> dict:
    audio_s = sum(r["audio_s"] for r in rows)
    bare_s = sum(r["bare_s"] for r in rows)
    live_s = sum(r["live_s"] for r in rows)
    words = sum(r["bare_words"] for r in rows)
    return {
        "files": len(rows), "audio_s": round(audio_s, 2), "bare_s": round(bare_s, 3), "live_s": round(live_s, 3),
        "ratio": round(live_s / bare_s, 2), "bare_rtf": round(bare_s / audio_s, 3),
        "live_rtf": round(live_s / audio_s, 3),
        "final_s": round(sum(r["final_s"] for r in rows), 3), "partial_s": round(sum(r["partial_s"] for r in rows), 3),
        "final_decodes": sum(r["final_decodes"] for r in rows), "partial_decodes": sum(r["partial_decodes"] for r in rows),
        "partials": sum(r["partials"] for r in rows),
        "deviation": round(sum(r["_dev"] for r in rows) / words, 4) if words else 0.0,
        "deviation_vs_defaults": round(sum(r["_dev_defaults"] for r in rows)
                                       / max(sum(r["_n_defaults"] for r in rows), 1), 4),
        "bare_vs_defaults": round(sum(r["_bare_vs_defaults"] for r in rows)
                                  / max(sum(r["_n_defaults"] for r in rows), 1), 4),
        "deviation_vs_filtered": round(sum(r["_dev_filtered"] for r in rows)
                                       / max(sum(r["_n_filtered"] for r in rows), 1), 4),
        **({"before_s": round(sum(r["before_s"] for r in rows), 3),
            "before_ratio": round(sum(r["before_s"] for r in rows) / bare_s, 2),
            "before_rtf": round(sum(r["before_s"] for r in rows) / audio_s, 3),
            "before_deviation": round(sum(r["_before_dev"] for r in rows) / words, 4) if words else 0.0}
           if rows and "before_s" in rows[0] else {}),
    }


def make_music(seconds: float) -> np.ndarray:
    """Piano-like chords (decaying harmonics) with a beat: music without words."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    out = np.zeros_like(t)
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    for k in range(int(seconds / 0.5)):
        start = int(k * 0.5 * SAMPLE_RATE)
        seg = t[: int(0.5 * SAMPLE_RATE)]
        env = np.exp(-3.0 * seg)
        tone = sum(np.sin(2 * np.pi * f * h * seg) / h for f in chords[(k // 4) % 4] for h in (1, 2, 3))
        out[start:start + seg.size] += 0.05 * env * tone
    return out.astype(np.float32)


def make_babble(clips: list[Clip], seconds: float) -> np.ndarray:
    """Six overlapping voices, each sentence reversed (speech-like sound, no words), at a low level."""
    rng = np.random.default_rng(7)
    out = np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
    for _voice in range(6):
        pos = int(rng.uniform(0, 1.0) * SAMPLE_RATE)
        while pos < out.size:
            speech = clips[int(rng.integers(len(clips)))].speech[::-1]
            n = min(speech.size, out.size - pos)
            out[pos:pos + n] += 0.3 * speech[:n]
            pos += n + int(rng.uniform(0.1, 0.5) * SAMPLE_RATE)
    return out


def run_quiet(model, settings, clips: list[Clip]) -> list[dict]:
    """Silence, low noise with clicks, music and babble for 60 s each: how many words come out."""
    from tests.audio import noise, silence

    clicks = noise(60, level=0.003)
    clicks[:: SAMPLE_RATE * 3] = 0.6
    rows = []
    for name, audio in (("silence", silence(60)), ("noise + clicks", clicks), ("music", make_music(60)),
                        ("babble (6 reversed voices)", make_babble(clips, 60))):
        st = stream_clip(model, settings, audio)
        text = " ".join(f[1] for f in st["finals"])
        rows.append({"audio": name, "audio_s": 60, "words": len(words_of(text)), "partials": st["partials"],
                     "final_decodes": st["whisper_runs"], "cpu_s": round(st["seconds"], 2), "text": text[:120]})
        log(f"quiet: {name}: {rows[-1]['words']} words, {st['seconds']:.1f}s")
    return rows


def run_offline(clips: list[Clip], repeats: int, monologue: tuple[Path, list[Phrase], float]) -> dict:
    from tests.audio import wav_16k
    from transcription.engine import SpeakerStream, load_model, transcribe_file

    settings = whisper_settings()
    t0 = time.perf_counter()
    model = load_model(settings)
    load_s = time.perf_counter() - t0
    # Warm-up (first CTranslate2 call, VAD session, the decoder's own warm-up): not measured.
    transcribe_file(clips[0].path, settings)
    warm = SpeakerStream(model, settings)
    warm.feed(wav_16k(clips[0].path))
    warm.process()
    warm.finish()

    # Known text: espeak-ng clips.
    known = []
    for k, clip in enumerate(clips):
        row = side_by_side(model, settings, clip.path, repeats)
        be, n = wer(clip.text, row["bare_text"])
        le, _ = wer(clip.text, row["live_text"])
        row.update(clip=k, ref_words=n, bare_wer=round(be / n, 3), live_wer=round(le / n, 3), _be=be, _le=le,
                   reference=clip.text)
        if "before_text" in row:
            row["_bfe"] = wer(clip.text, row["before_text"])[0]
            row["before_wer"] = round(row["_bfe"] / n, 3)
        known.append(row)
        log(f"clip {k}: bare {row['bare_s']:.2f}s, live {row['live_s']:.2f}s")
    known_totals = totals(known)
    ref_words = sum(r["ref_words"] for r in known)
    known_totals.update(bare_wer=round(sum(r["_be"] for r in known) / ref_words, 4),
                        live_wer=round(sum(r["_le"] for r in known) / ref_words, 4))
    if BASELINE is not None:
        known_totals["before_wer"] = round(sum(r["_bfe"] for r in known) / ref_words, 4)

    # Real speech: ../shared/speech-dev, deviation of the live finals from the bare pass.
    real = []
    if SPEECH_DEV.is_dir():
        for path in sorted(SPEECH_DEV.glob("*.wav")):
            row = side_by_side(model, settings, path, repeats)
            real.append(row)
            log(f"{path.name}: bare {row['bare_s']:.2f}s, live {row['live_s']:.2f}s, deviation {row['deviation']}")
    singles = [r for r in real if r["file"] != "meeting_like_mix.wav"]
    mix = next((r for r in real if r["file"] == "meeting_like_mix.wav"), None)
    real_summary = {
        "clips": totals(singles) if singles else None,
        "mix": totals([mix]) if mix else None,
        "mix_words_in_gaps": words_in_gaps(mix["_words"], SPEECH_DEV / "meeting_like_mix.segments.tsv")
        if mix else None,
    }

    # The 1-speaker live WAV through the same loop: caption delay inside the engine.
    wav, phrases, wav_s = monologue
    st = stream_clip(model, settings, wav_16k(wav))
    cov = phrase_coverage(phrases, [(pos, text, k) for k, (pos, text, _c, _f) in enumerate(st["finals"])])
    replay = []
    for r, phrase in zip(cov, phrases, strict=True):
        row = {"phrase": r["phrase"], "captioned": r["captioned"], "audio_after_end_s": None, "call_s": None}
        if r["captioned"]:
            pos, _text, call_s, at_finish = st["finals"][max(r["tags"])]
            row.update(audio_after_end_s=round(pos - phrase.end_s, 2), call_s=round(call_s, 2), at_finish=at_finish,
                       engine_latency_s=round(pos - phrase.end_s + call_s, 2))
        replay.append(row)
    engine_lat = sorted(r["engine_latency_s"] for r in replay if r.get("engine_latency_s") is not None)
    capacity = {"after_rtf": round(st["seconds"] / wav_s, 3), "after_streams": round(wav_s / st["seconds"], 1)}
    if BASELINE is not None:
        before = stream_clip(model, settings, wav_16k(wav), baseline=True)
        capacity.update(before_rtf=round(before["seconds"] / wav_s, 3),
                        before_streams=round(wav_s / before["seconds"], 1))
    replay_summary = {
        "capacity": capacity,
        "wav_s": round(wav_s, 1), "phrases": len(replay), "captioned": len(engine_lat),
        "final_decodes": st["whisper_runs"], "partial_decodes": st["partial_runs"], "rtf": round(st["seconds"] / wav_s, 3),
        "engine_latency_p50_s": round(percentile(engine_lat, 50), 2) if engine_lat else None,
        "engine_latency_p95_s": round(percentile(engine_lat, 95), 2) if engine_lat else None,
        "per_phrase": replay,
    }
    quiet = run_quiet(model, settings, clips)
    for rows in (known, real):
        for r in rows:
            for key in [k for k in r if k.startswith("_")]:
                del r[key]
    return {
        "settings": {"model": settings.model_path, "model_id": settings.model_id, "device": settings.device,
                     "compute_type": settings.compute_type, "cpu_threads": settings.cpu_threads,
                     "beam_size": settings.beam_size, "batch_size": settings.batch_size,
                     "model_load_s": round(load_s, 2), "repeats": repeats},
        "known": {"summary": known_totals, "clips": known},
        "real": {"summary": real_summary, "files": real},
        "replay": replay_summary,
        "quiet": quiet,
    }


# ------------------------------------------------------------------------------------------------
# Part 2: live path
# ------------------------------------------------------------------------------------------------


def timed_track_class():
    from aiortc.mediastreams import MediaStreamTrack

    class TimedTrack(MediaStreamTrack):
        """Passes the MediaPlayer's audio through, noting when each frame is handed to the sender."""

        kind = "audio"

        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.frames: list[tuple[float, float]] = []  # (frame start in the file s, wall time)

        async def recv(self):
            frame = await self.inner.recv()
            self.frames.append((float(frame.time), time.time()))
            return frame

        def stop(self):
            super().stop()
            self.inner.stop()

        def wall_of(self, file_s: float) -> float | None:
            """Wall time at which the sample at `file_s` left the player (interpolated in its frame)."""
            best = None
            for start, wall in self.frames:
                if start > file_s:
                    break
                best = (start, wall)
            if best is None or file_s - best[0] > 0.1:  # never played (or far past the last frame)
                return None
            return best[1] + (file_s - best[0])

    return TimedTrack


class Client:
    """One member on the office socket: collects frames, answers wait_for()."""

    def __init__(self, member: dict):
        self.member = member
        self.ws = None
        self.frames: list[tuple[float, dict]] = []  # (arrival wall time, frame) for captions/status/errors
        self.finals: list[tuple[float, dict]] = []  # (arrival, segment)
        self.partials: dict[int, int] = {}  # speaker id -> caption.partial frames
        self.statuses: list[tuple[float, dict]] = []
        self.errors: list[dict] = []
        self._waiters: list[tuple[str, asyncio.Future]] = []
        self.reader: asyncio.Task | None = None
        self.closing = False
        self.unexpected_close = False
        self.on_final = None
        self.x = self.y = 0
        self.rejected: dict | None = None

    async def connect(self, uri: str, origin: str) -> dict:
        self.ws = await ws_connect(uri, origin, self.member["sessionid"])
        self.reader = asyncio.create_task(self._read())
        return await self.wait_for("hello", 15)

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                now = time.time()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "caption.final":
                    self.finals.append((now, frame["segment"]))
                    if self.on_final is not None:
                        self.on_final()
                elif kind == "caption.partial":
                    sid = frame["speaker"]["id"]
                    self.partials[sid] = self.partials.get(sid, 0) + 1
                elif kind == "transcription.status":
                    self.statuses.append((now, frame))
                elif kind == "error":
                    self.errors.append(frame)
                elif kind == "move.rejected":
                    self.rejected = frame
                elif kind == "hello":
                    self.x, self.y = frame["you"]["x"], frame["you"]["y"]
                for want, fut in list(self._waiters):
                    if not fut.done() and (want == kind or (kind == "error" and want != "hello")):
                        fut.set_result(frame)
        except ConnectionClosed:
            pass
        if not self.closing:
            self.unexpected_close = True
        for _want, fut in self._waiters:
            if not fut.done():
                fut.set_exception(ConnectionError("socket closed"))

    async def wait_for(self, kind: str, timeout: float) -> dict:
        fut = asyncio.get_running_loop().create_future()
        entry = (kind, fut)
        self._waiters.append(entry)
        try:
            frame = await asyncio.wait_for(fut, timeout)
        finally:
            self._waiters.remove(entry)
        if frame.get("type") == "error":
            raise RuntimeError(f"{self.member['username']}: error frame while waiting for {kind}: {frame}")
        return frame

    async def send(self, frame: dict) -> None:
        await self.ws.send(json.dumps(frame))

    async def walk_into_atlas(self) -> dict:
        """Walk from wherever the server put us to the door (6, 6) and one step inside, 5 steps a second."""
        waiter = asyncio.ensure_future(self.wait_for("meeting.state", 30))
        await asyncio.sleep(0)
        seq = 0
        for _ in range(60):
            if (self.x, self.y) == (6, 5):
                break
            if self.x != 6 and self.y > 11:  # open space below the room: diagonally towards (6, 11)
                nx, ny = self.x + (self.x < 6) - (self.x > 6), self.y - 1
            elif self.x != 6:  # level with the door's approach: sideways (no corners cut near walls)
                nx, ny = self.x + (self.x < 6) - (self.x > 6), self.y
            else:  # straight up through the door (6, 6)
                nx, ny = 6, self.y - 1 if self.y > 5 else self.y + 1
            seq += 1
            self.rejected = None
            await self.send({"type": "move", "x": nx, "y": ny, "seq": seq})
            await asyncio.sleep(0.22)  # the server allows 5 steps a second (burst 3)
            if self.rejected is None:
                self.x, self.y = nx, ny
            else:
                self.x, self.y = self.rejected["x"], self.rejected["y"]
                await asyncio.sleep(0.5)
        else:
            waiter.cancel()
            raise RuntimeError(f"{self.member['username']} could not walk into Atlas (at {self.x},{self.y})")
        return (await waiter)["meeting"]

    async def close(self) -> None:
        self.closing = True
        await ws_close(self.ws, self.reader)


@dataclass
class Speaker:
    client: Client
    wav: Path
    phrases: list[Phrase]
    wav_s: float
    pc: object = None
    player: object = None
    track: object = None
    answer_at: float = 0.0
    offer_at: float = 0.0
    results: list[dict] = field(default_factory=list)

    async def attach(self) -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription
        from aiortc.contrib.media import MediaPlayer

        self.player = MediaPlayer(str(self.wav))
        self.track = timed_track_class()(self.player.audio)
        self.pc = RTCPeerConnection()
        self.pc.addTrack(self.track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        waiter = asyncio.ensure_future(self.client.wait_for("rtc.answer", 20))
        await asyncio.sleep(0)
        self.offer_at = time.time()
        await self.client.send({"type": "rtc.offer", "sdp": self.pc.localDescription.sdp})
        answer = await waiter
        self.answer_at = time.time()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    @property
    def playback_start(self) -> float | None:
        return self.track.wall_of(0.0) if self.track is not None and self.track.frames else None

    def own_finals(self) -> list[tuple[float, dict]]:
        me = self.client.member["id"]
        return sorted(((t, s) for t, s in self.client.finals if s["speaker"]["id"] == me), key=lambda f: f[1]["seq"])

    def evaluate(self, until: float | None = None) -> list[dict]:
        """Per phrase: captioned?, latency. Finals arriving after `until` do not count."""
        finals = [(at, seg["text"], seg["seq"]) for at, seg in self.own_finals() if until is None or at <= until]
        out = phrase_coverage(self.phrases, finals)
        for r, phrase in zip(out, self.phrases, strict=True):
            end_wall = self.track.wall_of(phrase.end_s) if self.track is not None else None
            r["latency_s"] = (round(r.pop("done_at") - end_wall, 3) if r["captioned"] and end_wall is not None
                              else None)
            r["final_seqs"] = r.pop("tags")
        return out

    def done(self) -> bool:
        return all(r["captioned"] for r in self.evaluate())


def worker_log_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


async def release(speakers: list[Speaker]) -> None:
    """Close peers, players and sockets (idempotent; also after errors, so no player thread lingers)."""
    for s in speakers:
        try:
            if s.pc is not None:
                await s.pc.close()
            if s.track is not None:
                s.track.stop()
            elif s.player is not None and s.player.audio is not None:
                s.player.audio.stop()
        except Exception as exc:  # noqa: BLE001
            log(f"closing {s.client.member['username']}'s peer: {exc!r}")
        await s.client.close()


async def live_run(label: str, speakers: list[Speaker], uri: str, origin: str, cpu_groups: dict,
                   settle_s: float) -> dict:
    try:
        return await _live_run(label, speakers, uri, origin, cpu_groups, settle_s)
    finally:
        await release(speakers)


async def _live_run(label: str, speakers: list[Speaker], uri: str, origin: str, cpu_groups: dict,
                    settle_s: float) -> dict:
    clients = [s.client for s in speakers]
    for c in clients:
        await c.connect(uri, origin)
    meeting = (await asyncio.gather(*(c.walk_into_atlas() for c in clients)))[-1]
    assert meeting is not None and meeting["recording"], f"no recording meeting in Atlas: {meeting}"
    log(f"{label}: {len(speakers)} speaker(s) in Atlas, meeting {meeting['id']}; attaching microphones")

    all_done = asyncio.Event()

    def check():
        if all(s.done() for s in speakers):
            all_done.set()

    for c in clients:
        c.on_final = check
    meter = CpuMeter(cpu_groups)
    me = psutil.Process()
    client_cpu0 = sum(me.cpu_times()[:2])
    meter.begin()
    t0 = time.monotonic()
    await asyncio.gather(*(s.attach() for s in speakers))
    # Wait for the players to start, then until every phrase is captioned or the audio ended + settle_s.
    deadline = time.monotonic() + 20
    while any(s.playback_start is None for s in speakers):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: audio never started playing (ICE/DTLS failed?)")
        await asyncio.sleep(0.05)
    longest_end = max(s.playback_start + s.wav_s for s in speakers)
    try:
        await asyncio.wait_for(all_done.wait(), timeout=max(1.0, longest_end + settle_s - time.time()))
    except TimeoutError:
        pass
    live_until = time.time()
    wall_s = time.monotonic() - t0
    cpu = meter.end()
    client_cpu = round(100.0 * (sum(me.cpu_times()[:2]) - client_cpu0) / wall_s, 1)
    # Detach: the server writes the end marker, the worker runs finish(); finals after this point
    # count as "only at close", not as live captions.
    for s in speakers:
        try:
            await s.client.send({"type": "rtc.close"})
        except Exception:  # noqa: BLE001
            pass
    await asyncio.sleep(3.0)
    for s in speakers:
        await s.pc.close()
        s.track.stop()

    per_speaker = []
    latencies = []
    missed = at_close = total = 0
    for s in speakers:
        live = s.evaluate(until=live_until)
        final = s.evaluate()
        s.results = live
        for r, f in zip(live, final, strict=True):
            r["captioned_at_close"] = (not r["captioned"]) and f["captioned"]
        total += len(live)
        missed += sum(1 for r in live if not r["captioned"])
        at_close += sum(1 for r in live if r["captioned_at_close"])
        latencies += [r["latency_s"] for r in live if r["latency_s"] is not None]
        ref_text = " ".join(p.text for p in s.phrases)
        hyp_text = " ".join(seg["text"] for _t, seg in s.own_finals())
        edits, n = wer(ref_text, hyp_text)
        starts = [w for _f, w in s.track.frames[:1]]
        # The worker stamps the stream with the server's receive time of its first audio (spoken_at =
        # that + start_ms): how much later than our player's first sample the server had it.
        transport = None
        finals = s.own_finals()
        if finals and s.playback_start is not None:
            seg = finals[0][1]
            wall_start = datetime.fromisoformat(seg["spoken_at"]).timestamp() - seg["start_ms"] / 1000
            transport = round(wall_start - s.playback_start, 3)
        per_speaker.append({
            "speaker": s.client.member["name"],
            "phrases": len(live),
            "finals": len(s.own_finals()),
            "partials": sum(c.partials.get(s.client.member["id"], 0) for c in clients[:1]),
            "wer": round(edits / n, 3),
            "answer_to_first_frame_s": round(starts[0] - s.answer_at, 3) if starts else None,
            "offer_to_answer_s": round(s.answer_at - s.offer_at, 3),
            "server_receive_offset_s": transport,
            "per_phrase": live,
            "hypothesis": hyp_text,
        })
    lat = latency_summary(latencies)
    statuses = []
    for c in clients[:1]:  # everyone in the room gets the same status frames; one client's view
        for at, frame in c.statuses:
            statuses.append({"t_s": round(at - min(s.playback_start for s in speakers), 1),
                             "speaker": frame.get("speaker"), "lagging": frame.get("lagging"),
                             "lag_s": frame.get("lag_s")})
    errors = [e for c in clients for e in c.errors]
    return {
        "run": label,
        "speakers": len(speakers),
        "meeting": meeting["id"],
        "phrases": total,
        "captioned": total - missed,
        "never_captioned_live": missed,
        "captioned_only_at_close": at_close,
        "samples": len(latencies),
        "p50_s": None if lat["p50_ms"] is None else round(lat["p50_ms"] / 1000, 2),
        "p95_s": None if lat["p95_ms"] is None else round(lat["p95_ms"] / 1000, 2),
        "max_s": None if lat["max_ms"] is None else round(lat["max_ms"] / 1000, 2),
        "min_s": round(min(latencies), 2) if latencies else None,
        "p95_target_s": P95_TARGET_S.get(len(speakers), 2.0),
        "p95_met": lat["p95_ms"] is not None and lat["p95_ms"] / 1000 <= P95_TARGET_S.get(len(speakers), 2.0)
        and missed == 0,
        "lag_frames": sum(1 for st in statuses if st["lagging"]),
        "status_frames": statuses,
        "errors": errors,
        "unexpected_closes": sum(1 for c in clients if c.unexpected_close),
        "server_cpu_pct": cpu.get("daphne"),
        "worker_cpu_pct": cpu.get("worker"),
        "valkey_cpu_pct": cpu.get("valkey"),
        "postgres_cpu_pct": cpu.get("postgres"),
        "client_cpu_pct": client_cpu,
        "machine_cpu_pct": cpu.get("machine"),
        "other_cpu_pct": round(cpu.get("machine", 0) - client_cpu - sum(
            v or 0 for k, v in cpu.items() if k in ("daphne", "worker", "valkey", "postgres")), 1),
        "wall_s": round(wall_s, 1),
        "per_speaker": per_speaker,
    }


class Worker:
    """`manage.py transcription_worker` as a subprocess (its log in the stack's temp dir)."""

    def __init__(self, env: dict, log_path: Path):
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 60) -> float:
        t0 = time.monotonic()
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "transcription_worker"],
            env=self.env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
        )
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("transcription worker exited:\n" + "\n".join(worker_log_lines(self.log_path)[-20:]))
            if any("ready" in line for line in worker_log_lines(self.log_path)):
                return time.monotonic() - t0
            time.sleep(0.1)
        raise RuntimeError("transcription worker not ready in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()


def setup_office(stack: BenchStack, members: int) -> dict:
    """Members with sessions and the floor with Atlas (bench/_transcription_setup.py in a subprocess)."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent / "_transcription_setup.py")],
        input=json.dumps({"members": members}), env=stack.env, cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


async def run_live(monologues: dict[int, list[tuple[Path, list[Phrase], float]]], speaker_counts: list[int],
                   args) -> dict:
    import aioice.ice

    # Client peers use loopback host candidates too (aioice leaves 127.0.0.1 out by default).
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

    stack = BenchStack(keep=args.keep)
    worker = None
    try:
        stack.start()
        stack.env["OFFICE_RTC_HOST_ADDRESSES"] = "127.0.0.1"
        setup = setup_office(stack, sum(speaker_counts))
        stack.start_daphne()
        worker = Worker({**stack.env, "LOG_LEVEL": "INFO"}, stack.tmp / "worker.log")
        ready_s = worker.start()
        log(f"transcription worker pid {worker.proc.pid} ready in {ready_s:.1f}s")
        uri = f"ws://127.0.0.1:{stack.port}/ws/office/{setup['map']}/"
        origin = f"http://127.0.0.1:{stack.port}"
        cpu_groups = {"daphne": [stack.pid], "worker": [worker.proc.pid], **stack.helper_pids()}

        runs = []
        members = list(setup["members"])
        for count in speaker_counts:
            speakers = [Speaker(Client(members.pop(0)), wav, phrases, wav_s) for wav, phrases, wav_s in monologues[count]]
            label = f"{count} speaker{'s' if count > 1 else ''}"
            run = await live_run(label, speakers, uri, origin, cpu_groups, args.settle)
            runs.append(run)
            log(f"{label}: p50 {run['p50_s']} s, p95 {run['p95_s']} s, never captioned {run['never_captioned_live']}"
                f"/{run['phrases']}, lagging frames {run['lag_frames']}")
            for name, proc in (("daphne", stack.daphne), ("transcription worker", worker.proc)):
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited during the run")
            await asyncio.sleep(1.0)
        worker_lines = worker_log_lines(stack.tmp / "worker.log")
        notable = [line for line in worker_lines
                   if any(k in line for k in ("WARNING", "ERROR", "Traceback", "behind", "transcribing", "finished"))]
        daphne_errors = [line for line in stack.daphne_log_tail(400).splitlines()
                         if "ERROR" in line or "Traceback" in line or "WARNING" in line]
        return {"runs": runs, "worker_log": notable[-40:], "daphne_log": daphne_errors[-20:],
                "worker_ready_s": round(ready_s, 1)}
    finally:
        if worker is not None:
            worker.stop()
        stack.stop()


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def table(rows: list[dict], columns: dict[str, str]) -> None:
    """print_table with per-column formats ("{:.2f}"...); None prints as "-"."""
    print_table([{c: (None if r.get(c) is None else f.format(r[c])) for c, f in columns.items()} for r in rows],
                list(columns))


def report(offline: dict | None, live: dict | None) -> None:
    print()
    if offline:
        cfg = offline["settings"]
        print(f"Part 1: bare faster-whisper vs the live path, side by side in one process (model {cfg['model_id']}, "
              f"{cfg['device']}/{cfg['compute_type']}, {cfg['cpu_threads']} threads, beam {cfg['beam_size']}, batch "
              f"{cfg['batch_size']}; machine has {psutil.cpu_count()} cores; best of {cfg['repeats']} per file)")
        print("  bare = transcribe_file: one whole-file transcribe() with the live path's decoding options; live = a "
              "SpeakerStream fed 200 ms chunks, process() every 200 ms, finish() - the worker's loop without Redis")
        print("  deviation = WER of the live finals against the bare text; ratio = live compute / bare compute "
              "(partials included)")
        print()
        known = offline["known"]
        print(f"  a) known text: {len(known['clips'])} espeak-ng sentences (1 s silence + sentence + 1.5 s silence)")
        table(known["clips"], {
            "clip": "{}", "audio_s": "{:.1f}", "ref_words": "{}", "bare_s": "{:.2f}", "live_s": "{:.2f}",
            "ratio": "{:.2f}x", "final_decodes": "{}", "partial_decodes": "{}", "partials": "{}",
            "bare_wer": "{:.3f}", "live_wer": "{:.3f}", "deviation": "{:.3f}"})
        k = known["summary"]
        if "before_wer" in k:
            print(f"  before ({offline['settings']['baseline']}): WER {k['before_wer']:.4f}, compute {k['before_s']:.2f} s "
                  f"-> {k['before_ratio']:.2f}x the bare pass, deviation {k['before_deviation']:.4f}")
        print(f"  total: WER bare {k['bare_wer']:.4f}, live {k['live_wer']:.4f}; deviation {k['deviation']:.4f}; "
              f"compute bare {k['bare_s']:.2f} s (RTF {k['bare_rtf']:.3f}), live {k['live_s']:.2f} s (RTF "
              f"{k['live_rtf']:.3f}) -> {k['ratio']:.2f}x (finals {k['final_s']:.2f} s, partials {k['partial_s']:.2f} s)")
        real = offline["real"]
        if real["files"]:
            print()
            print(f"  b) real speech: ../shared/speech-dev ({len(real['files'])} files; no reference text: "
                  "deviation from the bare pass)")
            table(real["files"], {
                "file": "{}", "audio_s": "{:.1f}", "bare_words": "{}", "bare_s": "{:.2f}", "live_s": "{:.2f}",
                "ratio": "{:.2f}x", "final_decodes": "{}", "partial_decodes": "{}", "partials": "{}",
                "deviation": "{:.3f}", "deviation_vs_filtered": "{:.3f}", "deviation_vs_defaults": "{:.3f}"})
            for label, t in (("single clips", real["summary"]["clips"]), ("77 s mix", real["summary"]["mix"])):
                if not t:
                    continue
                verdict = ("met" if t["deviation"] <= DEVIATION_TARGET else "MISSED") + ", " + (
                    "met" if t["ratio"] <= OVERHEAD_TARGET else "MISSED")
                print(f"  {label}: deviation {t['deviation']:.4f} (vs the bare text less the segments the live "
                      f"filter drops as hallucinations {t['deviation_vs_filtered']:.4f}; vs faster-whisper defaults "
                      f"{t['deviation_vs_defaults']:.4f}; bare itself vs defaults {t['bare_vs_defaults']:.4f}); "
                      f"compute bare {t['bare_s']:.2f} s (RTF {t['bare_rtf']:.3f}), live {t['live_s']:.2f} s "
                      f"(RTF {t['live_rtf']:.3f}) -> {t['ratio']:.2f}x; {t['final_decodes']} final decodes, "
                      f"{t['partial_decodes']} partial decodes ({t['final_s']:.2f} s + {t['partial_s']:.2f} s) "
                      f"[targets <= {DEVIATION_TARGET:.3f}, <= {OVERHEAD_TARGET}x: {verdict}]")
                if "before_s" in t:
                    print(f"    before ({offline['settings']['baseline']}): deviation {t['before_deviation']:.4f}, compute "
                          f"{t['before_s']:.2f} s (RTF {t['before_rtf']:.3f}) -> {t['before_ratio']:.2f}x the bare pass")
            print(f"  words of live finals inside the mix's nine silent gaps: {real['summary']['mix_words_in_gaps']}")
            for r in real["files"]:
                if r["deviation"] > 0:
                    print(f"    {r['file']}: bare {r['bare_text']!r}")
                    print(f"    {' ' * len(r['file'])}  live {r['live_text']!r}")
        rp = offline["replay"]
        print()
        print(f"  c) the 1-speaker live WAV ({rp['wav_s']} s, {rp['phrases']} phrases) through the same loop: "
              f"{rp['captioned']} captioned, {rp['final_decodes']} final + {rp['partial_decodes']} partial decodes, "
              f"RTF {rp['rtf']:.3f}; engine latency (audio after the phrase end before its final + that call) "
              f"p50 {rp['engine_latency_p50_s']} s, p95 {rp['engine_latency_p95_s']} s")
        cap = rp["capacity"]
        line = (f"     speakers talking at once that one worker's compute keeps up with (1 / RTF of this loop): "
                f"{cap['after_streams']}")
        if "before_streams" in cap:
            line += f" (before: {cap['before_streams']}, RTF {cap['before_rtf']:.3f} against {cap['after_rtf']:.3f})"
        print(line)
        print()
        print("  d) no speech, 60 s each (words that came out should be 0):")
        table(offline["quiet"], {"audio": "{}", "words": "{}", "partials": "{}", "final_decodes": "{}",
                                 "cpu_s": "{:.2f}", "text": "{}"})
    if live:
        print()
        print("Part 2: caption latency at the client (aiortc client -> Daphne's peer -> Redis stream -> "
              "transcription worker -> caption.final on the socket)")
        print("  latency = caption.final arrival - wall time the phrase's last sample left the client's player "
              "(taken per 20 ms frame; +-20 ms)")
        print("  never_captioned_live = phrases without a caption.final covering at least half of their words "
              "before the client detached (audio end + settle); at_close = of those, captioned by finish()")
        print()
        table(live["runs"], {
            "run": "{}", "phrases": "{}", "captioned": "{}", "never_captioned_live": "{}",
            "captioned_only_at_close": "{}", "p50_s": "{:.2f}", "p95_s": "{:.2f}", "max_s": "{:.2f}",
            "min_s": "{:.2f}", "lag_frames": "{}", "server_cpu_pct": "{:.0f}", "worker_cpu_pct": "{:.0f}",
            "client_cpu_pct": "{:.0f}", "other_cpu_pct": "{:.0f}", "wall_s": "{:.0f}"})
        print()
        for run in live["runs"]:
            verdict = "met" if run["p95_met"] else "MISSED"
            print(f"  {run['run']}: p95 {run['p95_s']} s (target <= {run['p95_target_s']} s with every phrase captioned: "
                  f"{verdict})")
            for sp in run["per_speaker"]:
                lats = " ".join("-" if r["latency_s"] is None else f"{r['latency_s']:.2f}" for r in sp["per_phrase"])
                seqs = " ".join(",".join(map(str, r["final_seqs"])) or "-" for r in sp["per_phrase"])
                print(f"    {sp['speaker']}: {sp['finals']} finals, {sp['partials']} partials, WER {sp['wer']:.3f}, "
                      f"offer->answer {sp['offer_to_answer_s']:.2f} s, answer->first frame "
                      f"{sp['answer_to_first_frame_s']} s, server got the audio {sp['server_receive_offset_s']} s "
                      f"after it left the player")
                print(f"      latency per phrase (s): {lats}")
                print(f"      caption seqs per phrase: {seqs}")
            if run["status_frames"]:
                shown = ", ".join(f"t={st['t_s']}s speaker {st['speaker']} lagging={st['lagging']} "
                                  f"lag {st['lag_s']}s" for st in run["status_frames"][:8])
                print(f"    transcription.status frames: {shown}")
            else:
                print("    transcription.status frames: none (the worker never reported being > 3 s behind)")
            if run["errors"] or run["unexpected_closes"]:
                print(f"    errors: {run['errors']}, unexpected closes {run['unexpected_closes']}")
        print()
        print("  worker log (transcribing/finished/warnings):")
        for line in live["worker_log"]:
            print(f"    {line[:200]}")
        if live["daphne_log"]:
            print("  daphne log warnings/errors:")
            for line in live["daphne_log"]:
                print(f"    {line[:200]}")


async def main_async(args) -> int:
    if not espeak_available():
        raise SystemExit("espeak-ng is needed to make the speech")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="office-bench-audio-"))
    offline = live = None
    try:
        clips = make_clips(workdir)
        log(f"made {len(clips)} clips ({sum(c.audio_s for c in clips):.1f} s) with espeak-ng")
        counts = [int(v) for v in args.speakers.split(",") if v.strip()]
        if any(c not in (1, 2, 3, 4) for c in counts):
            raise SystemExit("--speakers takes counts from 1 to 4")
        # Speaker k of a run says the 8 sentences in its own order, 1.5 s apart, starting 0.7 s after
        # speaker k-1, so that their phrase ends do not coincide (people rarely stop on the same frame).
        n = len(clips)
        orders = [list(range(n)), list(reversed(range(n))), [(i + 3) % n for i in range(n)],
                  [(5 - i) % n for i in range(n)]]
        leads = [1.0, 1.7, 2.4, 3.1]
        monologues = {
            count: [make_monologue(clips, orders[k], workdir / f"live{count}-{k}.wav", lead_s=leads[k],
                                   pause_s=args.pause, tail_s=3.0) for k in range(count)]
            for count in sorted(set(counts) | {1})
        }
        if not args.skip_offline:
            if args.baseline:
                global BASELINE
                engine = load_baseline_engine(args.baseline)
                current = whisper_settings()
                BASELINE = (engine, engine.WhisperSettings(
                    model_path=current.model_path, device=current.device, compute_type=current.compute_type,
                    cpu_threads=current.cpu_threads, beam_size=current.beam_size, language=current.language,
                    model_id=current.model_id))
            offline = run_offline(clips, args.repeats, monologues[1][0])
            offline["settings"]["baseline"] = args.baseline or None
        if not args.skip_live:
            live = await asyncio.wait_for(run_live(monologues, counts, args), timeout=args.live_timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(offline, live)
    path = write_results("transcription.json", {
        "bench": "transcription", "cpu_count": psutil.cpu_count(), "sentences": SENTENCES,
        "pause_s": args.pause, "offline": offline, "live": live,
        "elapsed_s": round(time.monotonic() - started, 1),
    })
    print(f"\nwritten to {path} ({time.monotonic() - started:.0f} s)")
    if live:
        for run in live["runs"]:
            if run["captioned"] == 0:
                print(f"FAIL: {run['run']}: no phrase was captioned at all (the path is broken)")
                return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", default="1,2,4", help="live runs: comma-separated speaker counts (1 to 4)")
    parser.add_argument("--repeats", type=int, default=2, help="offline: runs per clip and path (best counts)")
    parser.add_argument("--pause", type=float, default=1.5, help="live: silence between phrases (s)")
    parser.add_argument("--settle", type=float, default=8.0,
                        help="live: wait this long after the audio ended for missing captions")
    parser.add_argument("--live-timeout", type=float, default=420.0, help="live part: give up after this many s")
    parser.add_argument("--skip-offline", action="store_true")
    parser.add_argument("--baseline", default="",
                        help="offline: also run transcription/engine.py of this git revision (the 'before')")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the stack's temp dir (logs) for debugging")
    args = parser.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
