"""Errors the queue raises, and the one a handler raises to skip its remaining attempts."""


class QueueError(Exception):
    """Base of every error raised by the queue package."""


class PermanentError(Exception):
    """Raise from a handler when retrying cannot help: the message is dead-lettered at once."""


class LeaseLostError(QueueError):
    """This attempt's lease was taken over (it expired and the message was claimed again).

    The attempt can no longer settle the message; its work may be repeated by the new owner.
    """


class QueueNotStartedError(QueueError):
    """The adapter was used before `start()` or after `shutdown()`."""


class SystemicError(Exception):
    """Raise from a handler when the attempt failed for a reason outside its message (the
    disk is full, the database went away): retrying the message elsewhere cannot help and
    charging its attempts would dead-letter a whole backlog for one cause. The consumer gives
    the message back without counting the attempt and pauses claiming, with a backoff, until
    an attempt gets through. `code` names the cause for logs and metrics."""

    code = "SYSTEMIC"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
