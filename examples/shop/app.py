"""A small merchant shop on payfront: buy → payment through the SDK → cashier → signed webhook.

Uses only the payfront SDK (``sdk``), aiohttp and the standard library. See README.md here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from aiohttp import web

from examples.shop.pages import CATALOGUE, HowToPay, message_page, order_page, product_page
from examples.shop.store import AWAITING_PAYMENT, EventPayment, Order, ShopStore
from sdk import (
    AsyncPayfrontClient,
    PayfrontError,
    PayfrontTimeout,
    SignatureVerificationError,
    verify_webhook,
)

log = logging.getLogger("shop")

# `scripts/dev` provisions this merchant key and these ports.
DEV_API_KEY = "sk_test_dev_local_only_do_not_use_in_production"
DEFAULT_PAYFRONT_URL = "http://127.0.0.1:8080"
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8090"
WEBHOOK_PATH = "/payfront/webhooks"


@dataclass(frozen=True, slots=True)
class ShopConfig:
    api_key: str = DEV_API_KEY
    payfront_url: str = DEFAULT_PAYFRONT_URL
    sandbox_url: str = DEFAULT_SANDBOX_URL
    host: str = "127.0.0.1"
    port: int = 8070
    # Where payfront reaches this shop's webhook endpoint; default http://{host}:{port}.
    public_url: str | None = None
    db_path: Path = field(default_factory=lambda: Path(".payfront/shop.db"))

    @property
    def webhook_url(self) -> str:
        base = self.public_url or f"http://{self.host}:{self.port}"
        return base.rstrip("/") + WEBHOOK_PATH

    @classmethod
    def from_env(cls) -> ShopConfig:
        env = os.environ
        return cls(
            api_key=env.get("PAYFRONT_API_KEY", DEV_API_KEY),
            payfront_url=env.get("PAYFRONT_URL", DEFAULT_PAYFRONT_URL),
            sandbox_url=env.get("PAYFRONT_SANDBOX_URL", DEFAULT_SANDBOX_URL),
            host=env.get("SHOP_HOST", "127.0.0.1"),
            port=int(env.get("SHOP_PORT", "8070")),
            public_url=env.get("SHOP_PUBLIC_URL") or None,
            db_path=Path(env.get("SHOP_DB", ".payfront/shop.db")),
        )


@dataclass
class Shop:
    config: ShopConfig
    store: ShopStore
    payfront: AsyncPayfrontClient
    webhook_secret: str


SHOP = web.AppKey("shop", Shop)


async def webhook_secret(
    config: ShopConfig, store: ShopStore, payfront: AsyncPayfrontClient
) -> str:
    """Register this shop's webhook endpoint with payfront, once: the secret is shown only in
    the answer that created the endpoint, so it is kept in the shop's database."""
    saved = await store.webhook_secret(config.payfront_url, config.webhook_url)
    if saved is not None:
        return saved
    endpoint = await payfront.create_webhook_endpoint(config.webhook_url)
    if endpoint.secret is None:
        raise RuntimeError("payfront answered a new webhook endpoint without its secret")
    await store.save_webhook_secret(config.payfront_url, config.webhook_url, endpoint.secret)
    log.info("registered webhook endpoint %s for %s", endpoint.id, config.webhook_url)
    return endpoint.secret


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html")


async def _order_or_404(shop: Shop, request: web.Request) -> Order:
    order = await shop.store.order(request.match_info["order_no"])
    if order is None:
        raise web.HTTPNotFound(text=message_page("Not found", "No such order."))
    return order


async def _start_payment(shop: Shop, order: Order) -> web.Response:
    try:
        payment = await shop.payfront.create_payment(
            amount=order.amount,
            currency=order.currency,
            merchant_order_no=order.order_no,
            description=CATALOGUE[order.product].name,
            channel="wechatpay",
            method="native",
            # Derived from the shop's own order number: trying again (a double click, a
            # retry after a timeout) replays the same payment instead of making a second one.
            idempotency_key=f"pay-{order.order_no}",
        )
    except PayfrontError as exc:
        log.warning("creating the payment of %s failed: %s", order.order_no, exc)
        page = message_page("Payment not started", f"payfront said: {exc}. Try again.")
        return _html(page, status=502)
    await shop.store.attach_payment(order.order_no, payment.pay_no, payment.token)
    raise web.HTTPSeeOther(f"/orders/{order.order_no}")


async def home(request: web.Request) -> web.Response:
    return _html(product_page())


async def buy(request: web.Request) -> web.Response:
    shop = request.app[SHOP]
    form = await request.post()
    product = CATALOGUE.get(str(form.get("product", "")))
    if product is None:
        return _html(message_page("Unknown product", "Pick one from the list."), status=400)
    order = await shop.store.create_order(product.product_id, product.amount, product.currency)
    return await _start_payment(shop, order)


async def retry_payment(request: web.Request) -> web.Response:
    shop = request.app[SHOP]
    order = await _order_or_404(shop, request)
    if order.status != AWAITING_PAYMENT:
        raise web.HTTPSeeOther(f"/orders/{order.order_no}")
    return await _start_payment(shop, order)


def _cashier_url(config: ShopConfig, token: str) -> str:
    url = f"{config.sandbox_url.rstrip('/')}/sandbox/cashier/{quote(token)}"
    if config.payfront_url != DEFAULT_PAYFRONT_URL:
        # The sandbox reads the token at this gateway rather than its default one.
        url += "?" + urlencode({"gateway": config.payfront_url})
    return url


async def how_to_pay(shop: Shop, token: str) -> HowToPay:
    cashier_url = _cashier_url(shop.config, token)
    try:
        view = await shop.payfront.wait_for_credential(token, timeout=5)
    except PayfrontTimeout:
        return HowToPay(None, cashier_url, "The QR code is on its way; this page will reload.")
    except PayfrontError as exc:
        return HowToPay(None, cashier_url, f"payfront did not answer: {exc}")
    if view.failure is not None:
        return HowToPay(None, None, f"The payment could not start: {view.failure.message}")
    code_url = view.credential.code_url if view.credential is not None else None
    return HowToPay(code_url, cashier_url)


async def show_order(request: web.Request) -> web.Response:
    shop = request.app[SHOP]
    order = await _order_or_404(shop, request)
    how = None
    if order.status == AWAITING_PAYMENT and order.token is not None:
        how = await how_to_pay(shop, order.token)
    return _html(order_page(order, how))


async def order_json(request: web.Request) -> web.Response:
    shop = request.app[SHOP]
    return web.json_response((await _order_or_404(shop, request)).as_json())


async def payfront_webhook(request: web.Request) -> web.Response:
    """Verify, de-duplicate by event id, apply. Any 2xx tells payfront to stop re-sending."""
    shop = request.app[SHOP]
    body = await request.read()  # the raw bytes: the signature is over them exactly
    signature = request.headers.get("Payfront-Signature", "")
    try:
        event = verify_webhook(body, signature, shop.webhook_secret)
    except SignatureVerificationError as exc:
        log.warning("refused a webhook: %s", exc)
        return web.json_response({"error": f"bad signature: {exc}"}, status=400)
    except ValueError as exc:  # signed, but not an event: should never happen
        log.error("a signed webhook is not a valid event: %s", exc)
        return web.json_response({"error": "not a valid event"}, status=400)
    payment = None
    if event.payment is not None:
        payment = EventPayment(
            merchant_order_no=event.payment.merchant_order_no,
            pay_no=event.payment.pay_no,
            amount=event.payment.amount,
            currency=event.payment.currency,
        )
    applied = await shop.store.apply_event(event.id, event.type, payment)
    log.info(
        "webhook %s %s: order %s → %s%s",
        event.id,
        event.type,
        applied.order_no,
        applied.status,
        " (duplicate)" if applied.duplicate else "",
    )
    return web.json_response({"received": True, "duplicate": applied.duplicate})


def create_shop_app(config: ShopConfig) -> web.Application:
    app = web.Application()
    order_no = "{order_no:[A-Za-z0-9_.:-]+}"
    app.router.add_get("/", home)
    app.router.add_post("/orders", buy)
    app.router.add_get(f"/orders/{order_no}.json", order_json)
    app.router.add_get(f"/orders/{order_no}", show_order)
    app.router.add_post(f"/orders/{order_no}/pay", retry_payment)
    app.router.add_post(WEBHOOK_PATH, payfront_webhook)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        store = ShopStore(config.db_path)
        await store.open()
        async with AsyncPayfrontClient(config.api_key, base_url=config.payfront_url) as payfront:
            secret = await webhook_secret(config, store, payfront)
            app[SHOP] = Shop(config=config, store=store, payfront=payfront, webhook_secret=secret)
            yield

    app.cleanup_ctx.append(resources)
    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = ShopConfig.from_env()
    print(
        f"tea shop on http://{config.host}:{config.port}  "
        f"(payfront {config.payfront_url}, webhooks to {config.webhook_url})",
        flush=True,
    )
    web.run_app(create_shop_app(config), host=config.host, port=config.port, print=None)


if __name__ == "__main__":
    main()
