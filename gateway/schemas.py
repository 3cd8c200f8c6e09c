"""Wire models of the merchant API (pydantic at the edge)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    StringConstraints,
    ValidationError,
)

from core.errors import InvalidRequest, MalformedBody
from core.money import MAX_AMOUNT_MINOR

ModelT = TypeVar("ModelT", bound=BaseModel)

# Text without control characters: they have no place in these fields, and PostgreSQL
# cannot even store a NUL.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=PRINTABLE)]
MetadataValue = Annotated[str, StringConstraints(max_length=500, pattern=PRINTABLE)]


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: int = Field(gt=0, le=MAX_AMOUNT_MINOR, description="Integer minor units (fen)")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    merchant_order_no: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")
    ]
    # Omitted: the merchant's routing rules pick both (docs/routing.md); ``method`` may then
    # name a kind of payment: qr, redirect, card, in_app.
    channel: (
        Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=PRINTABLE)] | None
    ) = Field(default=None, description="Omitted: chosen by your routing rules")
    method: (
        Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=PRINTABLE)] | None
    ) = Field(
        default=None,
        description="The channel's method; without `channel`, optionally a kind: "
        "`qr`, `redirect`, `card`, `in_app`",
    )
    description: Annotated[str, StringConstraints(min_length=1, max_length=127, pattern=PRINTABLE)]
    expires_in: int = Field(default=900, ge=60, le=7 * 86400, description="Seconds")
    metadata: dict[MetadataKey, MetadataValue] = Field(default_factory=dict, max_length=20)
    payer_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
        | None
    ) = Field(default=None, description="The shopper's id at the channel (WeChat JSAPI: openid)")
    client_ip: IPvAnyAddress | None = Field(
        default=None, description="The shopper's IP address (WeChat H5)"
    )


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: int | None = Field(
        default=None,
        gt=0,
        le=MAX_AMOUNT_MINOR,
        description="Integer minor units; omitted: all that is left to refund",
    )
    reason: (
        Annotated[str, StringConstraints(min_length=1, max_length=80, pattern=PRINTABLE)] | None
    ) = None
    merchant_refund_no: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")
        ]
        | None
    ) = None
    metadata: dict[MetadataKey, MetadataValue] = Field(default_factory=dict, max_length=20)


class RechargeCreate(PaymentCreate):
    """A payment whose money tops up the wallet of ``owner`` (in ``currency``) when paid."""

    owner: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:@]+$")
    ] = Field(description="Your id for the wallet's holder; the wallet is created on first use")


class TransferCreate(BaseModel):
    """Money moved between two of your wallets of one currency, at once."""

    model_config = ConfigDict(extra="forbid", strict=True)

    from_wallet: Annotated[str, StringConstraints(pattern=r"^wal[a-z0-9]{22}$")]
    to_wallet: Annotated[str, StringConstraints(pattern=r"^wal[a-z0-9]{22}$")]
    amount: int = Field(gt=0, le=MAX_AMOUNT_MINOR, description="Integer minor units")
    merchant_transfer_no: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")
        ]
        | None
    ) = None
    description: (
        Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=PRINTABLE)] | None
    ) = None


class WithdrawalCreate(BaseModel):
    """Pay a wallet out to its holder through a channel's payout (transfer) API."""

    model_config = ConfigDict(extra="forbid", strict=True)

    wallet: Annotated[str, StringConstraints(pattern=r"^wal[a-z0-9]{22}$")]
    amount: int = Field(gt=0, le=MAX_AMOUNT_MINOR, description="Integer minor units")
    channel: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=PRINTABLE)]
    payee_id: Annotated[
        str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ] = Field(
        description="The payee at the channel: Alipay logon id or user id, WeChat openid, "
        "Stripe connected account (acct_…)"
    )
    payee_type: (
        Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Z_]+$")] | None
    ) = Field(default=None, description="Alipay: ALIPAY_LOGON_ID (default) or ALIPAY_USER_ID")
    payee_name: (
        Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=PRINTABLE)] | None
    ) = Field(default=None, description="The payee's real name, where the channel checks it")
    remark: (
        Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=PRINTABLE)] | None
    ) = None
    merchant_withdrawal_no: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")
        ]
        | None
    ) = None


class AttemptCreate(BaseModel):
    """A new attempt at paying an open (or failed) trade, at another channel or method."""

    model_config = ConfigDict(extra="forbid", strict=True)

    channel: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=PRINTABLE)]
    method: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=PRINTABLE)]
    expires_in: int = Field(default=900, ge=60, le=7 * 86400, description="Seconds")


class PoliciesPut(BaseModel):
    """What payfront does, unasked, with money it was not asked for (docs/exceptions.md)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    partial_payment: Literal["refund", "accept"] = Field(
        description="Paid less than asked: refund it automatically, or keep it"
    )
    late_payment: Literal["refund", "hold"] = Field(
        description="Paid after the order was closed: refund it automatically, or hold it "
        "for a person (an open anomaly)"
    )


Actor = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=PRINTABLE)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=PRINTABLE)]
EvidenceValue = Annotated[str, StringConstraints(max_length=1000, pattern=PRINTABLE)]


class AnomalyResolve(BaseModel):
    """A person's decision about an anomaly: recorded, it moves no money by itself."""

    model_config = ConfigDict(extra="forbid", strict=True)

    action: Literal["accepted", "refunded", "corrected_at_channel", "dismissed"]
    actor: Actor = Field(description="Who decided (a name or e-mail), kept in the audit trail")
    reason: Reason
    evidence: dict[MetadataKey, EvidenceValue] = Field(default_factory=dict, max_length=20)


class PaymentResolve(BaseModel):
    """A person's settlement of a payment in ``unknown``, after checking the channel."""

    model_config = ConfigDict(extra="forbid", strict=True)

    action: Literal["paid", "failed"]
    actor: Actor = Field(description="Who decided, kept in the audit trail")
    reason: Reason
    evidence: dict[MetadataKey, EvidenceValue] = Field(
        default_factory=dict,
        max_length=20,
        description="e.g. channel_trade_no, a console screenshot reference",
    )


def parse_body(model: type[ModelT], body: bytes) -> ModelT:
    """Parse JSON bytes into ``model``; errors become ``MalformedBody``/``InvalidRequest``."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"request body is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedBody("request body must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidRequest(
            f"{param}: {first['msg']}", code="parameter_invalid", param=param
        ) from None


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: Annotated[
        str,
        StringConstraints(min_length=8, max_length=1024, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$"),
    ]


class RoutingRuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    priority: int = Field(ge=0, le=1_000_000, description="Lower is tried first; unique")
    channel_account_id: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=PRINTABLE)
    ]
    method: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=PRINTABLE)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = Field(
        default=None, description="Omitted: any currency the channel accepts"
    )
    min_amount: int | None = Field(default=None, ge=0, le=MAX_AMOUNT_MINOR)
    max_amount: int | None = Field(default=None, ge=0, le=MAX_AMOUNT_MINOR)


class RoutingRulesPut(BaseModel):
    """The whole routing table: replaces the merchant's rules."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rules: list[RoutingRuleSpec] = Field(max_length=50)
