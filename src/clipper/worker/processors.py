"""The processors the worker runs, by source type: uploads always; URL sources (`youtube`)
only with ENABLE_YTDLP=true (otherwise such jobs fail at once with NO_PROCESSOR)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..services.clipping import ClipProcessor, Source, UploadedSource, UrlSource
from ..services.processing import Processor
from ..services.reading import SourceReading
from ..services.subtitling import SpeechModel, speech_spec
from ..settings import Settings
from ..storage import Storage


def default_processors(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    storage: Storage,
    reading: SourceReading,
) -> dict[str, Processor]:
    """`sessions`: for the lock over a batch's shared fetch of its URL source; `reading`: how
    sources reach FFmpeg (by range, or downloaded), which the caller closes."""
    speech = SpeechModel(speech_spec(settings))  # one for the process: loaded at first use

    def processor(source: Source) -> ClipProcessor:
        return ClipProcessor(
            storage,
            source,
            settings.data_dir / "scratch",
            ffmpeg_timeout_seconds=settings.clip_max_runtime_sec,
            max_source_ms=int(settings.max_clip_input_duration_sec * 1000),
            subtitle_fonts_dir=settings.subtitle_fonts_dir,
            speech=speech,
            # An attempt that renews its lease keeps its folder fresh; one untouched for a
            # whole lease belongs to an attempt whose lease has expired.
            scratch_stale_after_seconds=settings.queue_visibility_sec,
        )

    processors: dict[str, Processor] = {"upload": processor(UploadedSource(storage, reading))}
    if settings.enable_ytdlp:
        timeouts = settings.connection_timeouts()
        processors["youtube"] = processor(
            UrlSource(
                settings.allowed_hosts,
                settings.max_input_bytes,
                settings.fetch_timeout_sec,
                storage=storage,
                reading=reading,
                sessions=sessions,
                deadline_seconds=timeouts.statement_seconds,
                keepalive_seconds=timeouts.idle_in_transaction_seconds / 3,
            )
        )
    return processors
