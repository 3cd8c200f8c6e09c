"""Alipay asynchronous notifications: the form read as received, its RSA2 signature verified,
and what it reports: a payment or close (``ChannelEvent.trade``) or a refund
(``ChannelEvent.refund``). Pure functions of the received bytes and the app's keys.

Alipay reports a refund in the trade's own notification (``notify_type=trade_status_sync``,
sent to the trade's ``notify_url``): ``trade_status`` stays TRADE_SUCCESS after a partial
refund and becomes TRADE_CLOSED after a full one; ``out_biz_no`` (the refund's
out_request_no), ``refund_fee`` and ``gmt_refund`` tell it from a payment or a close.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from pydantic import ValidationError

from channels import alipay_wire as wire
from channels.alipay_refunds import REFUND_SUCCESS, RefundNotification, notification_refund_status
from channels.alipay_sign import MalformedForm, parse_notify_form, rsa2_verify, signing_string
from channels.base import ChannelEvent
from channels.errors import CallbackIgnored, CallbackRejected

SIGN_TYPE = "RSA2"
TRADE_NOTIFY_TYPE = "trade_status_sync"


def verify_notification(
    public_key: RSAPublicKey, fields: tuple[tuple[str, str], ...], codec: str
) -> None:
    """Raise ``CallbackRejected`` unless ``sign`` verifies over the fields as received."""
    values = dict(fields)
    signature = values.get("sign")
    if not signature:
        raise CallbackRejected("missing_signature", "the notification has no sign")
    if values.get("sign_type") != SIGN_TYPE:
        raise CallbackRejected(
            "bad_signature_type", f"sign_type {values.get('sign_type')!r} is not RSA2"
        )
    # base64 has no spaces: a raw "+" in the body was read as one.
    signature = signature.replace(" ", "+")
    # Trade notifications sign every received field but sign and sign_type (opendocs
    # "异步通知验签"); some SDKs drop empty ones, so that form is accepted as well.
    variants = [False]
    if any(not value for _, value in fields):
        variants.append(True)
    for skip_empty in variants:
        message = signing_string(fields, exclude=("sign", "sign_type"), skip_empty=skip_empty)
        try:
            encoded = message.encode(codec)
        except UnicodeEncodeError as exc:
            raise CallbackRejected("malformed", "fields not encodable in charset") from exc
        if rsa2_verify(public_key, encoded, signature):
            return
    raise CallbackRejected("bad_signature", "signature does not verify")


def parse_notification(
    public_key: RSAPublicKey, app_id: str, headers: Mapping[str, str], body: bytes
) -> ChannelEvent:
    """A verified notification as a ``ChannelEvent`` (see ``Channel.parse_callback``)."""
    content_type = next(
        (value for name, value in headers.items() if name.lower() == "content-type"), None
    )
    if content_type is not None and not content_type.lower().lstrip().startswith(
        "application/x-www-form-urlencoded"
    ):
        raise CallbackRejected("malformed", f"Content-Type {content_type!r} is not a form")
    try:
        form = parse_notify_form(body)
    except MalformedForm as exc:
        raise CallbackRejected("malformed", f"not an Alipay notification form: {exc}") from exc
    verify_notification(public_key, form.fields, form.codec)
    values = dict(form.fields)
    try:
        notification = RefundNotification.model_validate(values)
    except ValidationError as exc:
        raise CallbackRejected("malformed", "not a trade notification") from exc
    if notification.notify_type not in (None, TRADE_NOTIFY_TYPE):
        raise CallbackRejected(
            "unsupported_notification", f"notify_type {notification.notify_type!r}"
        )
    raw = {key: value for key, value in values.items() if key != "sign"}
    if notification.carries_refund():
        return _refund_event(notification, app_id, raw)
    trade = wire.notification_to_trade_status(notification)
    if trade is None:
        raise CallbackRejected(
            "malformed",
            f"trade_status {notification.trade_status!r} / "
            f"total_amount {notification.total_amount!r}",
        )
    return ChannelEvent(
        event_id=notification.notify_id,
        event_type=notification.trade_status,
        trade=trade,
        raw=raw,
    )


def _refund_event(
    notification: RefundNotification, app_id: str, raw: Mapping[str, str]
) -> ChannelEvent:
    # A payment's app_id is checked by payfront's core against the account (TradeStatus
    # carries it); RefundStatus has no such field, so the refund's is checked here.
    if notification.app_id != app_id:
        raise CallbackRejected(
            "wrong_account", f"refund notification for app {notification.app_id!r}"
        )
    refund = notification_refund_status(notification)
    if refund is None:
        if notification.out_biz_no:
            raise CallbackRejected(
                "malformed", f"refund_fee {notification.refund_fee!r} is not an amount"
            )
        # Genuine, but a refund payfront did not request (no out_request_no to match).
        raise CallbackIgnored(notification.notify_id, f"{notification.trade_status}.refund")
    return ChannelEvent(
        event_id=notification.notify_id,
        event_type=REFUND_SUCCESS,
        trade=None,
        refund=refund,
        raw=raw,
    )
