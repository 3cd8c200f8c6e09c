"""The Channel protocol: what every channel adapter offers, as functions of data.

Adapters build signed requests and parse (and verify) responses and callbacks without doing
any I/O themselves (sans-I/O); ``channels.transport`` sends the requests.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request ready to send: ``body`` is exactly the bytes that were signed."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class CreateOrder:
    """What payfront asks a channel to create for one pay order. Datetimes are aware."""

    out_trade_no: str
    amount_minor: int
    currency: str
    description: str
    notify_url: str
    method: str
    expires_at: datetime | None = None
    attach: str | None = None


@dataclass(frozen=True, slots=True)
class PrepayResult:
    """The credential a shopper needs to pay, e.g. ``{"code_url": "weixin://..."}``."""

    credential: Mapping[str, str]
    channel_trade_no: str | None = None


class TradeState(enum.StrEnum):
    """A channel's view of one order, normalised."""

    NOT_PAID = "not_paid"
    PAYING = "paying"
    PAID = "paid"
    CLOSED = "closed"
    FAILED = "failed"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class TradeStatus:
    """An order as the channel reports it (query result or callback content)."""

    out_trade_no: str
    state: TradeState
    channel_state: str
    amount_minor: int | None = None
    currency: str | None = None
    channel_trade_no: str | None = None
    paid_at: datetime | None = None
    merchant_id: str | None = None
    app_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """A verified, decrypted callback, normalised."""

    event_id: str
    event_type: str
    trade: TradeStatus
    raw: Mapping[str, object] = field(default_factory=dict)


class Channel(Protocol):
    """One channel account's protocol code. Every method is pure: no I/O."""

    name: str

    def build_create(self, order: CreateOrder, *, now: datetime) -> HttpRequest | PrepayResult:
        """Build and sign the channel's create-order request.

        A method that needs no server call (e.g. a signed redirect URL built locally) returns
        the ``PrepayResult`` itself. The same order must give identical parameters every time,
        so a repeated create is recognised by the channel as the same order.
        """
        ...

    def parse_create(self, response: HttpResponse, *, now: datetime) -> PrepayResult:
        """Verify the create response's signature and return the credential.

        Raises a ``ChannelError`` subclass classified by what is safe to do next.
        """
        ...

    def build_query(
        self, out_trade_no: str, *, channel_trade_no: str | None = None, now: datetime
    ) -> HttpRequest:
        """Build and sign a query of one order by payfront's order number (channels that only
        know their own id use ``channel_trade_no``, and raise ``ChannelOrderNotFound`` without
        it)."""
        ...

    def parse_query(self, response: HttpResponse, *, now: datetime) -> TradeStatus:
        """Verify and parse a query answer (``ChannelOrderNotFound`` if there is none)."""
        ...

    def build_close(
        self, out_trade_no: str, *, channel_trade_no: str | None = None, now: datetime
    ) -> HttpRequest:
        """Build and sign a close of one unpaid order."""
        ...

    def parse_close(self, response: HttpResponse, *, now: datetime) -> None:
        """Verify a close answer; raise a ``ChannelError`` unless the order is closed."""
        ...

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, *, now: datetime
    ) -> ChannelEvent:
        """Verify (and decrypt) a callback; raise ``CallbackRejected`` if it is not genuine, and
        ``CallbackIgnored`` for a genuine one that carries nothing for payfront."""
        ...

    def ack_success(self) -> HttpResponse:
        """The answer that tells the channel the callback was received."""
        ...

    def ack_failure(self, message: str) -> HttpResponse:
        """The answer that tells the channel to send the callback again."""
        ...
