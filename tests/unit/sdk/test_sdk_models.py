"""Tests for sdk/models.py: parsing API objects into frozen dataclasses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sdk import Credential, Event, Failure, Payment, Token
from sdk.models import parse_datetime

JsonFactory = Callable[..., dict[str, Any]]


def test_payment_from_json_parses_every_field(payment_json: JsonFactory) -> None:
    payment = Payment.from_json(
        payment_json(
            status="paid",
            metadata={"cart": "c_1"},
            credential={"type": "wechatpay_native", "code_url": "weixin://wxpay/x"},
            paid_at="2026-11-25T11:31:02.250000+08:00",
            livemode=True,
        )
    )

    assert payment.pay_no == "pay_01JDX6Y1"
    assert payment.trade_no == "trd_01JDX6Y1"
    assert payment.token == "tok_01JDX6Y1"
    assert payment.status == "paid"
    assert payment.amount == 100
    assert payment.metadata == {"cart": "c_1"}
    assert payment.credential == Credential(type="wechatpay_native", code_url="weixin://wxpay/x")
    assert payment.failure is None
    assert payment.livemode is True
    assert payment.expires_at == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert payment.created_at == datetime(2026, 11, 25, 11, 30, tzinfo=UTC)
    assert payment.paid_at == datetime(
        2026, 11, 25, 11, 31, 2, 250000, tzinfo=timezone(timedelta(hours=8))
    )
    assert payment.paid_at is not None and payment.paid_at.utcoffset() == timedelta(hours=8)
    assert not payment.is_waiting


def test_datetimes_are_always_aware() -> None:
    assert parse_datetime("2026-11-25T12:00:00Z").tzinfo is not None
    # A server that forgets the offset still means UTC.
    assert parse_datetime("2026-11-25T12:00:00") == datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_payment_is_frozen_and_metadata_read_only(payment_json: JsonFactory) -> None:
    payment = Payment.from_json(payment_json(metadata={"cart": "c_1"}))

    with pytest.raises(dataclasses.FrozenInstanceError):
        payment.status = "paid"  # type: ignore[misc]
    with pytest.raises(TypeError):
        payment.metadata["cart"] = "other"  # type: ignore[index]


def test_payment_with_failure(payment_json: JsonFactory) -> None:
    payment = Payment.from_json(
        payment_json(status="prepay_failed", failure={"code": "channel_rejected", "message": "no"})
    )

    assert payment.failure == Failure(code="channel_rejected", message="no")
    assert payment.credential is None


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"pay_no": None}, "pay_no"),
        ({"amount": "100"}, "amount"),
        ({"amount": True}, "amount"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"metadata": {"n": 1}}, "metadata"),
        ({"credential": "weixin://"}, "credential"),
        ({"object": "token"}, "payment"),
    ],
)
def test_malformed_payment_raises_value_error(
    payment_json: JsonFactory, overrides: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        Payment.from_json(payment_json(**overrides))


def test_missing_field_raises_value_error(payment_json: JsonFactory) -> None:
    body = payment_json()
    del body["currency"]

    with pytest.raises(ValueError, match="currency"):
        Payment.from_json(body)


def test_token_from_json(token_json: JsonFactory) -> None:
    waiting = Token.from_json(token_json(status="prepaying"))
    ready = Token.from_json(
        token_json(
            status="awaiting_payment",
            credential={"type": "wechatpay_native", "code_url": "weixin://wxpay/x"},
        )
    )

    assert waiting.is_waiting and waiting.credential is None
    assert not ready.is_waiting
    assert ready.credential is not None and ready.credential.code_url == "weixin://wxpay/x"
    assert ready.expires_at == datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_event_from_json_parses_the_payment(payment_json: JsonFactory) -> None:
    event = Event.from_json(
        {
            "id": "evt_1",
            "object": "event",
            "type": "payment.succeeded",
            "created_at": "2026-11-25T11:31:03Z",
            "data": {"object": payment_json(status="paid")},
        }
    )

    assert event.id == "evt_1"
    assert event.type == "payment.succeeded"
    assert event.created_at == datetime(2026, 11, 25, 11, 31, 3, tzinfo=UTC)
    assert event.payment is not None and event.payment.status == "paid"
    assert event.data_object["pay_no"] == "pay_01JDX6Y1"


def test_event_about_something_else_keeps_the_raw_object() -> None:
    event = Event.from_json(
        {
            "id": "evt_2",
            "object": "event",
            "type": "payout.created",
            "created_at": "2026-11-25T11:31:03Z",
            "data": {"object": {"object": "payout", "payout_no": "po_1"}},
        }
    )

    assert event.payment is None and event.refund is None
    assert event.data_object == {"object": "payout", "payout_no": "po_1"}


def test_refund_event_is_parsed_into_a_refund() -> None:
    refund = {
        "object": "refund",
        "refund_no": "rfd1",
        "pay_no": "pay1",
        "trade_no": "trd1",
        "merchant_refund_no": None,
        "status": "failed",
        "amount": 30,
        "currency": "CNY",
        "channel": "wechatpay",
        "reason": "broken cup",
        "metadata": {"ticket": "7"},
        "failure": {"code": "NOT_ENOUGH", "message": "insufficient balance"},
        "created_at": "2026-11-25T11:31:03Z",
        "succeeded_at": None,
        "livemode": False,
    }
    event = Event.from_json(
        {
            "id": "evt_3",
            "object": "event",
            "type": "refund.failed",
            "created_at": "2026-11-25T11:31:04Z",
            "data": {"object": refund},
        }
    )

    assert event.payment is None and event.refund is not None
    assert (event.refund.refund_no, event.refund.amount, event.refund.status) == (
        "rfd1",
        30,
        "failed",
    )
    assert event.refund.is_final
    assert event.refund.failure is not None and event.refund.failure.code == "NOT_ENOUGH"
    assert event.refund.metadata == {"ticket": "7"}


def test_every_credential_field_is_kept() -> None:
    credential = Credential.from_json(
        {
            "type": "stripe_payment_intent",
            "client_secret": "pi_1_secret_2",
            "payment_intent_id": "pi_1",
        }
    )
    assert credential.type == "stripe_payment_intent" and credential.code_url is None
    assert credential.get("client_secret") == "pi_1_secret_2"
    assert dict(credential.fields) == {
        "client_secret": "pi_1_secret_2",
        "payment_intent_id": "pi_1",
    }
    alipay = Credential.from_json({"type": "alipay_qr", "qr_code": "https://qr.alipay.com/x"})
    assert alipay.get("qr_code") == "https://qr.alipay.com/x"
