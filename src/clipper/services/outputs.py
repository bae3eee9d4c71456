"""A job's output choices, checked before the job is queued: at once for what fails whatever
the source, and against the source's probed facts when they are known (an upload's). A URL
source is known only on the worker, which refuses there with OUTPUT_UNSUPPORTED."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.clips import ClipRequest, CutMode
from ..domain.outputs import OutputOptions
from ..media.errors import OutputUnsupportedError
from ..media.outputs import check_choices, plan_output
from ..media.probe import MediaInfo


@dataclass(frozen=True, slots=True)
class OutputRefusal:
    """Why the output choices cannot work: the choice at fault, by its name within the
    request's `output` (`videoCodec`), and what is wrong with it."""

    field: str
    message: str


def choices_refusal(options: OutputOptions, cut: CutMode) -> OutputRefusal | None:
    """What in `options` cannot work with any source (or with this FFmpeg), or None."""
    try:
        check_choices(options, cut)
    except OutputUnsupportedError as exc:
        return OutputRefusal(exc.field, exc.reason)
    return None


def check_output(media: MediaInfo, request: ClipRequest) -> OutputRefusal | None:
    """What in the request's output choices cannot work with a source holding `media`, or
    None. The same rules as the worker's (plan_output), asked before anything is queued."""
    try:
        plan_output(request.output, media, request.cut)
    except OutputUnsupportedError as exc:
        return OutputRefusal(exc.field, exc.reason)
    return None
