"""Where a clip's subtitles came from, as the job records it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class SubtitleSource(enum.StrEnum):
    """The sources of a clip's subtitles, in the order they are looked for."""

    SIDECAR = "sidecar"  # an uploaded .srt the job names (subtitlesKey)
    TRACK = "track"  # the source's own text track in the requested language
    SPEECH = "speech"  # speech recognition of the clip's segment


@dataclass(frozen=True, slots=True)
class SubtitlesMade:
    """The subtitles a done job delivered: their source; their language where known (the
    track's tag, or the language the model transcribed); how many cues; the speech model that
    heard them; and a note when they are empty for a reason (no speech in the clip)."""

    source: SubtitleSource
    cues: int
    language: str | None = None
    model: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "cues": self.cues,
            "language": self.language,
            "model": self.model,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> SubtitlesMade:
        return cls(
            source=SubtitleSource(stored["source"]),
            cues=int(stored["cues"]),
            language=stored.get("language"),
            model=stored.get("model"),
            note=stored.get("note"),
        )
