"""What state an upload's record is in: a direct upload (presigned, its bytes sent by the client
to the object store itself) is recorded when it is asked for, and becomes an upload like any
other only once its bytes are checked."""

from __future__ import annotations

import enum
from datetime import timedelta

__all__ = ["PENDING_GRACE", "UploadState"]


class UploadState(enum.StrEnum):
    # Presigned, not completed: owned and counted against its tenant's quota (at its declared
    # size), but no job may use it.
    PENDING = "pending"
    # Stored and probed: what every job's upload is.
    STORED = "stored"


# How long past its URL's expiry a pending upload is kept before retention deletes it: the
# store checks a presigned request's expiry when the request starts, so a large PUT begun just
# before may still be arriving, and its client completes the upload after that.
PENDING_GRACE = timedelta(hours=1)
