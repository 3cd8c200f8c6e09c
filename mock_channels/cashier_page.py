"""The sandbox cashier's HTML, as pure functions of a payfront token view: the amount, the
credential (a QR code drawn server-side from ``code_url``/``qr_code``, a redirect link, a
PaymentIntent id) and the buttons that play the shopper through the sandbox's own controls.

No external JS or CSS: everything the page needs is inlined (``cashier_assets``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
import qrcode
import qrcode.constants

from mock_channels.cashier_assets import CASHIER_CSS, CASHIER_JS

# Statuses during which the gateway long-polls the token itself (``wait=``).
PREPAY_STATUSES = frozenset({"pending", "prepaying"})
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW"})
QR_BORDER = 4  # modules of quiet zone, as the QR specification asks


@dataclass(frozen=True)
class ShopperControls:
    """Where the sandbox plays the shopper for one credential.

    ``amount_field`` is how that control names a paid amount other than the order's;
    ``open_url`` is a page the shopper opens before paying (Alipay page/wap: the trade exists
    at the sandbox only once its signed URL was opened).
    """

    pay_url: str
    amount_field: str
    open_url: str | None = None


def shopper_controls(credential: dict[str, Any], pay_no: str) -> ShopperControls | None:
    """The sandbox control for this credential, or None when the sandbox has none for it."""
    kind = str(credential.get("type", ""))
    if kind.startswith("wechatpay_"):
        return ShopperControls(f"/sandbox/wechatpay/orders/{quote(pay_no)}/pay", "paid_amount")
    if kind.startswith("alipay_"):
        open_url = credential.get("pay_url") if kind in ("alipay_page", "alipay_wap") else None
        return ShopperControls(
            f"/sandbox/alipay/orders/{quote(pay_no)}/pay", "paid_amount", open_url
        )
    if kind == "stripe_payment_intent" and credential.get("payment_intent_id"):
        intent = quote(str(credential["payment_intent_id"]))
        return ShopperControls(f"/sandbox/stripe/payment_intents/{intent}/pay", "amount_received")
    return None


def qr_payload(credential: dict[str, Any]) -> str | None:
    """What the shopper's phone scans: WeChat's ``code_url`` or Alipay's ``qr_code``."""
    for field in ("code_url", "qr_code"):
        value = credential.get(field)
        if isinstance(value, str) and value:
            return value
    return None


def qr_matrix(payload: str) -> list[list[bool]]:
    """The QR modules for ``payload`` (dark = True), without the quiet zone."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(payload)
    code.make(fit=True)
    return [[bool(module) for module in row] for row in code.get_matrix()]


def qr_svg(payload: str, *, pixels: int = 240) -> str:
    """An inline ``<svg>``: one path of unit squares, one per dark module, in module space."""
    matrix = qr_matrix(payload)
    size = len(matrix) + 2 * QR_BORDER
    squares = "".join(
        f"M{x + QR_BORDER},{y + QR_BORDER}h1v1h-1z"
        for y, row in enumerate(matrix)
        for x, dark in enumerate(row)
        if dark
    )
    return (
        f'<svg data-testid="qr" data-payload="{html.escape(payload)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{pixels}" height="{pixels}" '
        f'viewBox="0 0 {size} {size}" shape-rendering="crispEdges" role="img" '
        f'aria-label="QR code">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{squares}"/></svg>'
    )


def format_amount(amount_minor: int, currency: str) -> str:
    if currency in ZERO_DECIMAL_CURRENCIES:
        return f"{amount_minor} {currency}"
    return f"{amount_minor // 100}.{amount_minor % 100:02d} {currency}"


def _credential_html(credential: dict[str, Any] | None) -> str:
    if not credential:
        return '<p class="muted" data-testid="credential-missing">No credential yet.</p>'
    payload = qr_payload(credential)
    if payload is not None:
        return (
            f'<figure class="qr">{qr_svg(payload)}'
            f'<figcaption data-testid="qr-text">{html.escape(payload)}</figcaption></figure>'
        )
    if credential.get("pay_url"):
        url = html.escape(str(credential["pay_url"]))
        return (
            f'<p><a data-testid="pay-link" href="{url}" rel="noreferrer">'
            "Open the Alipay cashier</a></p>"
        )
    if credential.get("payment_intent_id"):
        intent = html.escape(str(credential["payment_intent_id"]))
        return f'<p>PaymentIntent <code data-testid="payment-intent">{intent}</code></p>'
    dumped = orjson.dumps(credential, option=orjson.OPT_INDENT_2).decode()
    return f'<pre data-testid="credential">{html.escape(dumped)}</pre>'


def _controls_html(controls: ShopperControls | None, amount_minor: int) -> str:
    if controls is None:
        return '<p class="muted">The sandbox has no shopper controls for this credential.</p>'
    other = max(amount_minor - 1, 1)
    return (
        '<div class="actions">'
        '<button data-testid="pay" data-action="pay">Pay</button>'
        '<button data-testid="fail" data-action="fail">Fail</button>'
        '<button data-testid="pay-twice" data-action="pay-twice">Pay twice</button>'
        "</div>"
        '<div class="actions">'
        '<label>Paid amount (minor units) <input data-testid="paid-amount-input" '
        f'type="number" min="0" step="1" value="{other}"></label>'
        '<button data-testid="pay-amount" data-action="pay-amount">Pay a different amount'
        "</button></div>"
    )


def _config_json(config: dict[str, Any]) -> str:
    # Inside <script>, only "</" could end the element early.
    return orjson.dumps(config).decode().replace("</", "<\\/")


def render_cashier(view: dict[str, Any], *, token_url: str) -> str:
    """The cashier page for one token view (``GET /v1/tokens/{token}``'s answer).

    ``token_url`` is the gateway URL the page's script polls for status changes.
    """
    status = str(view.get("status", ""))
    pay_no = str(view.get("pay_no", ""))
    amount_minor = int(view.get("amount", 0))
    currency = str(view.get("currency", ""))
    credential = view.get("credential") or None
    controls = shopper_controls(credential, pay_no) if credential else None
    config = {
        "token_url": token_url,
        "status": status,
        "prepay_statuses": sorted(PREPAY_STATUSES),
        "controls": None
        if controls is None
        else {
            "pay_url": controls.pay_url,
            "amount_field": controls.amount_field,
            "open_url": controls.open_url,
        },
    }
    amount = html.escape(format_amount(amount_minor, currency))
    failure = view.get("failure")
    failure_html = ""
    if failure:
        failure_html = (
            f'<p class="failure" data-testid="failure">{html.escape(str(failure.get("code")))}: '
            f"{html.escape(str(failure.get('message')))}</p>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Cashier · {html.escape(pay_no)} · payfront sandbox</title>"
        f"<style>{CASHIER_CSS}</style></head>"
        '<body><main data-testid="cashier">'
        '<header><span class="badge">SANDBOX</span> payfront cashier</header>'
        f'<p class="amount" data-testid="amount">{amount}</p>'
        f'<p data-testid="description">{html.escape(str(view.get("description") or ""))}</p>'
        f'<p class="meta">Payment <code data-testid="pay-no">{html.escape(pay_no)}</code> · '
        f'status <strong data-testid="status" data-status="{html.escape(status)}">'
        f"{html.escape(status)}</strong></p>"
        f"{failure_html}"
        f"{_credential_html(credential)}"
        f"{_controls_html(controls, amount_minor)}"
        '<p class="result" data-testid="action-result" aria-live="polite"></p>'
        "</main>"
        f'<script type="application/json" id="cashier-config">{_config_json(config)}</script>'
        f"<script>{CASHIER_JS}</script></body></html>"
    )


def render_problem(title: str, detail: str) -> str:
    """A small page for an unknown token or an unreachable gateway."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} · payfront sandbox</title>"
        f"<style>{CASHIER_CSS}</style></head>"
        '<body><main data-testid="cashier-error">'
        '<header><span class="badge">SANDBOX</span> payfront cashier</header>'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p></main></body></html>"
    )
