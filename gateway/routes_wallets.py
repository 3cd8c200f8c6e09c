"""Merchant API: wallets held for the merchant's users, transfers between them, withdrawals
out of them. Recharges (payments that top a wallet up) are ``POST /v1/recharges`` in
routes_payments."""

from __future__ import annotations

import contextlib

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from channels.registry import CHANNELS
from core import wallets, withdrawals
from core.errors import InvalidRequest
from core.idempotency import IdempotencyClaim
from core.merchants import MerchantAuth
from gateway.idempotency import idempotent
from gateway.routes_payments import json_response, merchant_of, object_id
from gateway.schemas import TransferCreate, WithdrawalCreate, parse_body
from gateway.state import GatewayState
from workers.queue import Queues, enqueue_notify, enqueue_withdraw

routes = web.RouteTableDef()


@routes.get("/v1/wallets")
async def find(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    owner = request.query.get("owner", "")
    if not 1 <= len(owner) <= 64:
        raise InvalidRequest("owner: your id for the wallet's holder is required", param="owner")
    found = await wallets.find_wallets(state.db, merchant.merchant_id, owner)
    return json_response(200, orjson.dumps({"object": "list", "data": found}))


@routes.get("/v1/wallets/{wallet_id}")
async def read(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    wallet = await wallets.get_wallet(
        state.db, merchant.merchant_id, object_id(request, "wallet_id")
    )
    return json_response(200, orjson.dumps(wallet))


@routes.post("/v1/transfers")
async def create_transfer(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    body = await request.read()
    spec = parse_body(TransferCreate, body)
    new = wallets.NewTransfer(
        from_wallet_id=spec.from_wallet,
        to_wallet_id=spec.to_wallet,
        amount_minor=spec.amount,
        merchant_transfer_no=spec.merchant_transfer_no,
        description=spec.description,
    )
    return await idempotent(
        request,
        state,
        merchant,
        body,
        lambda claim: _transfer(state, merchant, new, claim),
        scope="POST /v1/transfers",
    )


async def _transfer(
    state: GatewayState,
    merchant: MerchantAuth,
    new: wallets.NewTransfer,
    claim: IdempotencyClaim | None,
) -> web.Response:
    made = await wallets.transfer(state.db, merchant, new, claim=claim)
    if made.replayed:
        return json_response(made.status, made.body, **{"Idempotent-Replayed": "true"})
    if made.event_id is not None:
        # Committed with its outbox rows (webhook, ledger): this only sends it sooner.
        with contextlib.suppress(RedisError):
            await enqueue_notify(state.redis, Queues.of(state.settings), made.event_id)
    return json_response(made.status, made.body)


@routes.get("/v1/transfers/{transfer_no}")
async def read_transfer(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    found = await wallets.get_transfer(
        state.db, merchant.merchant_id, object_id(request, "transfer_no")
    )
    return json_response(200, orjson.dumps(found))


@routes.post("/v1/withdrawals")
async def create_withdrawal(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    body = await request.read()
    spec = parse_body(WithdrawalCreate, body)
    if spec.channel not in CHANNELS:
        raise InvalidRequest(
            "channel must be one of: " + ", ".join(sorted(CHANNELS)),
            code="channel_not_supported",
            param="channel",
        )
    account_id = await state.accounts.lookup(state.db, merchant.merchant_id, spec.channel)
    new = withdrawals.NewWithdrawal(
        wallet_id=spec.wallet,
        amount_minor=spec.amount,
        channel_account_id=account_id,
        channel=spec.channel,
        payee_id=spec.payee_id,
        payee_type=spec.payee_type,
        payee_name=spec.payee_name,
        remark=spec.remark,
        merchant_withdrawal_no=spec.merchant_withdrawal_no,
    )
    return await idempotent(
        request,
        state,
        merchant,
        body,
        lambda claim: _withdraw(state, merchant, new, claim),
        scope="POST /v1/withdrawals",
    )


async def _withdraw(
    state: GatewayState,
    merchant: MerchantAuth,
    new: withdrawals.NewWithdrawal,
    claim: IdempotencyClaim | None,
) -> web.Response:
    made = await withdrawals.create_withdrawal(state.db, merchant, new, claim=claim)
    if made.replayed:
        return json_response(made.status, made.body, **{"Idempotent-Replayed": "true"})
    with contextlib.suppress(RedisError):
        # Committed with its outbox row: the sweeper enqueues it if this is lost.
        await enqueue_withdraw(state.redis, Queues.of(state.settings), made.withdrawal_no)
    return json_response(made.status, made.body)


@routes.get("/v1/withdrawals/{withdrawal_no}")
async def read_withdrawal(request: web.Request) -> web.Response:
    state, merchant = await merchant_of(request)
    found = await withdrawals.get_withdrawal(
        state.db, merchant.merchant_id, object_id(request, "withdrawal_no")
    )
    return json_response(200, orjson.dumps(found))
