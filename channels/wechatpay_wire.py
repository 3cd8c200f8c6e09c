"""WeChat Pay API v3 wire messages (pydantic) and their mapping to payfront's channel models.

Kept apart from the adapter's flow code. Only the fields payfront reads are declared; WeChat adds
fields over time, so unknown ones are ignored. Amounts are integer fen and refuse anything but
JSON integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from channels.base import HttpResponse, TradeState, TradeStatus
from channels.errors import (
    ChannelAlreadyPaid,
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- requests -------------------------------------------------------------------------------


class RequestAmount(WireModel):
    total: StrictInt
    currency: StrictStr


class Payer(WireModel):
    openid: StrictStr


class H5Info(WireModel):
    type: StrictStr


class SceneInfo(WireModel):
    payer_client_ip: StrictStr
    h5_info: H5Info | None = None


class PrepayRequest(WireModel):
    """Body of ``POST /v3/pay/transactions/{native|jsapi|app|h5}``; field order is the
    serialised order (WeChat's documented order). ``payer`` is JSAPI's, ``scene_info`` H5's."""

    appid: StrictStr
    mchid: StrictStr
    description: StrictStr
    out_trade_no: StrictStr
    time_expire: StrictStr | None = None
    attach: StrictStr | None = None
    notify_url: StrictStr
    amount: RequestAmount
    payer: Payer | None = None
    scene_info: SceneInfo | None = None


class CloseRequest(WireModel):
    """Body of ``POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close``."""

    mchid: StrictStr


# -- responses ------------------------------------------------------------------------------


class NativePrepayResponse(WireModel):
    code_url: StrictStr


class PrepayIdResponse(WireModel):
    """The JSAPI and App answer: a prepay id the front-end pays with (valid two hours)."""

    prepay_id: StrictStr


class H5PrepayResponse(WireModel):
    h5_url: StrictStr


class ErrorBody(WireModel):
    """Every v3 failure answer: an HTTP status plus ``{code, message}`` (``detail`` optional)."""

    code: StrictStr
    message: StrictStr = ""


class TransactionAmount(WireModel):
    total: StrictInt | None = None
    currency: StrictStr | None = None
    payer_total: StrictInt | None = None
    payer_currency: StrictStr | None = None


class Transaction(WireModel):
    """An order as the query API returns it and as a decrypted payment callback carries it."""

    appid: StrictStr | None = None
    mchid: StrictStr | None = None
    out_trade_no: StrictStr
    transaction_id: StrictStr | None = None
    trade_type: StrictStr | None = None
    trade_state: StrictStr
    trade_state_desc: StrictStr | None = None
    success_time: AwareDatetime | None = None
    attach: StrictStr | None = None
    amount: TransactionAmount | None = None


# -- callbacks ------------------------------------------------------------------------------


class CallbackResource(WireModel):
    algorithm: StrictStr
    ciphertext: StrictStr
    nonce: StrictStr
    associated_data: StrictStr | None = None
    original_type: StrictStr | None = None


class CallbackEnvelope(WireModel):
    """The signed JSON body WeChat POSTs to ``notify_url``."""

    id: StrictStr
    create_time: StrictStr | None = None
    event_type: StrictStr
    resource_type: StrictStr
    summary: StrictStr | None = None
    resource: CallbackResource


# -- mapping to payfront --------------------------------------------------------------------

TRADE_STATES: Mapping[str, TradeState] = {
    "SUCCESS": TradeState.PAID,
    "NOTPAY": TradeState.NOT_PAID,
    "USERPAYING": TradeState.PAYING,
    "CLOSED": TradeState.CLOSED,
    "REVOKED": TradeState.CLOSED,
    "PAYERROR": TradeState.FAILED,
    "REFUND": TradeState.REFUNDED,
}

# Error codes whose meaning does not follow from the HTTP status alone; every other code is
# classified by its status (see ``classify_failure``).
ERROR_CODE_CLASSES: Mapping[str, type[ChannelError]] = {
    "ORDERPAID": ChannelAlreadyPaid,
    "ORDER_NOT_EXIST": ChannelOrderNotFound,
    "FREQUENCY_LIMITED": ChannelRetryable,
    "RATELIMIT_EXCEEDED": ChannelRetryable,
    "RATE_LIMITED": ChannelRetryable,
    "SYSTEM_ERROR": ChannelUnknownOutcome,
    "BANK_ERROR": ChannelUnknownOutcome,
}

_Model = TypeVar("_Model", bound=BaseModel)


def to_json(payload: BaseModel) -> bytes:
    """Serialise once: compact, UTF-8, declaration order; these bytes are signed and sent."""
    return orjson.dumps(payload.model_dump(exclude_none=True))


def load(model: type[_Model], raw: bytes) -> _Model | None:
    """``raw`` parsed as ``model``, or None if it is not JSON of that shape."""
    try:
        return model.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError):
        return None


def _status_class(status: int) -> type[ChannelError]:
    if status == 429:
        return ChannelRetryable
    if 400 <= status < 500:
        return ChannelFatal
    return ChannelUnknownOutcome  # 5xx, and anything WeChat never sends


def classify_failure(response: HttpResponse) -> ChannelError:
    """A verified answer that is not the success the caller expected, as a ``ChannelError``."""
    status = response.status
    if 200 <= status < 300:
        return ChannelUnknownOutcome(
            "UNEXPECTED_RESPONSE", f"HTTP {status} without the expected body", http_status=status
        )
    error = load(ErrorBody, response.body)
    if error is None:
        snippet = response.body[:200].decode("utf-8", "replace")
        return _status_class(status)(f"HTTP_{status}", snippet, http_status=status)
    error_class = ERROR_CODE_CLASSES.get(error.code) or _status_class(status)
    return error_class(error.code, error.message, http_status=status)


def to_trade_status(transaction: Transaction) -> TradeStatus | None:
    """The transaction as payfront's ``TradeStatus``; None if its trade_state is unknown."""
    state = TRADE_STATES.get(transaction.trade_state)
    if state is None:
        return None
    amount = transaction.amount
    return TradeStatus(
        out_trade_no=transaction.out_trade_no,
        state=state,
        channel_state=transaction.trade_state,
        amount_minor=amount.total if amount else None,
        currency=amount.currency if amount else None,
        channel_trade_no=transaction.transaction_id or None,
        paid_at=transaction.success_time,
        merchant_id=transaction.mchid,
        app_id=transaction.appid,
    )
