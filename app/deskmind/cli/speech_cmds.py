"""note, transcribe, meeting start|stop|status|recover."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, Callable

from deskmind.cli.render import print_json
from deskmind.core.app import Core
from deskmind.core.errors import DeskmindError, UserInputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("note", help="a note: record from the microphone, take an audio file, or "
                       "type it")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--record", action="store_true", help="record until Enter is pressed")
    src.add_argument("--file", metavar="AUDIO", help="transcribe this recording into a note")
    src.add_argument("--text", metavar="TEXT", help="a typed note ('-' reads it from stdin)")
    p.add_argument("--title", help="the typed note's title (default: its first line)")
    p.add_argument("--privacy", default=None, help="the typed note's privacy (default: private)")
    p.add_argument("--no-cleanup", action="store_true", help="keep the note exactly as transcribed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_note)

    p = sub.add_parser("transcribe", help="transcribe an audio file locally (nothing is stored), "
                       "or with --queued the indexed audio/video waiting for transcription")
    p.add_argument("file", metavar="FILE", nargs="?")
    p.add_argument("--queued", action="store_true",
                   help="transcribe and store the media files indexing queued")
    p.add_argument("--json", action="store_true", help="JSON: text, segments [{start, end, text}]")
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("meeting", help="record a meeting in the background: start, stop, status, recover")
    msub = p.add_subparsers(dest="meeting_command", metavar="ACTION", required=True)
    m = msub.add_parser("start", help="start recording (microphone and, on Linux, system audio)")
    m.add_argument("--title")
    m.set_defaults(func=cmd_meeting_start)
    m = msub.add_parser("stop", help="stop recording; save transcript and minutes to memory")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_meeting_stop)
    m = msub.add_parser("status", help="is a meeting being recorded, and how far along")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_meeting_status)
    m = msub.add_parser("recover", help="save meetings whose recorder stopped unexpectedly")
    m.add_argument("--list", action="store_true", help="only list them")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_meeting_recover)
    m = msub.add_parser("_record", help=argparse.SUPPRESS)  # the detached recorder process
    m.add_argument("--title")
    m.add_argument("--token", required=True)
    m.set_defaults(func=cmd_meeting_record)


def router_complete(core: Core) -> Callable[[str, str, str], str] | None:
    """The text-completion callable (task, prompt, privacy) -> text, when routing offers one."""
    fn = getattr(core, "complete", None)
    return fn if callable(fn) else None


def _speech(core: Core, *, cleanup: bool = True) -> Any:
    from deskmind.core.speech import Speech

    return Speech(core, complete=router_complete(core) if cleanup else None)


def _clock(seconds: float) -> str:
    from deskmind.core.speech.storage import clock

    return clock(seconds)


def _wait_for_enter(stop_early: Callable[[], bool]) -> None:
    done = threading.Event()

    def read() -> None:
        try:
            sys.stdin.readline()
        finally:
            done.set()

    threading.Thread(target=read, daemon=True).start()
    while not done.wait(0.1):
        if stop_early():
            return


def cmd_note(args: argparse.Namespace) -> int:
    if args.text is not None:
        return _typed_note(args)
    with Core() as core:
        speech = _speech(core, cleanup=not args.no_cleanup)
        try:
            if args.file:
                note = speech.note_from_file(args.file)
            else:
                rec = speech.voice_note_recorder()
                rec.start()
                print("recording… press Enter to stop", file=sys.stderr)
                _wait_for_enter(lambda: rec.error is not None)
                if rec.error is not None:
                    print(f"deskmind: {rec.error}", file=sys.stderr)
                note = rec.stop()
            # Saved as transcribed already; the command shows the note once it is cleaned up.
            note.wait_for_cleanup()
        finally:
            speech.close()
        if args.json:
            print_json(note.to_dict())
            return 0
        for w in note.warnings:
            print(f"warning: {w}", file=sys.stderr)
        t = note.timings
        print(f"note {note.source_id} saved ({note.transcript.duration:.1f} s of audio"
              + (f", stop to saved {t['total']:.2f} s" if "total" in t else "") + ")")
        print(note.text)
        return 0


def _typed_note(args: argparse.Namespace) -> int:
    from deskmind.core.ingest.typed_note import typed_note
    from deskmind.core.memory.models import DEFAULT_PRIVACY

    text = sys.stdin.read() if args.text == "-" else args.text
    draft = typed_note(text, title=args.title, privacy=args.privacy or DEFAULT_PRIVACY)
    with Core() as core:
        sid = core.remember(draft)
    if args.json:
        print_json({"id": sid, "uri": draft.uri, "title": draft.title, "privacy": draft.privacy})
    else:
        print(f"note {sid} saved: {draft.title}")
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    if args.queued:
        return _transcribe_queued(args)
    if not args.file:
        raise UserInputError("give an audio FILE to transcribe (or --queued)")
    with Core() as core:
        speech = _speech(core, cleanup=False)
        try:
            show = not args.json and sys.stdout.isatty()
            hook = (lambda s: print(f"[{_clock(s.start)}] {s.text}", flush=True)) if show else None
            result = speech.transcribe_file(args.file, on_segment=hook)
        finally:
            speech.close()
        if args.json:
            print_json(result.to_dict())
        elif not show:
            for s in result.segments:
                print(f"[{_clock(s.start)}] {s.text}")
        if not result.segments:
            print("no speech found", file=sys.stderr)
        return 0


def _transcribe_queued(args: argparse.Namespace) -> int:
    from deskmind.core.ingest.transcribe import transcribe_queued
    from deskmind.core.speech.ingest_hook import install_media_transcriber

    with Core() as core:
        speech = _speech(core, cleanup=False)
        try:
            install_media_transcriber(speech.engine, replace=True)
            summary = transcribe_queued(core.indexer())
        finally:
            speech.close()
        d = summary.to_dict() if summary is not None else {"indexed": 0, "failed": 0, "problems": []}
        if args.json:
            print_json(d)
        else:
            print(f"transcribed {d['indexed']} queued file(s), {d['failed']} failed")
            for prob in d.get("problems", [])[:50]:
                print(f"  {prob['status']}: {prob['path']}: {prob['reason']}")
        return 0


def cmd_meeting_start(args: argparse.Namespace) -> int:
    from deskmind.core.speech.meeting import find_interrupted
    from deskmind.core.speech.recorder_process import spawn_recorder

    with Core() as core:
        interrupted = find_interrupted(core.paths.audio_dir / "meetings")
        st = spawn_recorder(core.paths.data_dir, core.paths.log_dir, title=args.title)
        print(f"recording meeting {st['meeting_id']} (process {st['pid']}); "
              "'deskmind meeting stop' ends it")
        for w in st.get("warnings") or []:
            print(f"warning: {w}", file=sys.stderr)
        if interrupted:
            print(f"{len(interrupted)} earlier meeting(s) were interrupted before being saved: "
                  "'deskmind meeting recover' saves them", file=sys.stderr)
        return 0


def cmd_meeting_stop(args: argparse.Namespace) -> int:
    from deskmind.core.speech.recorder_process import stop_recorder

    with Core() as core:
        shown = [False]

        def waiting(elapsed: float) -> None:
            if elapsed > 1 and not shown[0] and sys.stderr.isatty():
                print("finishing the transcript and minutes…", file=sys.stderr)
                shown[0] = True

        st = stop_recorder(core.paths.data_dir, on_wait=waiting)
    if st.get("status") == "failed":
        raise DeskmindError(st.get("error") or "the meeting could not be saved")
    if st.get("stopped_by") == "error":
        print(f"the recording had already stopped by itself: {st.get('stop_reason')}", file=sys.stderr)
    res = st.get("result") or {}
    if args.json:
        print_json(res)
        return 0
    _print_result(res)
    return 0


def _print_result(res: dict[str, Any]) -> None:
    print(f"meeting saved as source {res.get('source_id')} ({res.get('duration', 0):.0f} s, "
          f"{res.get('transcript_segments', len(res.get('segments') or []))} transcript segments)"
          + (f"; minutes: source {res['minutes_id']}" if res.get("minutes_id") else ""))
    for w in res.get("warnings") or []:
        print(f"warning: {w}", file=sys.stderr)


def cmd_meeting_status(args: argparse.Namespace) -> int:
    from deskmind.core.speech.meeting import find_interrupted
    from deskmind.core.speech.recorder_process import RecorderState
    from deskmind.core.speech.segments import MeetingFolder

    with Core() as core:
        state = RecorderState(core.paths.data_dir)
        live = state.live()
        out: dict[str, Any] = {"recording": bool(live)}
        if live and live.get("folder"):
            folder = MeetingFolder.open(__import__("pathlib").Path(live["folder"]))
            segs = folder.segments()
            secs: dict[str, float] = {}
            for s in segs:
                p = folder.path / s.file
                frames = s.frames if s.closed else max(0, (p.stat().st_size - 44) // 2) if p.exists() else 0
                secs[s.channel] = secs.get(s.channel, 0.0) + frames / s.rate
            out.update(meeting_id=live.get("meeting_id"), pid=live.get("pid"),
                       started_at=live.get("started_at"),
                       elapsed=round(time.time() - float(live.get("started_at") or time.time()), 1),
                       recorded_seconds={k: round(v, 1) for k, v in secs.items()},
                       segments=len(segs), transcribed=sum(1 for s in segs if s.transcribed),
                       warnings=folder.data.get("warnings", []))
        out["interrupted"] = [f.id for f in find_interrupted(core.paths.audio_dir / "meetings")]
        last = state.read() or {}
        if not live and last.get("stopped_by") == "error":
            out["last_stopped_by_itself"] = {"reason": last.get("stop_reason"),
                                             "source_id": (last.get("result") or {}).get("source_id")}
    if args.json:
        print_json(out)
        return 0
    if live:
        rec = ", ".join(f"{k} {v:.0f} s" for k, v in out.get("recorded_seconds", {}).items())
        print(f"recording meeting {out.get('meeting_id')} for {out.get('elapsed', 0):.0f} s "
              f"(process {out.get('pid')}): {rec or 'starting'}; {out.get('segments', 0)} segments, "
              f"{out.get('transcribed', 0)} transcribed")
        for w in out.get("warnings") or []:
            print(f"warning: {w}")
    else:
        print("no meeting is being recorded")
        last = state.read() or {}
        if last.get("stopped_by") == "error" and not last.get("acknowledged"):
            res = last.get("result") or {}
            print(f"the last meeting stopped by itself ({last.get('stop_reason')}) and was saved "
                  f"as source {res.get('source_id')}")
    if out["interrupted"]:
        print(f"{len(out['interrupted'])} interrupted meeting(s) to recover: 'deskmind meeting recover'")
    return 0


def cmd_meeting_recover(args: argparse.Namespace) -> int:
    with Core() as core:
        speech = _speech(core)
        try:
            found = speech.interrupted_meetings()
            if args.list or not found:
                rows = [{"id": f.id, "title": f.data.get("title"), "started_at": f.data.get("started_at"),
                         "segments": len(f.segments())} for f in found]
                if args.json:
                    print_json(rows)
                elif not rows:
                    print("no interrupted meetings")
                for r in rows if not args.json else []:
                    print(f"{r['id']}  {r['title']}  ({r['segments']} segments)")
                return 0
            results = [speech.recover(f).to_dict() for f in found]
        finally:
            speech.close()
    if args.json:
        print_json(results)
        return 0
    for res in results:
        _print_result(res)
    return 0


def cmd_meeting_record(args: argparse.Namespace) -> int:
    from deskmind.core.speech.recorder_process import run_recorder

    with Core() as core:
        speech = _speech(core)
        try:
            return run_recorder(speech, core.paths.data_dir, title=args.title, token=args.token)
        finally:
            speech.close()


def _check_whisper(core: Core) -> str:
    from deskmind.core.speech.engine import resolve_model
    from deskmind.core.speech.settings import speech_settings

    s = speech_settings(core.settings)
    return f"{s.model}: {resolve_model(s)}"


def _check_microphone(core: Core) -> str:
    from deskmind.core.speech.capture import resolve_input_device
    from deskmind.core.speech.service import import_sounddevice
    from deskmind.core.speech.settings import speech_settings

    from deskmind.cli.doctor import DoctorWarning
    from deskmind.core.errors import DeskmindError

    try:
        _, name = resolve_input_device(import_sounddevice(), speech_settings(core.settings).input_device)
    except DeskmindError as exc:
        # Files, meetings recovered from disk and search all work without one.
        raise DoctorWarning(f"{exc} (voice notes and meetings need one; everything else works)") from exc
    return f"input device: {name}"


def DOCTOR_CHECKS(core: Core) -> list[tuple[str, Callable[[], str]]]:
    return [("speech model", lambda: _check_whisper(core)),
            ("microphone", lambda: _check_microphone(core))]
