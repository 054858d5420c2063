"""Voice-note clean-up after the note is saved, and which models can be trusted with it.

A note is stored as transcribed first (key-up to saved does not wait for a language model);
:class:`NoteCleaner` then asks the routed model for a clean-up in the background, one note at a
time, and updates the stored note: the cleaned text becomes the note's text, the transcript stays
beside it (metadata ``transcript``, one chunk per Whisper segment), and the provenance says
whether it was cleaned and by which model (``cleaned``, ``cleaned_by``, ``cleanup``).

A clean-up that loses what was said or says much more is not used (:func:`unfaithful_cleanup`).
:class:`CleanupRecord` counts those guard rejections per model; after
:data:`REJECTIONS_TO_SWITCH_OFF` in a row the model is not asked again (the log says so once,
Settings → Speech lists it and can turn it back on).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from deskmind.core.errors import DeskmindError
from deskmind.core.memory.models import SourceDraft
from deskmind.core.memory.search import content_words
from deskmind.core.memory.store import SourcesGone
from deskmind.core.speech.engine import Transcript
from deskmind.core.speech.segments import write_json_atomic
from deskmind.core.speech.storage import note_draft

log = logging.getLogger(__name__)

CLEAN_TASK = "clean-note"
CLEAN_PROMPT = (
    "Clean up this dictated note: fix punctuation and obvious mistranscriptions, remove filler "
    "words and false starts, keep the meaning and the speaker's words. Answer with the note only.\n\n"
    "{text}")

# A clean-up may drop fillers and fix a misheard word; one that loses more of what was said, or
# says much more, is not a clean-up (a model too small for the task, or one that answered
# instead of editing) and is not used: the note stays as transcribed.
MIN_WORDS_KEPT = 0.6
REJECTIONS_TO_SWITCH_OFF = 3
RECORD_MAX_BYTES = 1 << 20

# (task, prompt, privacy, avoid=frozenset of "provider:model") -> answer; the answer may carry
# ``model`` (which model wrote it), as core.app.Completion does.
Complete = Callable[..., str]
Remember = Callable[[SourceDraft], int]


def unfaithful_cleanup(said: str, cleaned: str) -> str | None:
    """Why a clean-up of ``said`` cannot stand for the note, or None when it can."""
    words = set(content_words(said))
    if not words:
        return None
    kept = len(words & set(content_words(cleaned))) / len(words)
    if kept < MIN_WORDS_KEPT:
        return f"it kept {kept:.0%} of the words said"
    if len(cleaned) > 2 * len(said) + 80:
        return f"it was {len(cleaned)} characters for {len(said)} said"
    return None


class CleanupRecord:
    """Per model ("provider:model"): guard rejections in a row, and whether clean-up is off for
    it. Kept in a small JSON file so it holds across restarts. Any thread."""

    def __init__(self, path: Path, limit: int = REJECTIONS_TO_SWITCH_OFF) -> None:
        self.path = path
        self.limit = limit
        self._lock = threading.Lock()
        self._models: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            if self.path.stat().st_size > RECORD_MAX_BYTES:
                raise ValueError(f"larger than {RECORD_MAX_BYTES} bytes")
            data = json.loads(self.path.read_text(encoding="utf-8"))
            models = data["models"]
            if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
                raise ValueError("'models' is not a table of models")
            return models
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Advisory state: starting afresh only means models are tried again.
            log.warning("note clean-up record %s could not be read (%s); starting a new one",
                        self.path, exc)
            return {}

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, {"version": 1, "models": self._models})
        except OSError as exc:
            log.warning("note clean-up record %s not written: %s", self.path, exc)

    def off_models(self) -> frozenset[str]:
        with self._lock:
            return frozenset(m for m, r in self._models.items() if r.get("off"))

    def state(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._models))

    def rejected(self, model: str, why: str) -> bool:
        """Count a guard rejection; True when it switched clean-up off for ``model``."""
        with self._lock:
            r = self._models.setdefault(model, {"rejected_in_a_row": 0, "off": False})
            r["rejected_in_a_row"] = int(r.get("rejected_in_a_row", 0)) + 1
            r["last_reason"] = why
            switched = not r.get("off") and r["rejected_in_a_row"] >= self.limit
            if switched:
                r["off"], r["off_since"] = True, time.time()
            self._save()
        if switched:
            log.warning("note clean-up switched off for %s: its clean-ups were not used %d times in "
                        "a row (last: %s); notes stay as transcribed. Settings → Speech turns it "
                        "back on.", model, self.limit, why)
        return switched

    def accepted(self, model: str) -> None:
        with self._lock:
            r = self._models.get(model)
            if r is None or (not r.get("rejected_in_a_row") and not r.get("off")):
                return
            r.update(rejected_in_a_row=0, off=False)
            self._save()

    def turn_on(self, model: str | None = None) -> None:
        """Try clean-up with ``model`` (every model when None) again."""
        with self._lock:
            for name in ([model] if model else list(self._models)):
                self._models.pop(name, None)
            self._save()


@dataclass
class CleanupJob:
    """A saved note, as much as is needed to write it again with its clean-up."""

    source_id: int
    note_id: str
    transcript: Transcript
    audio_path: Path
    recorded_at: float
    origin: str | None = None


@dataclass
class CleanupOutcome:
    cleaned: str | None = None      # the text used, when the clean-up was used
    model: str = ""
    status: str = ""                # cleaned | rejected | failed | off | forgotten
    reason: str = ""
    seconds: float = 0.0
    switched_off: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class NoteCleaner:
    """Cleans saved notes in the background, one at a time, and updates them in memory.

    ``submit`` may be called from any thread; ``on_done`` runs on the clean-up thread."""

    def __init__(self, complete: Complete, remember: Remember, record: CleanupRecord, *,
                 privacy: str = "private",
                 on_done: Callable[[CleanupJob, CleanupOutcome], None] | None = None) -> None:
        self.complete = complete
        self.remember = remember
        self.record = record
        self.privacy = privacy
        self.on_done = on_done
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="note-cleanup")
        self._told_off: set[frozenset[str]] = set()

    def submit(self, job: CleanupJob) -> "Future[CleanupOutcome]":
        return self._pool.submit(self._run, job)

    def close(self, wait: bool = True) -> None:
        """Notes not yet cleaned stay as transcribed; a clean-up under way finishes first."""
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _run(self, job: CleanupJob) -> CleanupOutcome:
        t = time.perf_counter()
        out = self._clean(job)
        out.seconds = time.perf_counter() - t
        out = self._store(job, out)
        if self.on_done is not None:
            try:
                self.on_done(job, out)
            except Exception:  # a listener's fault must not hide the outcome
                log.exception("note clean-up listener failed")
        return out

    def _clean(self, job: CleanupJob) -> CleanupOutcome:
        said = job.transcript.text
        avoid = self.record.off_models()
        try:
            answer = self.complete(CLEAN_TASK, CLEAN_PROMPT.format(text=said), self.privacy, avoid=avoid)
        except Exception as exc:  # the cleaner failing must not lose the note: it is saved
            reason = str(exc) if isinstance(exc, DeskmindError) else f"{type(exc).__name__}: {exc}"
            first = (reason.splitlines() or [""])[0]
            if avoid and _no_candidate(exc):
                if avoid not in self._told_off:
                    self._told_off.add(avoid)
                    log.info("note clean-up is off for %s and no other model can do it: notes stay "
                             "as transcribed", ", ".join(sorted(avoid)))
                return CleanupOutcome(status="off", reason=f"clean-up is off for {', '.join(sorted(avoid))}")
            log.warning("note kept as transcribed: clean-up failed (%s)", first)
            log.debug("note clean-up failure in full", exc_info=True)
            return CleanupOutcome(status="failed", reason=f"cleanup failed ({reason})")
        model = getattr(answer, "model", "") or "unknown model"
        cleaned = answer.strip()
        why = unfaithful_cleanup(said, cleaned) if cleaned else "it was empty"
        if why:
            log.warning("note clean-up by %s not used: %s", model, why)
            switched = self.record.rejected(model, why)
            return CleanupOutcome(model=model, status="rejected", switched_off=switched,
                                  reason=f"the clean-up was not used ({why})")
        self.record.accepted(model)
        return CleanupOutcome(cleaned=cleaned, model=model, status="cleaned")

    def _store(self, job: CleanupJob, out: CleanupOutcome) -> CleanupOutcome:
        draft = note_draft(job.note_id, job.transcript, job.audio_path, privacy=self.privacy,
                           cleaned=out.cleaned, recorded_at=job.recorded_at, origin=job.origin)
        draft.metadata["cleanup"] = out.status if not out.reason else f"{out.status}: {out.reason}"
        if out.model:
            draft.metadata["cleaned_by" if out.cleaned else "cleanup_model"] = out.model
        draft.replaces = job.source_id
        try:
            self.remember(draft)
        except SourcesGone:  # forgotten while it was being cleaned: it stays forgotten
            log.info("note %s was forgotten before its clean-up finished", job.source_id)
            return CleanupOutcome(model=out.model, status="forgotten", seconds=out.seconds)
        return out


def _no_candidate(exc: BaseException) -> bool:
    from deskmind.core.routing.router import RoutingError

    return isinstance(exc, RoutingError)
