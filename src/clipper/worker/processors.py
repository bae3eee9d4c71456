"""The processors the worker runs, by source type.

Uploads are cut by the clip processor. URL sources (`youtube`) have none yet: such jobs fail
at once with NO_PROCESSOR rather than pretend."""

from __future__ import annotations

from ..services.clipping import ClipProcessor
from ..services.processing import Processor
from ..settings import Settings
from ..storage import LocalStorage


def default_processors(settings: Settings) -> dict[str, Processor]:
    storage = LocalStorage(settings.data_dir)
    clips = ClipProcessor(storage, settings.data_dir / "scratch", settings.clip_max_runtime_sec)
    return {"upload": clips}
