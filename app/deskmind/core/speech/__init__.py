"""Speech: local Whisper transcription, push-to-talk voice notes and the meeting recorder.

No audio leaves the machine. Qt-free; the desktop maps the plain callbacks (``on_segment``,
``on_error``, ``on_level``) onto signals.
"""

from deskmind.core.speech.engine import Segment, Transcript, TranscriptionEngine
from deskmind.core.speech.service import Speech
from deskmind.core.speech.settings import SpeechSettings, speech_settings

__all__ = ["Segment", "Speech", "SpeechSettings", "Transcript", "TranscriptionEngine",
           "speech_settings"]
