"""The e2e baseline: a merchant server without payfront. Its ``POST /pay`` handler calls
WeChat Pay's create-order API with the channel's own client library (``wechatpayv3``, which
signs the request, sends it with ``requests`` and verifies the answer's signature) and answers
with the shopper's credential (``code_url``).

``wechatpayv3.WeChatPay`` is synchronous, so each call holds a thread for the channel's whole
latency: the handler runs it in a fixed thread pool (``--threads``), which is what a
threaded WSGI server (gunicorn ``gthread``, Django/Flask under a thread pool) amounts to. The
HTTP server is aiohttp on uvloop, the same stack as payfront's gateway, so the two sides differ
only in where the channel call happens. Run several processes, one port each; the load
generator spreads its shoppers evenly over them.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import uvloop
from aiohttp import web
from wechatpayv3 import WeChatPay, WeChatPayType

POOL = web.AppKey("pool", ThreadPoolExecutor)
CLIENT = web.AppKey("client", WeChatPay)


def _create_order(client: WeChatPay, out_trade_no: str, amount: int) -> tuple[int, Any]:
    code, message = client.pay(
        description="A cup of tea", out_trade_no=out_trade_no, amount={"total": amount}
    )
    return code, message


async def pay(request: web.Request) -> web.Response:
    order = orjson.loads(await request.read())
    loop = asyncio.get_running_loop()
    call = functools.partial(
        _create_order, request.app[CLIENT], order["out_trade_no"], order["amount"]
    )
    try:
        code, message = await loop.run_in_executor(request.app[POOL], call)
    except Exception as exc:  # the library raises plain Exception (bad signature, timeouts)
        return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=502)
    if code != 200:
        return web.json_response({"error": message}, status=502)
    code_url = orjson.loads(message)["code_url"]
    return web.Response(
        body=orjson.dumps({"out_trade_no": order["out_trade_no"], "code_url": code_url}),
        status=201,
        content_type="application/json",
    )


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_app(args: argparse.Namespace) -> web.Application:
    client = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=args.mchid,
        private_key=Path(args.private_key_file).read_text(),
        cert_serial_no=args.serial_no,
        appid=args.appid,
        apiv3_key=args.apiv3_key,
        notify_url=args.notify_url,
        public_key=Path(args.public_key_file).read_text(),
        public_key_id=args.public_key_id,
        timeout=(3, 10),
    )
    # The library has no base-URL option (as in tests/interop).
    client._core._gate_way = args.sandbox_url.rstrip("/")
    app = web.Application()
    app[CLIENT] = client
    app[POOL] = ThreadPoolExecutor(max_workers=args.threads, thread_name_prefix="pay")
    app.router.add_post("/pay", pay)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--sandbox-url", required=True)
    parser.add_argument("--mchid", required=True)
    parser.add_argument("--appid", required=True)
    parser.add_argument("--serial-no", required=True)
    parser.add_argument("--apiv3-key", required=True)
    parser.add_argument("--private-key-file", required=True)
    parser.add_argument("--public-key-file", required=True, help="the platform public key")
    parser.add_argument("--public-key-id", required=True)
    parser.add_argument("--notify-url", required=True)
    args = parser.parse_args()
    uvloop.install()
    web.run_app(build_app(args), host="127.0.0.1", port=args.port, reuse_port=True, access_log=None)


if __name__ == "__main__":
    main()
