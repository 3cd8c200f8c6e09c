"""Merchant API: the balance (pending and available per currency) and the settlement view
of one day (what it collected, refunded and paid in fees, and whether it is settled)."""

from __future__ import annotations

import re
from datetime import date

import orjson
from aiohttp import web

from core.errors import InvalidRequest
from core.ledger.balances import merchant_balances
from core.ledger.settlement import settlement_for_day
from core.ledger.terms import SettlementTerms
from core.ledger.views import balance_object, settlement_object
from gateway.routes_payments import json_response, merchant_of

routes = web.RouteTableDef()

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# Day bounds are computed in Asia/Shanghai; the extremes of `date` would overflow there.
EARLIEST, LATEST = date(2000, 1, 1), date(9998, 12, 31)


@routes.get("/v1/balance")
async def balance(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    balances = await merchant_balances(state.ledger_db, merchant.merchant_id, merchant.livemode)
    return json_response(200, orjson.dumps(balance_object(balances, livemode=merchant.livemode)))


@routes.get("/v1/settlements")
async def settlement(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    day = _day(request.query.get("date", ""))
    currency = request.query.get("currency", "")
    if not _CURRENCY.match(currency):
        raise InvalidRequest(
            "currency must be an ISO 4217 code such as CNY",
            code="parameter_invalid",
            param="currency",
        )
    view = await settlement_for_day(
        state.ledger_db,
        merchant.merchant_id,
        merchant.livemode,
        day,
        currency,
        terms=SettlementTerms.from_settings(state.settings),
    )
    return json_response(200, orjson.dumps(settlement_object(view)))


def _day(text: str) -> date:
    try:
        day = date.fromisoformat(text) if _DATE.match(text) else None
    except ValueError:
        day = None
    if day is None or not EARLIEST <= day <= LATEST:
        raise InvalidRequest(
            f"date must be a day YYYY-MM-DD between {EARLIEST} and {LATEST}",
            code="parameter_invalid",
            param="date",
        )
    return day
