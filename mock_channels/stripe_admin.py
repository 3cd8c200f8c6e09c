"""The sandbox-only admin API of the Stripe emulator (mounted under ``/sandbox/stripe``):
register accounts, roll their webhook secrets, play the shopper, settle refunds, find and
inspect intents with their refunds, events and delivery attempts, set faults.

Plain JSON, unauthenticated: it exists only in the sandbox. Errors keep Stripe's shape.
"""

from __future__ import annotations

from aiohttp import web

from mock_channels.common import BodyParser, error_middleware
from mock_channels.faults import FaultPlan
from mock_channels.stripe_errors import StripeApiError, json_response
from mock_channels.stripe_models import (
    PayIntent,
    RegisterAccount,
    RollWebhookSecret,
    SettleRefund,
)
from mock_channels.stripe_payouts import TopUp
from mock_channels.stripe_sandbox import STRIPE_SANDBOX


def _invalid_body(issues: list[dict[str, str]]) -> StripeApiError:
    # Stripe names the first invalid parameter only.
    param = issues[0]["field"] or None
    return StripeApiError(400, f"{param}: {issues[0]['issue']}", param=param)


_parse = BodyParser(_invalid_body, if_empty=b"{}")


admin_errors = error_middleware(StripeApiError, StripeApiError.response)


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


async def settle_refund(request: web.Request) -> web.Response:
    body = await _parse(request, SettleRefund)
    sandbox = request.config_dict[STRIPE_SANDBOX]
    return json_response(200, sandbox.settle_refund(request.match_info["refund"], body))


async def get_refund(request: web.Request) -> web.Response:
    sandbox = request.config_dict[STRIPE_SANDBOX]
    return json_response(200, sandbox.admin_refund(request.match_info["refund"]).to_api())


async def get_intent(request: web.Request) -> web.Response:
    sandbox = request.config_dict[STRIPE_SANDBOX]
    return json_response(
        200, sandbox.intent_view(sandbox.admin_intent(request.match_info["intent"]))
    )


async def find_intents(request: web.Request) -> web.Response:
    sandbox = request.config_dict[STRIPE_SANDBOX]
    found = sandbox.find_intents(request.query.get("account_id"), request.query.get("pay_no"))
    return json_response(200, {"data": found})


async def top_up_balance(request: web.Request) -> web.Response:
    """Add funds to an account's balance (what transfers draw on)."""
    body = await _parse(request, TopUp)
    sandbox = request.config_dict[STRIPE_SANDBOX]
    account_id = request.match_info["account_id"]
    if account_id not in sandbox.accounts:
        raise StripeApiError(404, f"No such account: '{account_id}'", code="resource_missing")
    available = sandbox.transfers.top_up(account_id, body.amount, body.currency)
    return json_response(
        200, {"account_id": account_id, "currency": body.currency, "balance": available}
    )


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
    app.router.add_post("/refunds/{refund}/settle", settle_refund)
    app.router.add_get("/refunds/{refund}", get_refund)
    app.router.add_post("/accounts/{account_id}/balance", top_up_balance)
    app.router.add_get("/faults/{account_id}", get_faults)
    app.router.add_put("/faults/{account_id}", put_faults)
    app.router.add_delete("/faults/{account_id}", delete_faults)
    return app
