"""The processors the worker runs, by source type.

Empty until clip cutting lands (the FFmpeg processor of the next issue): a job with no
processor fails at once with NO_PROCESSOR. Nothing here pretends to cut clips."""

from __future__ import annotations

from ..services.processing import Processor


def default_processors() -> dict[str, Processor]:
    return {}
