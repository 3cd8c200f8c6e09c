"""Response models of the merchant API: the JSON shapes of ``core.views`` and the routes, as
pydantic models, so the OpenAPI description is generated from them (and tests hold the real
answers to them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.states import PayStatus, RefundStatus

# Answers are held to exactly these fields: a new field must be documented here first.
_EXACT = ConfigDict(extra="forbid")


class WechatpayNativeCredential(BaseModel):
    """WeChat Pay Native: render ``code_url`` as a QR code for the shopper to scan."""

    model_config = _EXACT

    type: Literal["wechatpay_native"]
    code_url: str = Field(examples=["weixin://wxpay/bizpayurl?pr=abc123"])


class WechatpayJsapiCredential(BaseModel):
    """WeChat Pay JSAPI (in WeChat's browser or a Mini Program): pass these fields to
    ``wx.requestPayment`` / ``WeixinJSBridge``; ``paySign`` is RSA-SHA256 over them."""

    model_config = _EXACT

    type: Literal["wechatpay_jsapi"]
    appId: str  # WeChat's own field names, as wx.requestPayment takes them
    timeStamp: str
    nonceStr: str
    package: str = Field(examples=["prepay_id=wx201410272009395522657a690389285100"])
    signType: Literal["RSA"]
    paySign: str


class WechatpayAppCredential(BaseModel):
    """WeChat Pay App: the fields of the App SDK's ``PayReq``."""

    model_config = _EXACT

    type: Literal["wechatpay_app"]
    appid: str
    partnerid: str
    prepayid: str
    package: Literal["Sign=WXPay"]
    noncestr: str
    timestamp: str
    sign: str


class WechatpayH5Credential(BaseModel):
    """WeChat Pay H5 (a mobile browser outside WeChat): redirect the shopper to ``h5_url``."""

    model_config = _EXACT

    type: Literal["wechatpay_h5"]
    h5_url: str


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
    | WechatpayJsapiCredential
    | WechatpayAppCredential
    | WechatpayH5Credential
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
    "(expired unpaid, or replaced by a newer attempt), `unknown` (the channel's answer was "
    "lost; settled by a check or by hand), `partially_paid` (paid less than asked)."
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
    paid_amount: int | None = Field(
        description="What the channel says was received: `amount`, or less when "
        "`partially_paid`; null until paid"
    )
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


class RoutingRule(BaseModel):
    """One routing rule (``core.routing.rule_object``)."""

    model_config = _EXACT

    priority: int = Field(description="Lower is tried first")
    channel_account_id: str
    channel: str = Field(examples=["wechatpay"])
    method: str = Field(examples=["native"])
    kind: str = Field(description="`qr`, `redirect`, `card` or `in_app`", examples=["qr"])
    currency: str | None = Field(description="null: any currency the channel accepts")
    min_amount: int | None = Field(description="Inclusive; null: no lower bound")
    max_amount: int | None = Field(description="Inclusive; null: no upper bound")
    enabled: bool = Field(description="false: the account is disabled; the rule is skipped")


class RoutingRules(BaseModel):
    """A merchant's routing table."""

    model_config = _EXACT

    object: Literal["routing_rules"]
    rules: list[RoutingRule]


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
    """``checks`` says ``ok`` or ``error: <ExceptionName>`` for the live database, the shadow
    (test-mode) database and Redis; ``status`` follows the live database and Redis only."""

    model_config = _EXACT

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(
        examples=[{"database": "ok", "shadow_database": "ok", "redis": "ok"}]
    )


class Wallet(BaseModel):
    """Stored value held for one of your users, in one currency (``core.wallets``)."""

    model_config = _EXACT

    object: Literal["wallet"]
    wallet_id: str = Field(examples=["wal0mww..."])
    owner: str = Field(description="Your id for the wallet's holder")
    currency: str
    balance: int = Field(description="Integer minor units; never below zero")
    livemode: bool
    created_at: datetime


class WalletMovement(BaseModel):
    model_config = _EXACT

    kind: Literal["recharge", "transfer_in", "transfer_out"]
    ref: str = Field(description="The pay_no of a recharge, the transfer_no of a transfer")
    amount: int = Field(description="Signed: negative for money out")
    balance_after: int
    created_at: datetime


class WalletWithMovements(Wallet):
    movements: list[WalletMovement] = Field(description="The latest 100, newest first")


class WalletList(BaseModel):
    model_config = _EXACT

    object: Literal["list"]
    data: list[Wallet]


class RechargeCredit(Wallet):
    """``recharge.succeeded``: the wallet after the credit."""

    recharged: int
    pay_no: str


class Transfer(BaseModel):
    """Money moved between two of your wallets, at once (``succeeded``) or not at all."""

    model_config = _EXACT

    object: Literal["transfer"]
    transfer_no: str
    from_wallet: str
    to_wallet: str
    amount: int
    currency: str
    status: Literal["succeeded"]
    merchant_transfer_no: str | None
    description: str | None
    livemode: bool
    created_at: datetime


class Withdrawal(BaseModel):
    """A wallet paid out to its holder through a channel (``core.withdrawals``)."""

    model_config = _EXACT

    object: Literal["withdrawal"]
    withdrawal_no: str = Field(description="Also the payout's number at the channel")
    wallet_id: str
    merchant_withdrawal_no: str | None
    status: Literal["pending", "submitting", "processing", "succeeded", "failed"] = Field(
        description="The wallet is debited at creation; `failed` credits it back"
    )
    amount: int
    currency: str
    channel: str
    payee_id: str
    payee_type: str | None
    payee_action: dict[str, str] | None = Field(
        description="What the payee must do to receive it, where the channel asks "
        "(WeChat Pay: `package_info` for the confirmation page)"
    )
    failure: Failure | None
    created_at: datetime
    succeeded_at: datetime | None
    livemode: bool


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
        "payment.succeeded",
        "payment.failed",
        "payment.closed",
        "payment.partially_paid",
        "payment.late_succeeded",
        "payment.duplicate",
        "refund.succeeded",
        "refund.failed",
        "recharge.succeeded",
        "transfer.succeeded",
        "withdrawal.succeeded",
        "withdrawal.failed",
    ]
    created_at: datetime
    livemode: bool
    data: EventData


class Resolution(BaseModel):
    """One decision in an audit trail: who (the person named, and the API key used), why,
    and the evidence given."""

    model_config = _EXACT

    action: str
    actor: str
    api_key_prefix: str
    reason: str
    evidence: dict[str, str]
    created_at: datetime


class Anomaly(BaseModel):
    """A difference between what a channel said and what payfront holds, recorded instead
    of applied (amount or currency mismatch, a payment after close, a refund contradicting
    its final state, a refund not made through payfront)."""

    model_config = _EXACT

    object: Literal["anomaly"]
    id: str
    pay_no: str | None = Field(description="The payment it is about, if it is about one")
    withdrawal_no: str | None = Field(description="The withdrawal it is about, if one")
    kind: str = Field(
        examples=[
            "payment_mismatch",
            "partial_payment",
            "late_payment",
            "duplicate_payment",
            "paid_in_state",
            "refund_mismatch",
            "refund_unknown",
            "payout_mismatch",
        ]
    )
    source_id: str = Field(description="The callback's event id, or query:<no>")
    detail: dict[str, Any]
    status: Literal["open", "resolved"]
    created_at: datetime
    resolved_at: datetime | None
    resolutions: list[Resolution]


class AnomalyList(BaseModel):
    model_config = _EXACT

    object: Literal["list"]
    data: list[Anomaly]


class DeliveryAttempt(BaseModel):
    model_config = _EXACT

    attempt_no: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class Delivery(BaseModel):
    model_config = _EXACT

    endpoint_id: str
    url: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    attempt_log: list[DeliveryAttempt]


class EventWithDeliveries(Event):
    """An event as it was sent, with its deliveries to each endpoint and every attempt."""

    deliveries: list[Delivery]


class BalanceAmount(BaseModel):
    model_config = _EXACT

    currency: str = Field(examples=["CNY"])
    amount: int = Field(description="Integer minor units of `currency`; may be negative")


class Balance(BaseModel):
    """What payfront owes the merchant, per currency, from the ledger (hot buffer included)."""

    model_config = _EXACT

    object: Literal["balance"]
    livemode: bool = Field(description="The mode of the API key: test and live are apart")
    pending: list[BalanceAmount] = Field(
        description="Collected, less refunds and channel fees, not yet settled"
    )
    available: list[BalanceAmount] = Field(
        description="Settled: moved from pending once its day was due (T+1 by default), less "
        "refunds of already settled payments; negative: the merchant owes"
    )


class SettlementEntry(BaseModel):
    """The ledger entry that settled the day: pending → available."""

    model_config = _EXACT

    entry_id: int = Field(description="The settlement's journal entry in the ledger")
    amount: int = Field(
        description="Moved pending → available (negative: back): the day's payable, plus "
        "postings of earlier settled days that arrived late, less refunds of already settled "
        "payments (those come out of available directly)"
    )
    settled_at: datetime = Field(description="When the settlement run posted it")


class Settlement(BaseModel):
    """One day's money of one currency, added up from the ledger: payable = collected −
    refunded − fees; and whether the day's pending funds have moved to available."""

    model_config = _EXACT

    object: Literal["settlement"]
    date: str = Field(examples=["2026-11-26"])
    timezone: str = Field(description="Days are counted in this zone", examples=["Asia/Shanghai"])
    currency: str = Field(examples=["CNY"])
    collected: int = Field(description="Gross of the payments that succeeded that day")
    refunded: int = Field(description="Refunds that succeeded that day")
    fees: int = Field(description="Channel fees charged, less fees returned on refunds")
    payable: int = Field(description="collected − refunded − fees; negative: the merchant owes")
    payment_count: int
    refund_count: int
    status: Literal["not_due", "due", "settled", "nothing_to_settle"] = Field(
        description="not_due: pending until available_at; due: waiting for the settlement run; "
        "settled: see settlement; nothing_to_settle: due, and none of its funds are pending"
    )
    available_at: datetime = Field(
        description="When the day's funds become available under the merchant's settlement terms"
    )
    settlement: SettlementEntry | None = Field(description="The day's settlement, once posted")
    livemode: bool


class Trade(BaseModel):
    """The merchant's order with every attempt at paying it (``core.attempts.get_trade``)."""

    model_config = _EXACT

    object: Literal["trade"]
    trade_no: str
    merchant_order_no: str
    status: Literal["open", "paid", "failed", "closed", "partially_paid"]
    amount: int
    currency: str
    description: str
    metadata: dict[str, str]
    current_pay_no: str | None = Field(description="The latest attempt")
    created_at: datetime
    attempts: list[Payment] = Field(description="Oldest first")


class Policies(BaseModel):
    """What payfront does, unasked, with money it was not asked for."""

    model_config = _EXACT

    object: Literal["policies"]
    partial_payment: Literal["refund", "accept"]
    late_payment: Literal["refund", "hold"]


class DifferenceSide(BaseModel):
    """What one side holds for the order (payfront's fee: the one expected at the account's
    rate; the channel's: the one on its statement)."""

    model_config = _EXACT

    amount: int | None
    status: str | None
    fee: int | None


class ReconciliationDifference(BaseModel):
    """One item of the review list (docs/reconciliation.md): found by a daily statement run
    (``daily``: long, short, amount/status/fee mismatch) or at once when a callback or query
    did not match its order (``realtime``: the anomaly of the same number)."""

    model_config = _EXACT

    object: Literal["reconciliation_difference"]
    id: str = Field(examples=["dif_12", "anm_3"])
    source: Literal["daily", "realtime"]
    kind: str = Field(
        examples=["long", "short", "amount_mismatch", "status_mismatch", "fee_mismatch"]
    )
    status: Literal["open", "fixed", "cleared", "resolved"]
    channel_account: str | None
    channel: str | None
    date: str | None = Field(description="The statement day (daily differences)")
    subject: Literal["payment", "refund", "payout"]
    reference: str = Field(description="payfront's number, or the channel's for a long line")
    pay_no: str | None
    refund_no: str | None
    withdrawal_no: str | None
    currency: str | None
    payfront: DifferenceSide | None
    channel_says: DifferenceSide
    detail: dict[str, Any]
    fix: dict[str, Any] | None = Field(description="What payfront did about it, if anything")
    anomaly_id: str | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    resolutions: list[Resolution]


class ReconciliationDifferenceList(BaseModel):
    model_config = _EXACT

    object: Literal["list"]
    data: list[ReconciliationDifference]


class ReconciliationRun(BaseModel):
    """The summary of one reconciliation run of a channel account's statement day."""

    model_config = _EXACT

    object: Literal["reconciliation_run"]
    id: str
    channel_account: str
    channel: str
    date: str
    statement_lines: int
    counts: dict[str, int] = Field(
        description="matched, long, short, amount_mismatch, status_mismatch, fee_mismatch"
    )
    fixed: int = Field(description="Differences payfront fixed by asking the channel")
    open: int = Field(description="Differences of the day still open after the run")
    totals: dict[str, dict[str, int]] = Field(description="Per currency, both sides")
    started_at: datetime
    finished_at: datetime


class ReconciliationRunList(BaseModel):
    model_config = _EXACT

    object: Literal["list"]
    data: list[ReconciliationRun]
