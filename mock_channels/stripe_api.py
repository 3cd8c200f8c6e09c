"""The Stripe API v1 routes (mounted under ``/v1``): what stripe-python and payfront's adapter
call. One middleware authenticates, reads the form-encoded parameters, applies the idempotency
layer and fault injection, and answers every error in Stripe's shape."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from mock_channels.stripe_errors import (
    StripeApiError,
    api_error,
    json_response,
    parameter_invalid,
    resource_missing,
    unrecognized_url,
)
from mock_channels.stripe_forms import FormError, Params, decode_form
from mock_channels.stripe_idempotency import MAX_KEY_LENGTH, SavedAnswer, fingerprint
from mock_channels.stripe_lists import LIST_PARAMS, list_body, list_request, page
from mock_channels.stripe_params import (
    CANCEL_PARAMS,
    CANCELLATION_REASONS,
    CONFIRM_PARAMS,
    RETRIEVE_PARAMS,
    choice,
    create_intent,
    create_refund,
    expand,
    known_only,
    string,
)
from mock_channels.stripe_payments import RequestMeta
from mock_channels.stripe_sandbox import STRIPE_SANDBOX, StripeSandbox
from mock_channels.stripe_state import SANDBOX_API_VERSION, Account, PaymentIntent, new_id

logger = logging.getLogger(__name__)

_ACCOUNT = web.RequestKey("stripe_account", Account)
_PARAMS = web.RequestKey("stripe_params", dict)
_META = web.RequestKey("stripe_request", RequestMeta)


def _read_params(request: web.Request, body: bytes) -> Params:
    """GET parameters come in the query string, POST ones in the form-encoded body."""
    try:
        if request.method == "GET":
            return decode_form(request.query_string)
        content_type = request.content_type
        if body and content_type not in ("application/x-www-form-urlencoded", ""):
            raise FormError(
                f"Invalid request: Content-Type {content_type} is not supported; send "
                "application/x-www-form-urlencoded parameters."
            )
        return decode_form(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise StripeApiError(400, "Invalid request: the body is not UTF-8") from None
    except FormError as exc:
        raise StripeApiError(400, str(exc), param=exc.param) from None


@web.middleware
async def v1_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    sandbox = request.config_dict[STRIPE_SANDBOX]
    request_id = new_id("req_", 14)
    headers = {
        "Request-Id": request_id,
        "Stripe-Version": request.headers.get("Stripe-Version") or SANDBOX_API_VERSION,
    }

    def finish(response: web.Response) -> web.Response:
        response.headers.update(headers)
        return response

    body = await request.read()
    try:
        account = sandbox.authenticate(
            request.headers.get("Authorization"), request.headers.get("Stripe-Account")
        )
        params = _read_params(request, body)
    except StripeApiError as exc:
        return finish(exc.response())

    key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
    if key is not None:
        headers["Idempotency-Key"] = key
        if not key or len(key) > MAX_KEY_LENGTH:
            error = parameter_invalid(
                "Idempotency-Key", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters"
            )
            return finish(error.response())
        try:
            saved = sandbox.idempotency.begin(
                account.account_id, key, fingerprint(request.method, request.path, params)
            )
        except StripeApiError as exc:
            return finish(exc.response())
        if saved is not None:
            replay = web.Response(status=saved.status, body=saved.body, headers=saved.headers)
            replay.headers["Idempotent-Replayed"] = "true"
            replay.headers["Idempotency-Key"] = key
            return replay

    keep = False
    try:
        plan = sandbox.faults.plan_for(account.account_id)
        try:
            await sandbox.faults_before_acting(plan)
        except StripeApiError as exc:
            return finish(exc.response())
        request[_ACCOUNT] = account
        request[_PARAMS] = params
        request[_META] = RequestMeta(request_id, key)
        response, keep = await _run(request, handler)
        finish(response)
        if key is not None and keep:
            sandbox.idempotency.save(
                account.account_id,
                key,
                SavedAnswer(response.status, _body_bytes(response), dict(response.headers)),
            )
        if sandbox.faults.strikes(plan.timeout_rate):
            # The request has been acted on; the client only sees its own timeout.
            await sandbox.hang()
        return response
    finally:
        if key is not None and not keep:
            sandbox.idempotency.forget(account.account_id, key)


async def _run(request: web.Request, handler: Handler) -> tuple[web.Response, bool]:
    """The endpoint's answer, and whether Stripe would keep it for the idempotency key."""
    try:
        response = await handler(request)
        assert isinstance(response, web.Response)
        return response, True
    except StripeApiError as exc:
        return exc.response(), exc.saved
    except web.HTTPException as exc:  # no such route or method
        if exc.status in (404, 405):
            return unrecognized_url(request.method, request.path).response(), False
        raise
    except Exception:
        logger.exception("Stripe sandbox failed on %s %s", request.method, request.path)
        return api_error().response(), True  # Stripe replays its 500s too


def _body_bytes(response: web.Response) -> bytes:
    return response.body if isinstance(response.body, bytes) else b""


def _context(request: web.Request) -> tuple[StripeSandbox, Account, Params, RequestMeta]:
    return (
        request.config_dict[STRIPE_SANDBOX],
        request[_ACCOUNT],
        request[_PARAMS],
        request[_META],
    )


def _intent(sandbox: StripeSandbox, account: Account, request: web.Request) -> PaymentIntent:
    intent_id = request.match_info["intent"]
    intent = sandbox.book.intent(account.account_id, intent_id)
    if intent is None:
        raise resource_missing("payment_intent", intent_id, "intent")
    return intent


def _ok(payload: dict[str, Any]) -> web.Response:
    return json_response(200, payload)


async def create_payment_intent(request: web.Request) -> web.Response:
    sandbox, account, params, meta = _context(request)
    spec = create_intent(params)
    intent = sandbox.payments.create(account.account_id, spec, meta)
    return _ok(sandbox.payments.render(intent, spec.expand))


async def retrieve_payment_intent(request: web.Request) -> web.Response:
    sandbox, account, params, _ = _context(request)
    known_only(params, RETRIEVE_PARAMS)
    intent = _intent(sandbox, account, request)
    return _ok(sandbox.payments.render(intent, expand(params)))


async def cancel_payment_intent(request: web.Request) -> web.Response:
    sandbox, account, params, meta = _context(request)
    known_only(params, CANCEL_PARAMS)
    reason = choice(params, "cancellation_reason", CANCELLATION_REASONS)
    fields = expand(params)
    intent = _intent(sandbox, account, request)
    return _ok(sandbox.payments.render(sandbox.payments.cancel(intent, reason, meta), fields))


async def confirm_payment_intent(request: web.Request) -> web.Response:
    sandbox, account, params, meta = _context(request)
    known_only(params, CONFIRM_PARAMS)
    fields = expand(params)
    intent = _intent(sandbox, account, request)
    confirmed = sandbox.payments.confirm(intent, string(params, "payment_method"), meta)
    return _ok(sandbox.payments.render(confirmed, fields))


async def retrieve_charge(request: web.Request) -> web.Response:
    sandbox, account, params, _ = _context(request)
    known_only(params, {"expand"})
    charge_id = request.match_info["charge"]
    charge = sandbox.book.charge(account.account_id, charge_id)
    if charge is None:
        raise resource_missing("charge", charge_id, "charge")
    return _ok(charge.to_api())


async def create_refund_route(request: web.Request) -> web.Response:
    sandbox, account, params, meta = _context(request)
    refund = sandbox.refunds.create(account.account_id, create_refund(params), meta)
    return _ok(refund.to_api())


async def retrieve_refund(request: web.Request) -> web.Response:
    sandbox, account, params, _ = _context(request)
    known_only(params, {"expand"})
    list_request(params, frozenset())  # refuses expansions
    refund_id = request.match_info["refund"]
    refund = sandbox.book.refund(account.account_id, refund_id)
    if refund is None:
        raise resource_missing("refund", refund_id, "id")
    return _ok(refund.to_api())


async def list_refunds(request: web.Request) -> web.Response:
    sandbox, account, params, _ = _context(request)
    known_only(params, LIST_PARAMS | {"payment_intent", "charge"})
    listing = list_request(params, frozenset())
    found, has_more = sandbox.refunds.find(
        account.account_id,
        listing,
        string(params, "payment_intent"),
        string(params, "charge"),
    )
    return _ok(list_body("/v1/refunds", [r.to_api() for r in found], has_more))


async def create_transfer(request: web.Request) -> web.Response:
    sandbox, account, params, meta = _context(request)
    return _ok(sandbox.transfers.create(account.account_id, params, meta).to_api())


async def retrieve_transfer(request: web.Request) -> web.Response:
    sandbox, account, params, _ = _context(request)
    known_only(params, {"expand"})
    list_request(params, frozenset())  # refuses expansions
    transfer_id = request.match_info["transfer"]
    transfer = sandbox.transfers.get(account.account_id, transfer_id)
    if transfer is None:
        raise resource_missing("transfer", transfer_id, "id")
    return _ok(transfer.to_api())


async def list_transfers(request: web.Request) -> web.Response:
    sandbox, account, params, _ = _context(request)
    known_only(params, LIST_PARAMS | {"destination", "transfer_group"})
    listing = list_request(params, frozenset())
    newest_first = sandbox.transfers.newest_first(
        account.account_id, string(params, "destination"), string(params, "transfer_group")
    )
    found, has_more = page(newest_first, listing, lambda _: True, "transfer")
    return _ok(list_body("/v1/transfers", [t.to_api() for t in found], has_more))


_TXN_FILTERS = frozenset({"type", "source", "currency", "payout"})


async def list_balance_transactions(request: web.Request) -> web.Response:
    sandbox, account, params, _ = _context(request)
    known_only(params, LIST_PARAMS | _TXN_FILTERS)
    listing = list_request(params, frozenset({"data.source"}))
    filters = {name: string(params, name) for name in _TXN_FILTERS}
    newest_first = [
        t
        for t in reversed(sandbox.book.balance_transactions.values())
        if t.account_id == account.account_id
    ]

    def keep(txn: Any) -> bool:
        return (
            filters["payout"] is None  # the sandbox makes no payouts
            and filters["type"] in (None, txn.type.value)
            and filters["source"] in (None, txn.source)
            and filters["currency"] in (None, txn.currency)
        )

    found, has_more = page(newest_first, listing, keep, "balance_transaction")
    expand_source = "data.source" in listing.expand
    data = [sandbox.balance.render(txn, expand_source) for txn in found]
    return _ok(list_body("/v1/balance_transactions", data, has_more))


async def retrieve_balance_transaction(request: web.Request) -> web.Response:
    sandbox, account, params, _ = _context(request)
    known_only(params, {"expand"})
    expand_source = "source" in list_request(params, frozenset({"source"})).expand
    txn_id = request.match_info["txn"]
    txn = sandbox.book.balance_transaction(account.account_id, txn_id)
    if txn is None:
        raise resource_missing("balance_transaction", txn_id, "id")
    return _ok(sandbox.balance.render(txn, expand_source))


async def retrieve_event(request: web.Request) -> web.Response:
    sandbox, account, params, _ = _context(request)
    known_only(params, {"expand"})
    event_id = request.match_info["event"]
    event = sandbox.book.event(account.account_id, event_id)
    if event is None:
        raise resource_missing("event", event_id, "id")
    return _ok(event.to_api())


def build_v1_app() -> web.Application:
    app = web.Application(middlewares=[v1_middleware])
    app.router.add_post("/payment_intents", create_payment_intent)
    app.router.add_get("/payment_intents/{intent}", retrieve_payment_intent)
    app.router.add_post("/payment_intents/{intent}/cancel", cancel_payment_intent)
    app.router.add_post("/payment_intents/{intent}/confirm", confirm_payment_intent)
    app.router.add_get("/charges/{charge}", retrieve_charge)
    app.router.add_post("/refunds", create_refund_route)
    app.router.add_get("/refunds", list_refunds)
    app.router.add_get("/refunds/{refund}", retrieve_refund)
    app.router.add_get("/balance_transactions", list_balance_transactions)
    app.router.add_get("/balance_transactions/{txn}", retrieve_balance_transaction)
    app.router.add_get("/events/{event}", retrieve_event)
    app.router.add_post("/transfers", create_transfer)
    app.router.add_get("/transfers", list_transfers)
    app.router.add_get("/transfers/{transfer}", retrieve_transfer)
    return app
