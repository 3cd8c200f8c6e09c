"""How a channel call failed, classified by what is safe to do next."""

from __future__ import annotations


class ChannelError(Exception):
    """A channel call did not give a usable answer.

    ``code`` and ``message`` are the channel's own where it gave them, else payfront's.
    """

    def __init__(self, code: str, message: str, *, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


class ChannelRetryable(ChannelError):
    """Nothing happened at the channel (connect error, pool timeout, rate limit before work):
    the same call may be sent again."""


class ChannelUnknownOutcome(ChannelError):
    """The request may have reached the channel and been acted on (read timeout, reset, 5xx,
    an answer whose signature does not verify): query with the same order number before
    anything else."""


class ChannelFatal(ChannelError):
    """The channel refused the request for good (bad parameters, closed order, ...):
    sending it again will not help."""


class ChannelModeViolation(ChannelFatal):
    """Refused by payfront itself: a test-mode call to something that is not a sandbox, or a
    live-mode call to (or answered by) a sandbox. Never retried; a configuration error."""


class ChannelOrderNotFound(ChannelFatal):
    """The channel has no order with this number."""


class ChannelAlreadyPaid(ChannelFatal):
    """The channel refused because the order is already paid: query it and apply the payment."""


class CallbackIgnored(Exception):
    """A genuine (verified) callback that carries nothing for payfront, e.g. an event type it
    does not handle: acknowledge it, so the channel does not retry it for days."""

    def __init__(self, event_id: str, event_type: str) -> None:
        super().__init__(f"{event_type} ({event_id})")
        self.event_id = event_id
        self.event_type = event_type


class CallbackRejected(Exception):
    """An incoming callback failed verification (signature, timestamp, decryption, shape).

    Nothing may change because of it; the channel gets its failure acknowledgement.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
