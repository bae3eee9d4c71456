"""A clip request after validation: what the API hands to the service layer."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from dataclasses import dataclass

from .jobs import Priority, SourceType
from .outputs import OutputOptions


class CutMode(enum.StrEnum):
    """EXACT starts on the frame on screen at the start (re-encoding unless that frame is a
    keyframe); FAST starts on the keyframe at or before it, always by stream copy."""

    EXACT = "exact"
    FAST = "fast"


@dataclass(frozen=True, slots=True)
class ClipRequest:
    source_type: SourceType
    start_ms: int
    end_ms: int
    priority: Priority = Priority.NORMAL
    upload_key: str | None = None
    source_url: str | None = None
    with_subtitles: bool = False
    burn_subtitles: bool = False
    subtitle_lang: str | None = None
    subtitles_upload_key: str | None = None
    # POSTed the job's status when it ends (done, failed, cancelled); None: the key's default.
    callback_url: str | None = None
    cut: CutMode = CutMode.EXACT
    output: OutputOptions = dataclasses.field(default_factory=OutputOptions)

    def fingerprint(self) -> str:
        """Stable hash of the request: an Idempotency-Key reused with another body is a 409."""
        fields = dataclasses.asdict(self)
        if fields["callback_url"] is None:
            # Left out when unset, so requests stored before it existed keep their hashes.
            del fields["callback_url"]
        if fields["cut"] == CutMode.EXACT:  # the default: likewise
            del fields["cut"]
        # Likewise when default; else only the choices that differ from it, so a choice added
        # later leaves the hashes of requests that do not make it alone.
        if (output := self.output.to_json()) is None:
            del fields["output"]
        else:
            fields["output"] = output
        canonical = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()
