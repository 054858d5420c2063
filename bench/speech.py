"""Speech figures on this machine, with the real tiny.en model and real capture.

Prints:
  1. voice notes: stop-to-saved latency (stop the microphone, resample, write the WAV,
     transcribe, embed, store) for ~2, ~5 and ~15 s utterances captured through sounddevice
     from a PulseAudio virtual microphone; with the encoder window trimmed for short clips
     (the default) and with Whisper's full 30 s window, for comparison. Target: <= 0.7 s at 5 s.
  2. meetings: real-time factor of transcribing a 5 minute meeting cut into segments the way
     the recorder cuts them (per channel; a two-sided meeting doubles the work);
  3. a real 45 s two-channel meeting through the recorder: how long stop() takes (only the
     tail is left to transcribe);
  4. voice notes with clean-up by the default model (SmolLM2 in the embedded llama.cpp, through
     the router): key-up to saved now (the note is saved as transcribed, the clean-up follows in
     the background) against key-up to cleaned (what a note cost when it waited for its clean-up
     before being saved), and what became of each clean-up (used, rejected, or skipped once the
     model was switched off for clean-up);
  5. dictation: key-up → text in the focused app (a Qt line edit in another process on Xvfb,
     typed with xdotool) for ~5 s utterances, and key-down → first captured sample with the
     pre-roll on and off (negative: the recording starts before the key went down). Target:
     <= 0.7 s and <= 50 ms.
  6. peak memory (max RSS) of the process.

Speech is synthesised with espeak-ng. Needs pulseaudio, pactl/paplay/pacat, espeak-ng, sox.
Usage: python bench/speech.py [--runs 2] [--threads 2] [--skip-meeting] [--skip-cleanup]
       [--cleanup-only] [--dictation-only]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.audio import MIC_SINK, SPEAKER_SINK, reinit_sounddevice, speech_wav, start_pulse  # noqa: E402

SENTENCES = [
    "The budget review starts on Monday morning.", "Please send the travel forms to the office.",
    "We are hiring two engineers this spring.", "The security audit found three small problems.",
    "Lunch will be served in the garden today.", "The printer on the second floor is broken again.",
    "Our next release ships at the end of March.", "Remember to water the plants before you leave.",
    "The client asked for a demo next Thursday.", "We decided to move the servers to the new rack.",
    "Maria will write the report by Friday.", "Who is responsible for the marketing plan?",
    "The train was late because of the snow.", "Our team finished the migration last night.",
]
NOTES = {
    2: ["Call the plumber tomorrow.", "Water the plants tonight.", "Book a table for four."],
    5: ["Buy new running shoes and book the dentist for Thursday afternoon.",
        "Ask Maria to send the signed contract to the lawyers before lunch.",
        "The train to Boston leaves at seven, so pack the bags tonight."],
    15: [("Remember to send the quarterly report to the finance team, then book a meeting "
          "room for the design review next week, and ask Maria whether the new laptops "
          "have arrived at the office yet."),
         ("For the garden party on Saturday we still need forty chairs, six tables, enough "
          "lemonade for the children, and somebody who can pick up the cake from the bakery "
          "on Main Street before noon."),
         ("The server migration went well last night, but the backup job failed twice, so "
          "please check the disk space on the storage cluster and restart the job before "
          "the morning shift begins.")],
}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def say_note(rec, pulse, wav: Path):
    """Record ``wav`` played into the virtual microphone; returns the saved note."""
    rec.start()
    rec._capture.wait_first_block(5)
    pulse.play(wav, MIC_SINK)
    time.sleep(0.15)
    return rec.stop()


def bench_notes(core, eng, sd, pulse, work: Path, runs: int, full_window: bool) -> None:
    from deskmind.core.speech import Speech

    speech = Speech(core, sd=sd, engine=eng)
    model = eng.model()
    trimmed_frames = model.min_window_frames
    if full_window:
        model.min_window_frames = 3000
    rec = speech.voice_note_recorder()
    label = ("full 30 s encoder window" if full_window else
             f"encoder window trimmed to {trimmed_frames / 100:.0f} s (default)")
    print(f"\nvoice notes, stop to saved ({label}); {len(NOTES[2])} sentences x {runs} runs each:")
    for target, texts in NOTES.items():
        totals, transcribe_s, save_s = [], [], []
        heard = []
        for text in texts:
            wav = speech_wav(work, text)
            for _ in range(runs):
                note = say_note(rec, pulse, wav)
                totals.append(note.timings["total"])
                transcribe_s.append(note.timings["transcribe"])
                save_s.append(note.timings["save"])
            heard.append(note.text)
        med = statistics.median(totals)
        print(f"  ~{target:>2} s notes: stop to saved median {med:.3f} s, min {min(totals):.3f}, "
              f"max {max(totals):.3f}  (transcribe median {statistics.median(transcribe_s):.3f}, "
              f"embed+store median {statistics.median(save_s):.3f})")
        for h in heard:
            print(f"      heard: {h}")
    model.min_window_frames = trimmed_frames
    speech.close()


def bench_cleanup(core, eng, sd, pulse, work: Path, runs: int) -> None:
    from deskmind.core.speech import Speech

    speech = Speech(core, sd=sd, engine=eng, complete=core.complete)
    rec = speech.voice_note_recorder()
    saved, cleaned, outcomes = [], [], []
    for text in NOTES[5]:
        wav = speech_wav(work, text)
        for _ in range(runs):
            note = say_note(rec, pulse, wav)
            saved.append(note.timings["total"])
            out = note.wait_for_cleanup()  # the clean-up started when the note was saved
            cleaned.append(note.timings["total"] + out.seconds)
            outcomes.append(out.status)
    speech.close()
    print(f"\nvoice notes (~5 s) with clean-up by the default model; {len(saved)} notes:")
    print(f"  key-up to saved (saved first, now): median {statistics.median(saved):.3f} s, "
          f"max {max(saved):.3f}")
    print(f"  key-up to cleaned (when a note waited for its clean-up): median "
          f"{statistics.median(cleaned):.3f} s, max {max(cleaned):.3f}")
    print("  clean-ups: " + ", ".join(f"{s} {outcomes.count(s)}" for s in dict.fromkeys(outcomes)))
    for model, r in speech.cleanup_record.state().items():
        print(f"  {model}: {r.get('rejected_in_a_row', 0)} rejected in a row, "
              f"clean-up {'off' if r.get('off') else 'on'} ({r.get('last_reason', '')})")


def bench_rtf(whisper_engine, work: Path, segment_s: float = 15.0) -> None:
    import numpy as np

    from deskmind.core.speech.audio import load_audio

    clips = [load_audio(speech_wav(work, s))[0] for s in SENTENCES]
    gap = np.zeros(int(16000 * 1.2), np.float32)
    parts, total = [], 0
    i = 0
    while total < 16000 * 300:
        c = np.concatenate([clips[i % len(clips)], gap])
        parts.append(c)
        total += c.size
        i += 1
    audio = np.concatenate(parts)[: 16000 * 300]
    n = int(segment_s * 16000)
    t = time.perf_counter()
    words = 0
    for k in range(0, audio.size, n):
        r = whisper_engine.transcribe(audio[k:k + n], offset=k / 16000)
        words += len(r.text.split())
    took = time.perf_counter() - t
    print(f"\nmeeting transcription, 5 min of speech in {segment_s:.0f} s segments: {took:.1f} s "
          f"-> real-time factor {took / 300:.3f} per channel ({2 * took / 300:.3f} with both "
          f"channels talking all the time); {words} words")


def bench_meeting(core, eng, sd, pulse, work: Path, seconds: float = 45.0) -> None:
    from deskmind.core.speech import Speech

    speech = Speech(core, sd=sd, engine=eng)
    speech.settings.meeting_segment_s = 15.0
    rec = speech.meeting_recorder()
    rec.start(title="bench")
    for c in rec._captures.values():
        c.wait_first_block(5)
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        sink = MIC_SINK if i % 2 == 0 else SPEAKER_SINK
        pulse.play(speech_wav(work, SENTENCES[i % len(SENTENCES)]), sink)
        i += 1
    st = rec.status()
    t = time.perf_counter()
    result = rec.stop()
    took = time.perf_counter() - t
    print(f"\nreal {seconds:.0f} s two-channel meeting: {st['segments']} segments, {st['transcribed']} "
          f"transcribed live before stop; stop() to saved {took:.2f} s; "
          f"{len(result.segments)} transcript segments")
    speech.close()


def bench_dictation(core, eng, sd, pulse, work: Path, runs: int) -> None:
    """Key-up → the last character in the target window, measured from outside: the window
    prints its text on every change and the time the final text arrived is taken."""
    from deskmind.core.speech import Speech
    from deskmind.core.speech.deliver import Deliverer
    from tests.fakes.text_window import TextWindow
    from tests.ui.xharness import XSession

    x = XSession(tray=False).start()
    window = TextWindow(x.env(), "dm-bench-dictation")
    speech = Speech(core, sd=sd, engine=eng)
    speech.settings.dictate_save_note = False  # saved after the text is typed: not in the figure
    try:
        for preroll in (True, False):
            speech.settings.preroll = preroll
            speech.arm_microphone()
            d = speech.dictation(Deliverer(None, env=x.env()), may_paste=lambda: True)
            if preroll:
                time.sleep(0.5)  # the ring fills
            up_to_text, leads, core_s, heard = [], [], [], []
            for text in NOTES[5]:
                wav = speech_wav(work, text)
                for _ in range(runs):
                    subprocess.run(["xdotool", "key", "--window", str(window.wid), "ctrl+a", "BackSpace"],
                                   env=x.env(), timeout=5)
                    window.focus()
                    window.settled(0.2)
                    d.press()
                    pulse.play(wav, MIC_SINK)
                    time.sleep(0.15)
                    t_up = time.monotonic()
                    r = d.release()
                    window.wait_text(lambda t, want=r.text: t == want, timeout=10)
                    if window.text != r.text:
                        print(f"      not delivered: {r.message}")
                        continue
                    up_to_text.append(window.text_at - t_up)
                    core_s.append(r.timings["key_up_to_text"])
                    leads.append(r.lead_s)
                heard.append(r.text)
            label = "on (0.3 s)" if preroll else "off"
            print(f"\ndictation, pre-roll {label}; {len(NOTES[5])} ~5 s utterances x {runs} runs:")
            if up_to_text:
                print(f"  key-up -> text in the focused app: median {statistics.median(up_to_text):.3f} s, "
                      f"min {min(up_to_text):.3f}, max {max(up_to_text):.3f} "
                      f"(of which transcribe+type in the core: median {statistics.median(core_s):.3f} s)")
                print(f"  key-down -> first captured sample: median {statistics.median(leads) * 1000:+.0f} ms, "
                      f"max {max(leads) * 1000:+.0f} ms")
            for h in heard:
                print(f"      typed: {h}")
            speech.disarm_microphone()
    finally:
        speech.close()
        window.close()
        x.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-meeting", action="store_true")
    ap.add_argument("--skip-cleanup", action="store_true")
    ap.add_argument("--cleanup-only", action="store_true", help="only the clean-up figures (4)")
    ap.add_argument("--dictation-only", action="store_true", help="only the dictation figures (5)")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="dm-bench-speech-"))
    os.environ["DESKMIND_HOME"] = str(home)
    os.environ["DESKMIND_DISCOVER"] = ""  # the default (embedded) model, not a server found here
    cfg = home / "config" / "settings.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"[speech]\nthreads = {args.threads}\n")
    work = home / "speech"
    work.mkdir()
    pulse = start_pulse()
    os.environ["PULSE_SERVER"] = pulse.env["PULSE_SERVER"]
    sd = reinit_sounddevice()
    print(f"cpu cores {os.cpu_count()}, whisper threads {args.threads}, load average "
          f"{os.getloadavg()[0]:.1f} (other work on this machine skews figures up)")
    from deskmind.core.app import Core
    from deskmind.core.speech import Speech, TranscriptionEngine, speech_settings

    try:
        with Core() as core:
            t = time.perf_counter()
            eng = TranscriptionEngine(speech_settings(core.settings))
            eng.model()
            print(f"tiny.en load {time.perf_counter() - t:.2f} s; RSS {rss_mb():.0f} MB")
            # Warm the embedder and database (the desktop app has them loaded already).
            warm = Speech(core, sd=sd, engine=eng)
            warm.note_from_file(speech_wav(work, NOTES[2][0]))
            if not args.cleanup_only:
                bench_dictation(core, eng, sd, pulse, work, args.runs)
            if args.dictation_only:
                return
            if not args.cleanup_only:
                bench_notes(core, eng, sd, pulse, work, args.runs, full_window=False)
                bench_notes(core, eng, sd, pulse, work, args.runs, full_window=True)
            if not args.skip_cleanup:
                bench_cleanup(core, eng, sd, pulse, work, args.runs)
            if not args.cleanup_only:
                bench_rtf(eng, work)
            if not args.skip_meeting and not args.cleanup_only:
                bench_meeting(core, eng, sd, pulse, work)
            eng.close()
    finally:
        pulse.close()
        shutil.rmtree(home, ignore_errors=True)
    print(f"\npeak memory: max RSS of this process {rss_mb():.0f} MB (one tiny.en model, the "
          "embedder, SQLite, capture buffers, and this script's 5 min of test audio)")


if __name__ == "__main__":
    main()
