"""The Channel protocol: what every channel adapter offers, as functions of data.

Adapters build signed requests and parse (and verify) responses and callbacks without doing
any I/O themselves (sans-I/O); ``channels.transport`` sends the requests.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
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
    # The shopper's id at the channel, for in-app methods (WeChat JSAPI: the openid).
    payer_id: str | None = None
    # The shopper's IP address, for methods that want it (WeChat H5).
    client_ip: str | None = None


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
class CreateRefund:
    """What payfront asks a channel to refund, out of one paid order.

    ``out_refund_no`` is payfront's refund number: stable across retries, so a repeated
    refund call is recognised by the channel as the same refund (WeChat ``out_refund_no``,
    Alipay ``out_request_no``, Stripe's ``Idempotency-Key`` and ``metadata``).
    """

    out_refund_no: str
    out_trade_no: str
    refund_minor: int
    # The pay order's whole amount (WeChat wants it with every refund).
    total_minor: int
    currency: str
    notify_url: str
    channel_trade_no: str | None = None
    reason: str | None = None


class RefundState(enum.StrEnum):
    """A channel's view of one refund, normalised."""

    PROCESSING = "processing"  # accepted; the money has not moved yet
    SUCCEEDED = "succeeded"  # the money went back to the shopper
    FAILED = "failed"  # the channel gave up (closed, abnormal, failed, canceled): no money moved


@dataclass(frozen=True, slots=True)
class RefundStatus:
    """A refund as the channel reports it (refund answer, refund query or refund callback)."""

    out_refund_no: str
    state: RefundState
    channel_state: str
    out_trade_no: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    channel_refund_no: str | None = None
    succeeded_at: datetime | None = None
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class CreatePayout:
    """Money sent from the merchant's channel balance to a payee (a withdrawal from a wallet
    held by payfront): Alipay ``alipay.fund.trans.uni.transfer``, WeChat Pay's merchant
    transfer (``/v3/fund-app/mch-transfer/transfer-bills``), Stripe ``/v1/transfers`` to a
    connected account. ``out_payout_no`` is stable across retries (the channel's
    idempotency: out_biz_no, out_bill_no, Idempotency-Key)."""

    out_payout_no: str
    amount_minor: int
    currency: str
    # Who receives it, in the channel's own terms: Alipay identity (ALIPAY_LOGON_ID /
    # ALIPAY_USER_ID), WeChat openid, Stripe connected account id (acct_…).
    payee_id: str
    payee_type: str | None = None
    payee_name: str | None = None
    remark: str | None = None
    notify_url: str | None = None


class PayoutState(enum.StrEnum):
    PROCESSING = "processing"  # accepted; not yet final (WeChat may wait for the payee)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # refused or given up: no money moved


@dataclass(frozen=True, slots=True)
class PayoutStatus:
    out_payout_no: str
    state: PayoutState
    channel_state: str
    amount_minor: int | None = None
    channel_payout_no: str | None = None
    succeeded_at: datetime | None = None
    failure_reason: str | None = None
    # What the payee must do to receive it, where the channel asks (WeChat's package_info).
    payee_action: Mapping[str, str] = field(default_factory=dict)


class StatementLineKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One line of a channel's statement (bill) for one day, normalised. Amounts are minor
    units, always positive; ``kind`` says which way the money went."""

    kind: StatementLineKind
    out_trade_no: str
    amount_minor: int
    currency: str
    fee_minor: int
    occurred_at: datetime
    channel_state: str
    channel_trade_no: str | None = None
    out_refund_no: str | None = None
    channel_refund_no: str | None = None


@dataclass(frozen=True, slots=True)
class StatementPage:
    """One step of fetching a statement: the lines it gave, and the request for the next step
    (a download URL, the next page) with what parsing its answer needs (e.g. the file's
    expected hash); ``next_request`` None means the statement is complete."""

    lines: tuple[StatementLine, ...] = ()
    next_request: HttpRequest | None = None
    cursor: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """A verified, decrypted callback, normalised: about a payment (``trade``), a refund
    (``refund``) or a payout (``payout``); exactly one of them is set."""

    event_id: str
    event_type: str
    trade: TradeStatus | None
    raw: Mapping[str, object] = field(default_factory=dict)
    refund: RefundStatus | None = None
    payout: PayoutStatus | None = None


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

    def parse_create(
        self, response: HttpResponse, *, order: CreateOrder, now: datetime
    ) -> PrepayResult:
        """Verify the answer to creating ``order`` and return the credential.

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

    def build_refund(self, refund: CreateRefund, *, now: datetime) -> HttpRequest:
        """Build and sign a refund of part or all of one paid order. The same refund must give
        identical parameters every time (the channel's own refund idempotency)."""
        ...

    def parse_refund(
        self, response: HttpResponse, *, refund: CreateRefund, now: datetime
    ) -> RefundStatus:
        """Verify the answer to ``refund`` and return the refund as accepted (often still
        ``PROCESSING``); raise a classified ``ChannelError`` when it was not accepted.
        (Some channels' answers name neither the refund nor its amount: Alipay's.)"""
        ...

    def build_refund_query(
        self,
        out_refund_no: str,
        *,
        out_trade_no: str,
        channel_trade_no: str | None = None,
        channel_refund_no: str | None = None,
        now: datetime,
    ) -> HttpRequest:
        """Build and sign a query of one refund by payfront's refund number (channels that
        only know their own ids use the channel ids given)."""
        ...

    def parse_refund_query(
        self, response: HttpResponse, *, out_refund_no: str, now: datetime
    ) -> RefundStatus:
        """Verify and parse a refund query answer (``ChannelOrderNotFound`` if the channel has
        no such refund)."""
        ...

    def build_payout(self, payout: CreatePayout, *, now: datetime) -> HttpRequest:
        """Build and sign a payout (``ChannelFatal`` code ``PAYOUT_NOT_SUPPORTED`` where the
        account cannot pay out). The same payout gives identical parameters every time."""
        ...

    def parse_payout(
        self, response: HttpResponse, *, payout: CreatePayout, now: datetime
    ) -> PayoutStatus:
        """Verify the answer to ``payout``; raise a classified ``ChannelError`` when refused."""
        ...

    def build_payout_query(
        self, out_payout_no: str, *, channel_payout_no: str | None = None, now: datetime
    ) -> HttpRequest:
        """Build and sign a query of one payout by payfront's number."""
        ...

    def parse_payout_query(
        self, response: HttpResponse, *, out_payout_no: str, now: datetime
    ) -> PayoutStatus:
        """Verify and parse a payout query (``ChannelOrderNotFound`` if there is none)."""
        ...

    def build_statement(self, day: date, *, now: datetime) -> HttpRequest:
        """Build and sign the first request for the account's statement of ``day`` (the
        channel's own calendar day)."""
        ...

    def parse_statement(
        self, response: HttpResponse, *, cursor: Mapping[str, str], now: datetime
    ) -> StatementPage:
        """Verify and parse one step of a statement; ``cursor`` is the previous page's."""
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
