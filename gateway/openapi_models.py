"""Response models of the merchant API: the JSON shapes of ``core.views`` and the routes, as
pydantic models, so the OpenAPI description is generated from them (and tests hold the real
answers to them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.states import PayStatus, RefundStatus

# Answers are held to exactly these fields: a new field must be documented here first.
_EXACT = ConfigDict(extra="forbid")


class WechatpayNativeCredential(BaseModel):
    """WeChat Pay Native: render ``code_url`` as a QR code for the shopper to scan."""

    model_config = _EXACT

    type: Literal["wechatpay_native"]
    code_url: str = Field(examples=["weixin://wxpay/bizpayurl?pr=abc123"])


class AlipayQrCredential(BaseModel):
    """Alipay precreate: render ``qr_code`` as a QR code."""

    model_config = _EXACT

    type: Literal["alipay_qr"]
    qr_code: str = Field(examples=["https://qr.alipay.com/bax01234"])


class AlipayPageCredential(BaseModel):
    """Alipay desktop page payment: redirect the shopper to ``pay_url`` (signed locally)."""

    model_config = _EXACT

    type: Literal["alipay_page"]
    pay_url: str


class AlipayWapCredential(BaseModel):
    """Alipay mobile web payment: redirect the shopper to ``pay_url`` (signed locally)."""

    model_config = _EXACT

    type: Literal["alipay_wap"]
    pay_url: str


class StripePaymentIntentCredential(BaseModel):
    """Stripe: confirm the PaymentIntent with Stripe.js using ``client_secret``."""

    model_config = _EXACT

    type: Literal["stripe_payment_intent"]
    client_secret: str
    payment_intent_id: str


Credential = Annotated[
    WechatpayNativeCredential
    | AlipayQrCredential
    | AlipayPageCredential
    | AlipayWapCredential
    | StripePaymentIntentCredential,
    Field(discriminator="type"),
]


class Failure(BaseModel):
    """Why a prepay failed: the channel's own code and message where it gave them."""

    model_config = _EXACT

    code: str = Field(examples=["PARAM_ERROR"])
    message: str


_CREDENTIAL_DOC = (
    "What the shopper needs to pay, one variant per channel and method; null until the "
    "status is `awaiting_payment` (and after a failed prepay)."
)
_STATUS_DOC = (
    "`pending` → `prepaying` → `awaiting_payment` → `paid`; or `prepay_failed`, or `closed` "
    "(expired unpaid)."
)


class Payment(BaseModel):
    """A payment as its merchant sees it (``core.views.payment_object``)."""

    model_config = _EXACT

    object: Literal["payment"]
    pay_no: str = Field(description="payfront's payment number", examples=["pay_01J..."])
    trade_no: str
    token: str = Field(description="The shopper's token for `GET /v1/tokens/{token}`")
    status: PayStatus = Field(description=_STATUS_DOC)
    amount: int = Field(description="Integer minor units of `currency`")
    currency: str = Field(examples=["CNY"])
    merchant_order_no: str
    channel: str = Field(examples=["wechatpay"])
    method: str = Field(examples=["native"])
    description: str
    metadata: dict[str, str]
    credential: Credential | None = Field(description=_CREDENTIAL_DOC)
    failure: Failure | None = Field(description="Set when the status is `prepay_failed`")
    expires_at: datetime
    created_at: datetime
    paid_at: datetime | None
    amount_refunded: int = Field(
        description="Sum of this payment's refunds that succeeded or are in progress"
    )
    livemode: bool


class Refund(BaseModel):
    """A refund as its merchant sees it (``core.views.refund_object``)."""

    model_config = _EXACT

    object: Literal["refund"]
    refund_no: str = Field(
        description="payfront's refund number, also the channel's out_refund_no",
        examples=["rfd..."],
    )
    pay_no: str
    trade_no: str
    merchant_refund_no: str | None
    status: RefundStatus = Field(
        description="`pending` → `submitting` → `processing` → `succeeded`; or `failed` "
        "(the amount can be refunded again)"
    )
    amount: int = Field(description="Integer minor units of `currency`")
    currency: str
    channel: str
    reason: str | None
    metadata: dict[str, str]
    failure: Failure | None = Field(description="Set when the status is `failed`")
    created_at: datetime
    succeeded_at: datetime | None
    livemode: bool


class RefundList(BaseModel):
    model_config = _EXACT

    object: Literal["list"]
    data: list[Refund]


class Token(BaseModel):
    """What a shopper's front-end sees through the token (``core.views.token_object``)."""

    model_config = _EXACT

    object: Literal["token"]
    token: str
    pay_no: str
    status: PayStatus = Field(description=_STATUS_DOC)
    amount: int
    currency: str
    description: str
    expires_at: datetime
    credential: Credential | None = Field(description=_CREDENTIAL_DOC)
    failure: Failure | None


class WebhookEndpoint(BaseModel):
    """A registered webhook endpoint; ``secret`` is answered only when it is created."""

    model_config = _EXACT

    object: Literal["webhook_endpoint"]
    id: str
    url: str
    secret: str = Field(description="The signing secret of `Payfront-Signature` (shown once)")
    enabled: bool
    created_at: datetime


class ErrorDetail(BaseModel):
    model_config = _EXACT

    type: str = Field(
        description="The error's class: `invalid_request_error`, `authentication_error`, "
        "`not_found_error`, `conflict_error`, `idempotency_error`, `api_error`, "
        "`service_unavailable_error`",
        examples=["invalid_request_error"],
    )
    code: str = Field(
        description="The specific error; see each response", examples=["parameter_invalid"]
    )
    message: str = Field(examples=["amount: Input should be greater than 0"])
    param: str | None = Field(description="The parameter at fault, if one is", examples=["amount"])
    request_id: str = Field(description="Also in the `Request-Id` header", examples=["req_..."])


class Error(BaseModel):
    """Every error payfront answers: one object, with a ``Request-Id`` header of the same id."""

    model_config = _EXACT

    error: ErrorDetail


class Health(BaseModel):
    model_config = _EXACT

    status: Literal["ok"]


class Readiness(BaseModel):
    """``checks`` says ``ok`` or ``error: <ExceptionName>`` for the database and Redis."""

    model_config = _EXACT

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(examples=[{"database": "ok", "redis": "ok"}])


class EventData(BaseModel):
    model_config = _EXACT

    object: Payment | Refund = Field(
        description="A payment for `payment.*`, a refund for `refund.*`"
    )


class Event(BaseModel):
    """A webhook event, POSTed to each enabled endpoint; de-duplicate by ``id``."""

    model_config = _EXACT

    id: str = Field(description="Also in the `Payfront-Event-Id` header", examples=["evt_..."])
    object: Literal["event"]
    type: Literal[
        "payment.succeeded", "payment.failed", "payment.closed", "refund.succeeded", "refund.failed"
    ]
    created_at: datetime
    livemode: bool
    data: EventData
