"""The bare baseline: one aiohttp process on uvloop that reads the body of a POST and answers
a small JSON, so the gateway's figures can be read as a fraction of what the framework alone
does on the same machine in the same run (``python -m bench.baseline --port N``)."""

from __future__ import annotations

import argparse

import uvloop
from aiohttp import web

ANSWER = b'{"object":"payment","status":"pending"}'


async def create(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=201, body=ANSWER, content_type="application/json")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/payments", create)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.install()
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
