"""The processors the worker runs, by source type: uploads always; URL sources (`youtube`)
only with ENABLE_YTDLP=true (otherwise such jobs fail at once with NO_PROCESSOR)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..services.clipping import ClipProcessor, Source, UploadedSource, UrlSource
from ..services.processing import Processor
from ..settings import Settings
from ..storage import storage_for


def default_processors(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Processor]:
    """`sessions`: for the lock over a batch's shared fetch of its URL source."""
    storage = storage_for(settings)

    def processor(source: Source) -> ClipProcessor:
        return ClipProcessor(
            storage,
            source,
            settings.data_dir / "scratch",
            ffmpeg_timeout_seconds=settings.clip_max_runtime_sec,
            max_source_ms=int(settings.max_clip_input_duration_sec * 1000),
            subtitle_fonts_dir=settings.subtitle_fonts_dir,
            # An attempt that renews its lease keeps its folder fresh; one untouched for a
            # whole lease belongs to an attempt whose lease has expired.
            scratch_stale_after_seconds=settings.queue_visibility_sec,
        )

    processors: dict[str, Processor] = {"upload": processor(UploadedSource(storage))}
    if settings.enable_ytdlp:
        timeouts = settings.connection_timeouts()
        processors["youtube"] = processor(
            UrlSource(
                settings.allowed_hosts,
                int(settings.max_input_mb * 2**20),
                settings.fetch_timeout_sec,
                storage=storage,
                sessions=sessions,
                deadline_seconds=timeouts.statement_seconds,
                keepalive_seconds=timeouts.idle_in_transaction_seconds / 3,
            )
        )
    return processors
