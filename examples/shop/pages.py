"""The shop's HTML pages: a product list, an order's status page with the way to pay it."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from examples.shop.store import AWAITING_PAYMENT, Order


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    amount: int  # minor units: fen
    currency: str = "CNY"


CATALOGUE = {
    product.product_id: product
    for product in (
        Product("tea", "A cup of tea", 100),
        Product("teapot", "A clay teapot", 12800),
        Product("leaves", "Longjing leaves, 50 g", 6800),
    )
}

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; color: #222 }
.product { display: flex; justify-content: space-between; align-items: center;
           border-bottom: 1px solid #ddd; padding: .6rem 0 }
.status { font-weight: bold } code { word-break: break-all }
"""


def money(amount: int, currency: str) -> str:
    # CNY has two decimals; the shop sells nothing else.
    return f"{amount // 100}.{amount % 100:02d} {escape(currency)}"


def _page(title: str, body: str, *, refresh_s: int | None = None) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{refresh}'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><h1><a href="/">Tea shop</a></h1>{body}</body></html>'
    )


def product_page() -> str:
    rows = "".join(
        f'<form class="product" method="post" action="/orders">'
        f"<span>{escape(product.name)}</span><span>{money(product.amount, product.currency)}</span>"
        f'<input type="hidden" name="product" value="{escape(product.product_id)}">'
        f'<button data-testid="buy-{escape(product.product_id)}">Buy</button></form>'
        for product in CATALOGUE.values()
    )
    return _page("Tea shop", f"<p>Pay with WeChat Pay, through payfront.</p>{rows}")


@dataclass(frozen=True, slots=True)
class HowToPay:
    """What the shopper needs while the order is unpaid."""

    code_url: str | None
    cashier_url: str | None
    problem: str | None = None


def order_page(order: Order, how: HowToPay | None) -> str:
    product = CATALOGUE.get(order.product)
    name = product.name if product is not None else order.product
    status = escape(order.status)
    parts = [
        f"<h2>Order <code>{escape(order.order_no)}</code></h2>",
        f"<p>{escape(name)}: {money(order.amount, order.currency)}</p>",
        f'<p>Status: <span class="status" data-testid="status" data-status="{status}">'
        f"{status}</span></p>",
    ]
    if order.pay_no:
        parts.append(f"<p>payfront payment <code>{escape(order.pay_no)}</code></p>")
    waiting = order.status == AWAITING_PAYMENT
    if waiting and how is not None:
        if how.code_url:
            parts.append(
                "<p>Scan with WeChat (the QR code encodes this URL):<br>"
                f'<code data-testid="code-url">{escape(how.code_url)}</code></p>'
            )
        if how.cashier_url:
            parts.append(
                f'<p><a data-testid="cashier" href="{escape(how.cashier_url)}">'
                "Open the sandbox cashier</a> to see the QR code and play the shopper.</p>"
            )
        if how.problem:
            parts.append(f'<p data-testid="problem">{escape(how.problem)}</p>')
    if waiting and order.pay_no is None:
        parts.append(
            f'<form method="post" action="/orders/{escape(order.order_no)}/pay">'
            "<button>Try the payment again</button></form>"
        )
    if waiting:
        parts.append("<p>This page reloads until the payment arrives.</p>")
    return _page(f"Order {order.order_no}", "".join(parts), refresh_s=2 if waiting else None)


def message_page(title: str, message: str) -> str:
    return _page(title, f"<h2>{escape(title)}</h2><p>{escape(message)}</p>")
