"""The sandbox-only admin API of the Stripe emulator (mounted under ``/sandbox/stripe``):
register accounts, roll their webhook secrets, play the shopper, find and inspect intents
with their events and delivery attempts, set faults.

Plain JSON, unauthenticated: it exists only in the sandbox. Errors keep Stripe's shape.
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ValidationError

from mock_channels.faults import FaultPlan
from mock_channels.stripe_errors import StripeApiError, json_response
from mock_channels.stripe_models import PayIntent, RegisterAccount, RollWebhookSecret
from mock_channels.stripe_sandbox import STRIPE_SANDBOX

_Body = TypeVar("_Body", bound=BaseModel)


async def _parse(request: web.Request, model: type[_Body]) -> _Body:
    body = await request.read()
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        param = ".".join(map(str, first["loc"])) or None
        raise StripeApiError(400, f"{param}: {first['msg']}", param=param) from None


@web.middleware
async def admin_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except StripeApiError as exc:
        return exc.response()


async def register_account(request: web.Request) -> web.Response:
    body = await _parse(request, RegisterAccount)
    return json_response(200, await request.config_dict[STRIPE_SANDBOX].register_account(body))


async def roll_webhook_secret(request: web.Request) -> web.Response:
    body = await _parse(request, RollWebhookSecret)
    sandbox = request.config_dict[STRIPE_SANDBOX]
    rolled = await sandbox.roll_webhook_secret(request.match_info["account_id"], body)
    return json_response(200, rolled)


async def pay_intent(request: web.Request) -> web.Response:
    body = await _parse(request, PayIntent)
    sandbox = request.config_dict[STRIPE_SANDBOX]
    return json_response(200, sandbox.pay(request.match_info["intent"], body))


async def get_intent(request: web.Request) -> web.Response:
    sandbox = request.config_dict[STRIPE_SANDBOX]
    return json_response(
        200, sandbox.intent_view(sandbox.admin_intent(request.match_info["intent"]))
    )


async def find_intents(request: web.Request) -> web.Response:
    sandbox = request.config_dict[STRIPE_SANDBOX]
    found = sandbox.find_intents(request.query.get("account_id"), request.query.get("pay_no"))
    return json_response(200, {"data": found})


async def get_faults(request: web.Request) -> web.Response:
    sandbox = request.config_dict[STRIPE_SANDBOX]
    return json_response(
        200, sandbox.faults.plan_for(request.match_info["account_id"]).model_dump()
    )


async def put_faults(request: web.Request) -> web.Response:
    plan = await _parse(request, FaultPlan)
    request.config_dict[STRIPE_SANDBOX].faults.set_plan(request.match_info["account_id"], plan)
    return json_response(200, plan.model_dump())


async def delete_faults(request: web.Request) -> web.Response:
    request.config_dict[STRIPE_SANDBOX].faults.clear(request.match_info["account_id"])
    return web.Response(status=204)


def build_admin_app() -> web.Application:
    app = web.Application(middlewares=[admin_errors])
    app.router.add_post("/accounts", register_account)
    app.router.add_post("/accounts/{account_id}/roll_webhook_secret", roll_webhook_secret)
    app.router.add_post("/payment_intents/{intent}/pay", pay_intent)
    app.router.add_get("/payment_intents", find_intents)
    app.router.add_get("/payment_intents/{intent}", get_intent)
    app.router.add_get("/faults/{account_id}", get_faults)
    app.router.add_put("/faults/{account_id}", put_faults)
    app.router.add_delete("/faults/{account_id}", delete_faults)
    return app
