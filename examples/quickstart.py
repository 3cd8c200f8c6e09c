"""A merchant's first payment through payfront, end to end, with the merchant SDK.

Run `scripts/dev` (or `payfront dev`) in one terminal, then in another:

    .venv/bin/python examples/quickstart.py

It registers a webhook endpoint (served by this script), creates a payment, waits for the
WeChat Pay QR `code_url`, plays the shopper in the sandbox, and receives the signed
`payment.succeeded` webhook. Settings: PAYFRONT_URL, PAYFRONT_SANDBOX_URL, PAYFRONT_API_KEY,
QUICKSTART_WEBHOOK_PORT.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

import httpx
from aiohttp import web

from sdk import AsyncPayfrontClient, Event, SignatureVerificationError, verify_webhook

GATEWAY = os.environ.get("PAYFRONT_URL", "http://127.0.0.1:8080")
SANDBOX = os.environ.get("PAYFRONT_SANDBOX_URL", "http://127.0.0.1:8090")
API_KEY = os.environ.get("PAYFRONT_API_KEY", "sk_test_dev_local_only_do_not_use_in_production")
PORT = int(os.environ.get("QUICKSTART_WEBHOOK_PORT", "8099"))
# The endpoint's secret is shown once, so keep it for the next run.
SECRET_FILE = Path(os.environ.get("QUICKSTART_STATE", ".payfront/quickstart-webhook.json"))


def _saved_secret(url: str) -> str | None:
    if not SECRET_FILE.exists():
        return None
    saved = json.loads(SECRET_FILE.read_text())
    if saved.get("url") == url and saved.get("gateway") == GATEWAY:
        return str(saved["secret"])
    return None


def _save_secret(url: str, secret: str) -> None:
    SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
    SECRET_FILE.write_text(json.dumps({"url": url, "gateway": GATEWAY, "secret": secret}))


async def webhook_secret(client: AsyncPayfrontClient, url: str) -> str:
    saved = await asyncio.to_thread(_saved_secret, url)
    if saved is not None:
        return saved
    endpoint = await client.create_webhook_endpoint(url)
    assert endpoint.secret is not None
    await asyncio.to_thread(_save_secret, url, endpoint.secret)
    return endpoint.secret


async def main() -> None:
    events: asyncio.Queue[Event] = asyncio.Queue()
    secret = ""

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = verify_webhook(body, request.headers.get("Payfront-Signature", ""), secret)
        except SignatureVerificationError as exc:
            return web.Response(status=400, text=f"bad signature: {exc}")
        await events.put(event)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/payfront-webhooks", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", PORT).start()
    try:
        async with AsyncPayfrontClient(API_KEY, base_url=GATEWAY) as client:
            secret = await webhook_secret(client, f"http://127.0.0.1:{PORT}/payfront-webhooks")
            started = time.monotonic()
            payment = await client.create_payment(
                amount=100,
                currency="CNY",
                merchant_order_no=f"quickstart-{uuid.uuid4().hex[:10]}",
                description="A cup of tea",
            )
            print(f"created {payment.pay_no}: status {payment.status}")
            token = await client.wait_for_credential(payment.token, timeout=10)
            elapsed_ms = (time.monotonic() - started) * 1000
            if token.credential is None:
                raise SystemExit(f"the payment failed: {token.failure}")
            print(f"code_url {token.credential.code_url} after {elapsed_ms:.0f} ms")

            async with httpx.AsyncClient() as http:
                paid = await http.post(
                    f"{SANDBOX}/sandbox/wechatpay/orders/{payment.pay_no}/pay",
                    json={"outcome": "success"},
                )
                paid.raise_for_status()
            print("the sandbox's shopper paid; waiting for the webhook ...")
            while True:
                event = await asyncio.wait_for(events.get(), timeout=30)
                if event.payment is not None and event.payment.pay_no == payment.pay_no:
                    break
            print(f"webhook {event.type} verified for {event.payment.pay_no} ({event.id})")
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
