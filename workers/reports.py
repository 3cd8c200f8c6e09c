"""Channel results turned into the pay core's reports (channels' types → core's types)."""

from __future__ import annotations

from channels.base import RefundState, RefundStatus, TradeStatus
from core.receipts import PaymentReport
from core.refunds import RefundReport
from core.states import RefundStatus as RefundOrderStatus

_REFUND_STATUS = {
    RefundState.PROCESSING: RefundOrderStatus.PROCESSING,
    RefundState.SUCCEEDED: RefundOrderStatus.SUCCEEDED,
    RefundState.FAILED: RefundOrderStatus.FAILED,
}


def payment_report(
    account_id: str,
    trade: TradeStatus,
    *,
    source_id: str,
    expected_ids: dict[str, str] | None = None,
) -> PaymentReport:
    """``expected_ids`` maps "merchant_id"/"app_id" to the account's own, for a cross-check."""
    mismatch = None
    if expected_ids:
        for field, expected in expected_ids.items():
            reported = getattr(trade, field)
            if reported is not None and reported != expected:
                mismatch = f"{field} {reported!r} is not this account's {expected!r}"
                break
    return PaymentReport(
        channel_account_id=account_id,
        out_trade_no=trade.out_trade_no,
        amount_minor=trade.amount_minor,
        currency=trade.currency,
        channel_trade_no=trade.channel_trade_no,
        paid_at=trade.paid_at,
        source_id=source_id,
        account_mismatch=mismatch,
    )


def refund_report(account_id: str, refund: RefundStatus, *, source_id: str) -> RefundReport:
    return RefundReport(
        channel_account_id=account_id,
        refund_no=refund.out_refund_no,
        pay_no=refund.out_trade_no,
        status=_REFUND_STATUS[refund.state],
        source_id=source_id,
        amount_minor=refund.amount_minor,
        currency=refund.currency,
        channel_refund_no=refund.channel_refund_no,
        succeeded_at=refund.succeeded_at,
        failure_code=refund.channel_state if refund.state is RefundState.FAILED else None,
        failure_message=refund.failure_reason,
    )
