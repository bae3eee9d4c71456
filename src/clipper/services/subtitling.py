"""A clip's subtitles, from the first source that has them: an uploaded .srt sidecar, the
source's own text track in the requested language, else speech recognition of the segment."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..db.models import Job
from ..domain.subtitles import SubtitlesMade, SubtitleSource
from ..media.cues import layout_cues
from ..media.errors import MissingSourceError, SpeechLanguageError
from ..media.ffmpeg import ProgressCallback
from ..media.inputs import MediaInput
from ..media.probe import MediaInfo
from ..media.speech import SpeechModel, SpeechModelSpec, extract_speech_audio, whisper_language
from ..media.subtitles import cut_sidecar, cut_subtitles, matching_track, write_cues
from ..settings import Settings
from ..storage import Storage, subtitles_key

__all__ = ["SpeechModel", "SpeechModelSpec", "Subtitler", "speech_refusal", "speech_spec"]

logger = logging.getLogger("clipper.worker")

NO_AUDIO_NOTE = "the source has no audio: the subtitles are empty"
NO_SPEECH_NOTE = "no speech was heard in the clip: the subtitles are empty"


def speech_spec(settings: Settings) -> SpeechModelSpec:
    """The speech model the settings name (ASR_MODEL, ASR_DEVICE, ASR_COMPUTE_TYPE)."""
    return SpeechModelSpec(settings.asr_model, settings.asr_device, settings.asr_compute_type)


def speech_refusal(language: str | None, spec: SpeechModelSpec) -> str | None:
    """Why subtitles from speech in `language` cannot be made with the model `spec` names,
    or None when they can."""
    try:
        whisper_language(language, spec)
    except SpeechLanguageError as exc:
        return str(exc)
    return None


class Subtitler:
    """Writes a job's clip.srt, in the clip's time, and says where it came from."""

    def __init__(self, storage: Storage, speech: SpeechModel, *, timeout_seconds: float) -> None:
        self._storage = storage
        self._speech = speech
        self._timeout = timeout_seconds

    async def make(
        self,
        job: Job,
        source: MediaInput,
        info: MediaInfo,
        start_ms: int,
        output: Path,
        on_transcribe: ProgressCallback,
    ) -> SubtitlesMade:
        """The subtitles of [start_ms, job.end_ms) of `source` (`start_ms`: where the clip
        really starts, a fast cut's keyframe) into `output`. `on_transcribe`: the share of
        the segment transcribed, when it comes to speech recognition."""
        if job.subtitles_upload_key is not None:
            sidecar = subtitles_key(job.subtitles_upload_key)
            if not await self._storage.exists(sidecar):
                raise MissingSourceError("the subtitles upload no longer exists")
            local = await self._storage.local_path(sidecar, output.parent)
            cues = await cut_sidecar(local, start_ms, job.end_ms, output)
            return SubtitlesMade(SubtitleSource.SIDECAR, cues)
        track = matching_track(info, job.subtitle_lang)
        if track is not None:
            cues = await cut_subtitles(source, track, start_ms, job.end_ms, output, self._timeout)
            return SubtitlesMade(
                SubtitleSource.TRACK, cues, language=info.subtitle_languages[track]
            )
        return await self._from_speech(job, source, info, start_ms, output, on_transcribe)

    async def _from_speech(
        self,
        job: Job,
        source: MediaInput,
        info: MediaInfo,
        start_ms: int,
        output: Path,
        on_transcribe: ProgressCallback,
    ) -> SubtitlesMade:
        model = self._speech.spec.name
        if not info.has_audio:  # nothing to hear, in any language
            write_cues([], output)
            return SubtitlesMade(SubtitleSource.SPEECH, 0, model=model, note=NO_AUDIO_NOTE)
        # A language the model cannot do fails here (the API refuses it for uploads already).
        language = whisper_language(job.subtitle_lang, self._speech.spec)
        audio = output.with_name("speech.wav")
        began = time.monotonic()
        await on_transcribe(0.0)  # the stage shows from its start (the model may load first)
        await extract_speech_audio(source, start_ms, job.end_ms, audio, self._timeout)
        clip_ms = job.end_ms - start_ms
        transcript = await self._speech.transcribe(
            audio, language, clip_ms, on_transcribe, timeout_seconds=self._timeout
        )
        await on_transcribe(1.0)  # the model's last segment may end before the clip does
        cues = layout_cues(transcript.segments, clip_ms)
        write_cues(cues, output)
        took = time.monotonic() - began
        # The log line carries the job id; the speed tells an operator what the model costs.
        logger.info(
            "transcribed the clip's %.1f s of audio in %.1f s: %d cues (%s)",
            clip_ms / 1000,
            took,
            len(cues),
            transcript.language,
            extra={"real_time_factor": round(took / (clip_ms / 1000), 3)},
        )
        return SubtitlesMade(
            SubtitleSource.SPEECH,
            len(cues),
            language=transcript.language,
            model=model,
            note=None if cues else NO_SPEECH_NOTE,
        )
