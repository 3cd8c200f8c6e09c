"""The cashier page's pure parts: which sandbox control plays the shopper for a credential,
amounts, the QR SVG, and escaping."""

from __future__ import annotations

import pytest
from aiohttp import web

from mock_channels.cashier import gateway_base
from mock_channels.cashier_page import (
    QR_BORDER,
    format_amount,
    qr_matrix,
    qr_svg,
    render_cashier,
    shopper_controls,
)


def test_controls_follow_the_credential() -> None:
    wechat = shopper_controls({"type": "wechatpay_native", "code_url": "weixin://x"}, "pay1")
    assert wechat is not None
    assert (wechat.pay_url, wechat.amount_field) == (
        "/sandbox/wechatpay/orders/pay1/pay",
        "paid_amount",
    )
    page = shopper_controls({"type": "alipay_page", "pay_url": "http://s/gateway.do?a"}, "pay2")
    assert page is not None and page.open_url == "http://s/gateway.do?a"
    assert page.pay_url == "/sandbox/alipay/orders/pay2/pay"
    stripe = shopper_controls(
        {"type": "stripe_payment_intent", "payment_intent_id": "pi_1", "client_secret": "s"}, "p"
    )
    assert stripe is not None
    assert (stripe.pay_url, stripe.amount_field) == (
        "/sandbox/stripe/payment_intents/pi_1/pay",
        "amount_received",
    )
    assert shopper_controls({"type": "something_else"}, "pay3") is None


def test_amounts_in_major_units() -> None:
    assert format_amount(1234, "CNY") == "12.34 CNY"
    assert format_amount(5, "USD") == "0.05 USD"
    assert format_amount(500, "JPY") == "500 JPY"


def test_qr_svg_draws_every_dark_module_inside_the_quiet_zone() -> None:
    payload = "https://qr.alipay.com/bax0?a=1&b=<2>"
    svg = qr_svg(payload)
    dark = sum(map(sum, qr_matrix(payload)))
    assert svg.count("h1v1h-1z") == dark
    size = len(qr_matrix(payload)) + 2 * QR_BORDER
    assert f'viewBox="0 0 {size} {size}"' in svg
    assert 'data-payload="https://qr.alipay.com/bax0?a=1&amp;b=&lt;2&gt;"' in svg


def test_page_escapes_and_renders_without_a_credential() -> None:
    view = {
        "status": "pending",
        "pay_no": "pay1",
        "amount": 100,
        "currency": "CNY",
        "description": "</script><b>tea</b>",
        "credential": None,
    }
    page = render_cashier(view, token_url="http://gw/v1/tokens/tok")
    assert "<b>tea</b>" not in page and "&lt;b&gt;tea&lt;/b&gt;" in page
    assert 'data-testid="credential-missing"' in page
    assert 'data-testid="pay"' not in page


def test_gateway_override_must_be_an_http_origin() -> None:
    assert gateway_base("http://127.0.0.1:8080/", None) == "http://127.0.0.1:8080"
    assert gateway_base("http://a", "http://127.0.0.1:9/") == "http://127.0.0.1:9"
    for bad in ("file:///etc/passwd", "javascript:alert(1)", "http://h/?x=1", "127.0.0.1:9"):
        with pytest.raises(web.HTTPBadRequest):
            gateway_base("http://a", bad)
