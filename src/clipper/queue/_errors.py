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
