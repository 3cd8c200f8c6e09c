"""WeChat Pay API v3 domestic refunds: the wire messages of ``/v3/refund/domestic/refunds``, the
refund callback resource, and their mapping to payfront's ``RefundStatus``.

Kept apart from the adapter's flow (``channels.wechatpay``). Amounts are integer fen.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import AwareDatetime, StrictInt, StrictStr

from channels.base import HttpResponse, RefundState, RefundStatus
from channels.errors import (
    ChannelError,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from channels.wechatpay_wire import WireModel, classify_failure

REFUNDS_PATH = "/v3/refund/domestic/refunds"

# -- requests -------------------------------------------------------------------------------


class RefundRequestAmount(WireModel):
    refund: StrictInt
    total: StrictInt
    currency: StrictStr


class RefundRequest(WireModel):
    """Body of ``POST /v3/refund/domestic/refunds``; one of the two order numbers is sent."""

    transaction_id: StrictStr | None = None
    out_trade_no: StrictStr | None = None
    out_refund_no: StrictStr
    reason: StrictStr | None = None
    notify_url: StrictStr
    amount: RefundRequestAmount


# -- answers and callbacks ------------------------------------------------------------------


class RefundAmount(WireModel):
    total: StrictInt | None = None
    refund: StrictInt
    payer_total: StrictInt | None = None
    payer_refund: StrictInt | None = None
    currency: StrictStr | None = None


class Refund(WireModel):
    """A refund as the refund and refund-query answers show it, and as a decrypted refund
    callback carries it (the callback names the state ``refund_status``, the API ``status``)."""

    mchid: StrictStr | None = None
    refund_id: StrictStr
    out_refund_no: StrictStr
    transaction_id: StrictStr | None = None
    out_trade_no: StrictStr | None = None
    status: StrictStr | None = None
    refund_status: StrictStr | None = None
    success_time: AwareDatetime | None = None
    user_received_account: StrictStr | None = None
    amount: RefundAmount

    @property
    def state(self) -> str | None:
        return self.status or self.refund_status


# -- mapping to payfront --------------------------------------------------------------------

# ABNORMAL (the shopper's card was cancelled or frozen) is not final at WeChat: the merchant
# may re-route it by hand or by the abnormal-refund API. No money reached the shopper, so for
# payfront the refund failed; ``channel_state`` keeps the difference.
REFUND_STATES: Mapping[str, RefundState] = {
    "PROCESSING": RefundState.PROCESSING,
    "SUCCESS": RefundState.SUCCEEDED,
    "CLOSED": RefundState.FAILED,
    "ABNORMAL": RefundState.FAILED,
}

FAILURE_REASONS: Mapping[str, str] = {
    "CLOSED": "refund closed by WeChat Pay (e.g. the funding account stayed short for 7 days)",
    "ABNORMAL": "refund abnormal: the shopper's card or account refused it; handle it by hand",
}

# The refund API's error table, where the HTTP status alone would mislead:
# - RESOURCE_NOT_EXISTS (404) is the order ("订单号不存在", also for an unpaid order) or, on a
#   query, the refund; MCH_NOT_EXISTS (also 404) stays fatal by status.
# - NOT_ENOUGH (403, "余额不足"): the refund was refused before anything moved, and WeChat asks to
#   retry a failed refund with the same out_refund_no; once the merchant tops up the account
#   the very same call succeeds. So retryable (with backoff), not fatal: a fatal would end the
#   refund and make a new out_refund_no necessary for no reason.
# - FREQUENCY_LIMITED (429) and SYSTEM_ERROR (5xx): unknown outcome; query by out_refund_no
#   (or resend it, which WeChat treats as the same refund) before anything else.
# USER_ACCOUNT_ABNORMAL, NO_AUTH, INVALID_REQUEST (over the refundable amount, fully refunded,
# same out_refund_no with other amounts) and PARAM_ERROR are fatal by their 4xx status.
REFUND_ERROR_CLASSES: Mapping[str, type[ChannelError]] = {
    "RESOURCE_NOT_EXISTS": ChannelOrderNotFound,
    "ORDER_NOT_EXIST": ChannelOrderNotFound,
    "NOT_ENOUGH": ChannelRetryable,
    "FREQUENCY_LIMITED": ChannelUnknownOutcome,
    "SYSTEM_ERROR": ChannelUnknownOutcome,
}


def classify_refund_failure(response: HttpResponse) -> ChannelError:
    """A verified refund (or refund query) answer that is not a refund, as a ``ChannelError``."""
    failure = classify_failure(response)
    if response.status == 429 or response.status >= 500:
        if not isinstance(failure, ChannelUnknownOutcome):
            return ChannelUnknownOutcome(
                failure.code, failure.message, http_status=failure.http_status
            )
        return failure
    error_class = REFUND_ERROR_CLASSES.get(failure.code)
    if error_class is None or isinstance(failure, error_class):
        return failure
    return error_class(failure.code, failure.message, http_status=failure.http_status)


def to_refund_status(refund: Refund) -> RefundStatus | None:
    """The refund as payfront's ``RefundStatus``; None if its state is missing or unknown."""
    channel_state = refund.state
    state = REFUND_STATES.get(channel_state or "")
    if channel_state is None or state is None:
        return None
    return RefundStatus(
        out_refund_no=refund.out_refund_no,
        state=state,
        channel_state=channel_state,
        out_trade_no=refund.out_trade_no,
        amount_minor=refund.amount.refund,
        currency=refund.amount.currency,
        channel_refund_no=refund.refund_id or None,
        succeeded_at=refund.success_time if state is RefundState.SUCCEEDED else None,
        failure_reason=FAILURE_REASONS.get(channel_state),
    )
