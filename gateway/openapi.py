"""The merchant API's OpenAPI 3.1 description, generated from the pydantic models at start-up,
served as ``/openapi.json`` and rendered as a self-contained reference page at ``/docs``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from core.reconcile.differences import STATUSES as DIFFERENCE_STATUSES
from core.settings import Settings
from gateway import openapi_models as m
from gateway.openapi_page import render_page
from gateway.schemas import (
    AnomalyResolve,
    AttemptCreate,
    PaymentCreate,
    PaymentResolve,
    PoliciesPut,
    RechargeCreate,
    RefundCreate,
    RoutingRulesPut,
    TransferCreate,
    WebhookEndpointCreate,
    WithdrawalCreate,
)

REF = "#/components/schemas/{model}"
JSON = "application/json"

_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (PaymentCreate, "validation"),
    (WebhookEndpointCreate, "validation"),
    (RefundCreate, "validation"),
    (RoutingRulesPut, "validation"),
    (m.RoutingRules, "serialization"),
    (AnomalyResolve, "validation"),
    (AttemptCreate, "validation"),
    (PoliciesPut, "validation"),
    (RechargeCreate, "validation"),
    (TransferCreate, "validation"),
    (WithdrawalCreate, "validation"),
    (m.Withdrawal, "serialization"),
    (m.WalletWithMovements, "serialization"),
    (m.WalletList, "serialization"),
    (m.Transfer, "serialization"),
    (m.Trade, "serialization"),
    (m.Policies, "serialization"),
    (PaymentResolve, "validation"),
    (m.Anomaly, "serialization"),
    (m.AnomalyList, "serialization"),
    (m.ReconciliationDifference, "serialization"),
    (m.ReconciliationDifferenceList, "serialization"),
    (m.ReconciliationRunList, "serialization"),
    (m.EventWithDeliveries, "serialization"),
    (m.Payment, "serialization"),
    (m.Refund, "serialization"),
    (m.RefundList, "serialization"),
    (m.Token, "serialization"),
    (m.WebhookEndpoint, "serialization"),
    (m.Error, "serialization"),
    (m.Health, "serialization"),
    (m.Readiness, "serialization"),
    (m.Event, "serialization"),
    (m.Balance, "serialization"),
    (m.Settlement, "serialization"),
]

# The errors of README's table: status -> (code, type, when).
_ERROR_CODES: dict[int, list[tuple[str, str, str]]] = {
    400: [
        ("malformed_json", "invalid_request_error", "the body is not a JSON object"),
        (
            "parameter_invalid",
            "invalid_request_error",
            "a field is missing, mistyped or out of range",
        ),
        ("channel_not_supported", "invalid_request_error", "the channel is unknown"),
        ("method_not_supported", "invalid_request_error", "the channel has no such method"),
        ("currency_not_supported", "invalid_request_error", "the channel refuses the currency"),
        ("channel_not_configured", "invalid_request_error", "no enabled account of the channel"),
        ("no_route", "invalid_request_error", "no channel named and no routing rule matches"),
        ("invalid_request", "invalid_request_error", "a query parameter or header is invalid"),
        (
            "amount_exceeds_refundable",
            "invalid_request_error",
            "the refund is more than what is left to refund",
        ),
    ],
    401: [("invalid_api_key", "authentication_error", "missing or unknown API key")],
    404: [
        ("resource_missing", "not_found_error", "no such object, or another merchant's"),
        ("token_not_found", "not_found_error", "no such token"),
        ("route_not_found", "not_found_error", "no such route"),
    ],
    405: [("method_not_allowed", "invalid_request_error", "the route takes another method")],
    409: [
        ("merchant_order_no_taken", "conflict_error", "the merchant order number was used before"),
        ("idempotency_key_in_use", "idempotency_error", "the same key is still in flight"),
        ("payment_not_refundable", "conflict_error", "the payment is not paid"),
        ("payment_fully_refunded", "conflict_error", "nothing is left to refund"),
        ("merchant_refund_no_taken", "conflict_error", "the merchant refund number was used"),
        ("anomaly_already_resolved", "conflict_error", "the anomaly was resolved before"),
        ("difference_not_open", "conflict_error", "the difference is not open (any more)"),
        ("trade_not_open", "conflict_error", "the trade is paid or closed: no new attempt"),
        ("insufficient_funds", "conflict_error", "the wallet holds less than the amount"),
        ("merchant_transfer_no_taken", "conflict_error", "the transfer number was used"),
        ("merchant_withdrawal_no_taken", "conflict_error", "the withdrawal number was used"),
        ("recharge_not_refundable", "conflict_error", "a recharge leaves its wallet otherwise"),
        ("trade_changed", "conflict_error", "the trade moved while the attempt was made"),
        ("payment_not_unknown", "conflict_error", "only a payment in `unknown` is settled by hand"),
    ],
    413: [("body_too_large", "invalid_request_error", "the body is over the size limit")],
    422: [("idempotency_key_reused", "idempotency_error", "same key, different body")],
    429: [("rate_limited", "rate_limit_error", "reserved: a proxy in front may limit rates")],
    500: [("internal_error", "api_error", "a bug; nothing was half-written")],
    503: [
        ("service_unavailable", "service_unavailable_error", "the database does not answer"),
        (
            "channel_unavailable",
            "service_unavailable_error",
            "every channel account that could take the payment has its circuit open",
        ),
    ],
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _error(status: int, only: set[str] | None = None) -> dict[str, Any]:
    listed = [entry for entry in _ERROR_CODES[status] if only is None or entry[0] in only]
    return {
        "description": "; ".join(f"`{type_}` `{code}`: {when}" for code, type_, when in listed),
        "headers": {"Request-Id": _header("Request-Id")},
        "content": {
            JSON: {
                "schema": _ref("Error"),
                "examples": {
                    code: {
                        "value": {
                            "error": {
                                "type": type_,
                                "code": code,
                                "message": when,
                                "param": None,
                                "request_id": "req_...",
                            }
                        }
                    }
                    for code, type_, when in listed
                },
            }
        },
    }


def _errors(*statuses: int, **only: set[str]) -> dict[str, Any]:
    return {str(status): _error(status, only.get(f"s{status}")) for status in statuses}


def _ok(description: str, schema: str, *extra_headers: str) -> dict[str, Any]:
    headers = {"Request-Id": _header("Request-Id"), "Trace-Id": _header("Trace-Id")}
    headers.update({name: _header(name) for name in extra_headers})
    return {
        "description": description,
        "headers": headers,
        "content": {JSON: {"schema": _ref(schema)}},
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


_COMMON = (413, 500, 503)


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_MERCHANT: list[dict[str, list[str]]] = [{"bearerAuth": []}]
_TRACE = {"$ref": "#/components/parameters/traceparent"}


def _operations(settings: Settings) -> dict[str, Any]:
    callback_body = {
        "description": "The channel's own callback: WeChat Pay's encrypted, signed JSON; "
        "Alipay's signed form; Stripe's signed event JSON.",
        "required": True,
        "content": {
            JSON: {"schema": {}},
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
            },
        },
    }
    channel_answer = {
        JSON: {"schema": {}},
        "text/plain": {"schema": {"type": "string"}},
    }
    return {
        "/v1/payments": {
            "post": {
                "operationId": "createPayment",
                "summary": "Create a payment",
                "description": "Answers `201` with `pay_no`, `token` and `status: pending` after "
                "one database transaction and one enqueue; no channel I/O. Follows Stripe's "
                "idempotency rules for `Idempotency-Key`.",
                "tags": ["payments"],
                "security": _MERCHANT,
                "parameters": [{"$ref": "#/components/parameters/Idempotency-Key"}, _TRACE],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("PaymentCreate")}},
                },
                "responses": {
                    "201": _ok(
                        "The payment, created; or, with `Idempotent-Replayed: true`, the first "
                        "answer to this `Idempotency-Key` and body, replayed (as Stripe does, "
                        "with the first answer's status)",
                        "Payment",
                        "Idempotent-Replayed",
                    ),
                    **_errors(400, 401, 409, 422, 429, *_COMMON),
                },
            }
        },
        "/v1/payments/{pay_no}": {
            "get": {
                "operationId": "getPayment",
                "summary": "Read one of your payments",
                "tags": ["payments"],
                "security": _MERCHANT,
                "parameters": [_path("pay_no", "The payment's number"), _TRACE],
                "responses": {
                    "200": _ok("The payment", "Payment"),
                    **_errors(401, 404, 500, 503, s404={"resource_missing", "route_not_found"}),
                },
            }
        },
        "/v1/payments/{pay_no}/refunds": {
            "post": {
                "operationId": "createRefund",
                "summary": "Refund a paid payment, in part or in full",
                "description": "Answers `201` with the refund (`status: pending`) after one "
                "database transaction; the channel call happens in a worker and ends in "
                "`refund.succeeded` or `refund.failed`. Refunds of one payment never add up "
                "to more than was paid, even when asked for at the same time. "
                "`Idempotency-Key` as for payments.",
                "tags": ["refunds"],
                "security": _MERCHANT,
                "parameters": [
                    _path("pay_no", "The payment's number"),
                    {"$ref": "#/components/parameters/Idempotency-Key"},
                    _TRACE,
                ],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("RefundCreate")}},
                },
                "responses": {
                    "201": _ok(
                        "The refund, created; or the first answer to this `Idempotency-Key`, "
                        "replayed",
                        "Refund",
                        "Idempotent-Replayed",
                    ),
                    **_errors(
                        400,
                        401,
                        404,
                        409,
                        422,
                        429,
                        *_COMMON,
                        s404={"resource_missing", "route_not_found"},
                        s409={
                            "payment_not_refundable",
                            "payment_fully_refunded",
                            "merchant_refund_no_taken",
                            "idempotency_key_in_use",
                        },
                    ),
                },
            },
            "get": {
                "operationId": "listRefunds",
                "summary": "List a payment's refunds, oldest first",
                "tags": ["refunds"],
                "security": _MERCHANT,
                "parameters": [_path("pay_no", "The payment's number"), _TRACE],
                "responses": {
                    "200": _ok("The refunds", "RefundList"),
                    **_errors(401, 404, 500, 503, s404={"resource_missing", "route_not_found"}),
                },
            },
        },
        "/v1/refunds/{refund_no}": {
            "get": {
                "operationId": "getRefund",
                "summary": "Read one of your refunds",
                "tags": ["refunds"],
                "security": _MERCHANT,
                "parameters": [_path("refund_no", "The refund's number"), _TRACE],
                "responses": {
                    "200": _ok("The refund", "Refund"),
                    **_errors(401, 404, 500, 503, s404={"resource_missing", "route_not_found"}),
                },
            }
        },
        "/v1/payments/{pay_no}/resolve": {
            "post": {
                "operationId": "resolvePayment",
                "summary": "Settle a payment in `unknown` by hand (audited)",
                "description": "For a payment whose channel answer was lost and that the "
                "check job could not settle: after checking the channel's console, record "
                "`paid` or `failed` with who, why and the evidence. The move is the same "
                "compare-and-set (and event) as an automatic one.",
                "tags": ["resolutions"],
                "security": _MERCHANT,
                "parameters": [
                    _path("pay_no", "The payment's number"),
                    {"$ref": "#/components/parameters/Idempotency-Key"},
                    _TRACE,
                ],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("PaymentResolve")}},
                },
                "responses": {
                    "200": _ok("The payment, settled", "Payment", "Idempotent-Replayed"),
                    **_errors(
                        400,
                        401,
                        404,
                        409,
                        422,
                        *_COMMON,
                        s400={"malformed_json", "parameter_invalid", "invalid_request"},
                        s404={"resource_missing", "route_not_found"},
                        s409={"payment_not_unknown", "idempotency_key_in_use"},
                    ),
                },
            }
        },
        "/v1/trades/{trade_no}": {
            "get": {
                "operationId": "getTrade",
                "summary": "Read a trade with all its attempts",
                "tags": ["payments"],
                "security": _MERCHANT,
                "parameters": [_path("trade_no", "The trade's number"), _TRACE],
                "responses": {
                    "200": _ok("The trade", "Trade"),
                    **_errors(401, 404, 500, 503, s404={"resource_missing", "route_not_found"}),
                },
            }
        },
        "/v1/trades/{trade_no}/attempts": {
            "post": {
                "operationId": "createAttempt",
                "summary": "Pay a trade by another channel or method (a new attempt)",
                "description": "The shopper switches channel: a new payment (its own `pay_no`, "
                "`token` and out_trade_no) on the same trade. Before the new attempt reaches "
                "its channel, earlier open attempts are queried and closed at theirs; if one "
                "of them was paid, the trade is paid and the new attempt fails with "
                "`TRADE_ALREADY_SETTLED`. Should two attempts both be paid, the later one is "
                "refunded automatically (`payment.duplicate`).",
                "tags": ["payments"],
                "security": _MERCHANT,
                "parameters": [
                    _path("trade_no", "The trade's number"),
                    {"$ref": "#/components/parameters/Idempotency-Key"},
                    _TRACE,
                ],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("AttemptCreate")}},
                },
                "responses": {
                    "201": _ok("The new attempt", "Payment", "Idempotent-Replayed"),
                    **_errors(
                        400,
                        401,
                        404,
                        409,
                        422,
                        429,
                        *_COMMON,
                        s404={"resource_missing", "route_not_found"},
                        s409={"trade_not_open", "trade_changed", "idempotency_key_in_use"},
                    ),
                },
            }
        },
        "/v1/policies": {
            "get": {
                "operationId": "getPolicies",
                "summary": "Read your policies for partial and late payments",
                "tags": ["resolutions"],
                "security": _MERCHANT,
                "parameters": [_TRACE],
                "responses": {"200": _ok("The policies", "Policies"), **_errors(401, 500, 503)},
            },
            "put": {
                "operationId": "putPolicies",
                "summary": "Set your policies for partial and late payments",
                "tags": ["resolutions"],
                "security": _MERCHANT,
                "parameters": [_TRACE],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("PoliciesPut")}},
                },
                "responses": {
                    "200": _ok("The policies", "Policies"),
                    **_errors(400, 401, *_COMMON, s400={"malformed_json", "parameter_invalid"}),
                },
            },
        },
        "/v1/recharges": {
            "post": {
                "operationId": "createRecharge",
                "summary": "Top up a user's wallet (a payment that credits it when paid)",
                "description": "The fields of `POST /v1/payments`, plus `owner`: your id for "
                "the wallet's holder (the wallet of that owner and currency is created on "
                "first use). The answer is the payment; when it is paid in full the wallet is "
                "credited in the same transaction (`recharge.succeeded`). A partial recharge "
                "is always refunded; a recharge is not refundable by the refund API.",
                "tags": ["wallets"],
                "security": _MERCHANT,
                "parameters": [{"$ref": "#/components/parameters/Idempotency-Key"}, _TRACE],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("RechargeCreate")}},
                },
                "responses": {
                    "201": _ok("The recharge's payment", "Payment", "Idempotent-Replayed"),
                    **_errors(400, 401, 409, 422, 429, *_COMMON),
                },
            }
        },
        "/v1/wallets": {
            "get": {
                "operationId": "findWallets",
                "summary": "The wallets of one of your users",
                "tags": ["wallets"],
                "security": _MERCHANT,
                "parameters": [
                    {
                        "name": "owner",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
                    },
                    _TRACE,
                ],
                "responses": {
                    "200": _ok("The wallets, one per currency", "WalletList"),
                    **_errors(400, 401, 500, 503, s400={"invalid_request"}),
                },
            }
        },
        "/v1/wallets/{wallet_id}": {
            "get": {
                "operationId": "getWallet",
                "summary": "A wallet with its latest movements",
                "tags": ["wallets"],
                "security": _MERCHANT,
                "parameters": [_path("wallet_id", "The wallet's id"), _TRACE],
                "responses": {
                    "200": _ok("The wallet", "WalletWithMovements"),
                    **_errors(401, 404, 500, 503, s404={"resource_missing", "route_not_found"}),
                },
            }
        },
        "/v1/transfers": {
            "post": {
                "operationId": "createTransfer",
                "summary": "Move money between two of your wallets",
                "description": "Atomic: the transfer happens whole (`201`, `status: "
                "succeeded`, `transfer.succeeded`) or not at all (`409 insufficient_funds`). "
                "No channel is involved.",
                "tags": ["wallets"],
                "security": _MERCHANT,
                "parameters": [{"$ref": "#/components/parameters/Idempotency-Key"}, _TRACE],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("TransferCreate")}},
                },
                "responses": {
                    "201": _ok("The transfer", "Transfer", "Idempotent-Replayed"),
                    **_errors(
                        400,
                        401,
                        404,
                        409,
                        422,
                        429,
                        *_COMMON,
                        s404={"resource_missing", "route_not_found"},
                        s409={
                            "insufficient_funds",
                            "merchant_transfer_no_taken",
                            "idempotency_key_in_use",
                        },
                    ),
                },
            }
        },
        "/v1/transfers/{transfer_no}": {
            "get": {
                "operationId": "getTransfer",
                "summary": "Read one transfer",
                "tags": ["wallets"],
                "security": _MERCHANT,
                "parameters": [_path("transfer_no", "The transfer's number"), _TRACE],
                "responses": {
                    "200": _ok("The transfer", "Transfer"),
                    **_errors(401, 404, 500, 503, s404={"resource_missing", "route_not_found"}),
                },
            }
        },
        "/v1/withdrawals": {
            "post": {
                "operationId": "createWithdrawal",
                "summary": "Pay a wallet out to its holder through a channel",
                "description": "Debits the wallet at once (`409 insufficient_funds` "
                "otherwise) and answers `201` with the withdrawal `pending`; a worker sends "
                "the channel's payout (Alipay `alipay.fund.trans.uni.transfer`, WeChat Pay "
                "merchant transfer, Stripe transfer), with the refund rules for unknown "
                "outcomes. `withdrawal.succeeded`, or `withdrawal.failed` with the wallet "
                "credited back.",
                "tags": ["wallets"],
                "security": _MERCHANT,
                "parameters": [{"$ref": "#/components/parameters/Idempotency-Key"}, _TRACE],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("WithdrawalCreate")}},
                },
                "responses": {
                    "201": _ok("The withdrawal", "Withdrawal", "Idempotent-Replayed"),
                    **_errors(
                        400,
                        401,
                        404,
                        409,
                        422,
                        429,
                        *_COMMON,
                        s404={"resource_missing", "route_not_found"},
                        s409={
                            "insufficient_funds",
                            "merchant_withdrawal_no_taken",
                            "idempotency_key_in_use",
                        },
                    ),
                },
            }
        },
        "/v1/withdrawals/{withdrawal_no}": {
            "get": {
                "operationId": "getWithdrawal",
                "summary": "Read one withdrawal",
                "tags": ["wallets"],
                "security": _MERCHANT,
                "parameters": [_path("withdrawal_no", "The withdrawal's number"), _TRACE],
                "responses": {
                    "200": _ok("The withdrawal", "Withdrawal"),
                    **_errors(401, 404, 500, 503, s404={"resource_missing", "route_not_found"}),
                },
            }
        },
        "/v1/anomalies": {
            "get": {
                "operationId": "listAnomalies",
                "summary": "List your anomalies, newest first",
                "tags": ["resolutions"],
                "security": _MERCHANT,
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["open", "resolved"]},
                    },
                    {
                        "name": "pay_no",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    _TRACE,
                ],
                "responses": {
                    "200": _ok("The anomalies", "AnomalyList"),
                    **_errors(400, 401, 500, 503, s400={"invalid_request"}),
                },
            }
        },
        "/v1/anomalies/{anomaly_id}": {
            "get": {
                "operationId": "getAnomaly",
                "summary": "Read one anomaly with its resolution trail",
                "tags": ["resolutions"],
                "security": _MERCHANT,
                "parameters": [_path("anomaly_id", "The anomaly's id"), _TRACE],
                "responses": {
                    "200": _ok("The anomaly", "Anomaly"),
                    **_errors(401, 404, 500, 503, s404={"resource_missing", "route_not_found"}),
                },
            }
        },
        "/v1/anomalies/{anomaly_id}/resolve": {
            "post": {
                "operationId": "resolveAnomaly",
                "summary": "Resolve an anomaly (audited)",
                "description": "Records the decision (who, why, evidence) and closes the "
                "anomaly. It moves no money: make a refund through the refund API and record "
                "`refunded` here.",
                "tags": ["resolutions"],
                "security": _MERCHANT,
                "parameters": [
                    _path("anomaly_id", "The anomaly's id"),
                    {"$ref": "#/components/parameters/Idempotency-Key"},
                    _TRACE,
                ],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("AnomalyResolve")}},
                },
                "responses": {
                    "200": _ok("The anomaly, resolved", "Anomaly", "Idempotent-Replayed"),
                    **_errors(
                        400,
                        401,
                        404,
                        409,
                        422,
                        *_COMMON,
                        s400={"malformed_json", "parameter_invalid", "invalid_request"},
                        s404={"resource_missing", "route_not_found"},
                        s409={"anomaly_already_resolved", "idempotency_key_in_use"},
                    ),
                },
            }
        },
        "/v1/reconciliation/differences": {
            "get": {
                "operationId": "listReconciliationDifferences",
                "summary": "The review list: differences from statement runs and callbacks",
                "description": "Daily differences (statement runs) and realtime ones (a "
                "callback or query that did not match its order: the anomalies), newest "
                "first, in one list. `date` selects daily ones of that statement day.",
                "tags": ["reconciliation"],
                "security": _MERCHANT,
                "parameters": [
                    _query("status", {"type": "string", "enum": sorted(DIFFERENCE_STATUSES)}),
                    _query("source", {"type": "string", "enum": ["daily", "realtime"]}),
                    _query("kind", {"type": "string", "minLength": 1, "maxLength": 40}),
                    _query("date", {"type": "string", "format": "date"}),
                    _query("channel_account", {"type": "string", "minLength": 1, "maxLength": 64}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                    _TRACE,
                ],
                "responses": {
                    "200": _ok("The differences", "ReconciliationDifferenceList"),
                    **_errors(
                        400, 401, 429, 500, 503, s400={"invalid_request", "parameter_invalid"}
                    ),
                },
            }
        },
        "/v1/reconciliation/differences/{difference_id}": {
            "get": {
                "operationId": "getReconciliationDifference",
                "summary": "Read one difference with its resolution trail",
                "tags": ["reconciliation"],
                "security": _MERCHANT,
                "parameters": [_path("difference_id", "`dif_…` or `anm_…`"), _TRACE],
                "responses": {
                    "200": _ok("The difference", "ReconciliationDifference"),
                    **_errors(
                        401, 429, 404, 500, 503, s404={"resource_missing", "route_not_found"}
                    ),
                },
            }
        },
        "/v1/reconciliation/differences/{difference_id}/resolve": {
            "post": {
                "operationId": "resolveReconciliationDifference",
                "summary": "Resolve an open difference (audited)",
                "description": "Records the decision (who, why, evidence) and closes the "
                "difference; a realtime one is its anomaly, resolved as "
                "`POST /v1/anomalies/{id}/resolve` would. It moves no money.",
                "tags": ["reconciliation"],
                "security": _MERCHANT,
                "parameters": [
                    _path("difference_id", "`dif_…` or `anm_…`"),
                    {"$ref": "#/components/parameters/Idempotency-Key"},
                    _TRACE,
                ],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("AnomalyResolve")}},
                },
                "responses": {
                    "200": _ok(
                        "The difference, resolved",
                        "ReconciliationDifference",
                        "Idempotent-Replayed",
                    ),
                    **_errors(
                        400,
                        401,
                        404,
                        409,
                        422,
                        429,
                        *_COMMON,
                        s400={"malformed_json", "parameter_invalid", "invalid_request"},
                        s404={"resource_missing", "route_not_found"},
                        s409={
                            "difference_not_open",
                            "anomaly_already_resolved",
                            "idempotency_key_in_use",
                        },
                    ),
                },
            }
        },
        "/v1/reconciliation/runs": {
            "get": {
                "operationId": "listReconciliationRuns",
                "summary": "Summaries of statement reconciliation runs, newest first",
                "tags": ["reconciliation"],
                "security": _MERCHANT,
                "parameters": [
                    _query("date", {"type": "string", "format": "date"}),
                    _query("channel_account", {"type": "string", "minLength": 1, "maxLength": 64}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                    _TRACE,
                ],
                "responses": {
                    "200": _ok("The runs", "ReconciliationRunList"),
                    **_errors(
                        400, 401, 429, 500, 503, s400={"invalid_request", "parameter_invalid"}
                    ),
                },
            }
        },
        "/v1/events/{event_id}": {
            "get": {
                "operationId": "getEvent",
                "summary": "Read an event with its deliveries and every attempt",
                "tags": ["webhooks"],
                "security": _MERCHANT,
                "parameters": [_path("event_id", "The event's id"), _TRACE],
                "responses": {
                    "200": _ok("The event", "EventWithDeliveries"),
                    **_errors(401, 404, 500, 503, s404={"resource_missing", "route_not_found"}),
                },
            }
        },
        "/v1/events/{event_id}/resend": {
            "post": {
                "operationId": "resendEvent",
                "summary": "Send an event again",
                "description": "Every enabled endpoint whose delivery finished (delivered or "
                "given up) gets one new attempt now, and endpoints added since get a first "
                "one; a delivery still being retried keeps its schedule.",
                "tags": ["webhooks"],
                "security": _MERCHANT,
                "parameters": [
                    _path("event_id", "The event's id"),
                    {"$ref": "#/components/parameters/Idempotency-Key"},
                    _TRACE,
                ],
                "responses": {
                    "202": _ok(
                        "The event, with its deliveries now due",
                        "EventWithDeliveries",
                        "Idempotent-Replayed",
                    ),
                    **_errors(
                        400,
                        401,
                        404,
                        409,
                        422,
                        413,
                        500,
                        503,
                        s400={"invalid_request"},
                        s404={"resource_missing", "route_not_found"},
                        s409={"idempotency_key_in_use"},
                    ),
                },
            }
        },
        "/v1/balance": {
            "get": {
                "operationId": "getBalance",
                "summary": "Your balance: pending and available, per currency",
                "description": "From the ledger, which is posted asynchronously (usually "
                "within a second of `payment.succeeded` or `refund.succeeded`); the pending "
                "balance is collected less refunds and channel fees, not yet settled; a day's "
                "pending funds move to available once the day is due (T+1 by default). Test "
                "and live keys see their own mode.",
                "tags": ["balance"],
                "security": _MERCHANT,
                "parameters": [_TRACE],
                "responses": {
                    "200": _ok("The balance", "Balance"),
                    **_errors(401, 429, 500, 503),
                },
            }
        },
        "/v1/settlements": {
            "get": {
                "operationId": "getSettlement",
                "summary": "One day's settlement: collected, refunded, fees, payable, status",
                "description": "Added up from the ledger for the day (Asia/Shanghai) and "
                "currency; zeros for a day without money movements. Once the day is due "
                "(T+1 by default) its net pending funds move to available by one settlement "
                "entry, shown under `settlement`.",
                "tags": ["balance"],
                "security": _MERCHANT,
                "parameters": [
                    {
                        "name": "date",
                        "in": "query",
                        "required": True,
                        "description": "The day, `YYYY-MM-DD` (2000-01-01 to 9998-12-31)",
                        "schema": {"type": "string", "format": "date"},
                    },
                    {
                        "name": "currency",
                        "in": "query",
                        "required": True,
                        "description": "ISO 4217 code",
                        "schema": {"type": "string", "pattern": "^[A-Z]{3}$"},
                    },
                    _TRACE,
                ],
                "responses": {
                    "200": _ok("The day's settlement view", "Settlement"),
                    **_errors(400, 401, 429, 500, 503, s400={"parameter_invalid"}),
                },
            }
        },
        "/v1/routing_rules": {
            "get": {
                "operationId": "getRoutingRules",
                "summary": "Read your routing rules, by priority",
                "tags": ["routing"],
                "security": _MERCHANT,
                "parameters": [_TRACE],
                "responses": {
                    "200": _ok("The routing table", "RoutingRules"),
                    **_errors(401, 500, 503, s503={"service_unavailable"}),
                },
            },
            "put": {
                "operationId": "putRoutingRules",
                "summary": "Replace your routing rules",
                "description": "For payments created without `channel`: the first rule by "
                "`priority` that matches the currency, the amount (inclusive bounds) and the "
                "requested kind (`method`: `qr`, `redirect`, `card`, `in_app`), and whose "
                "channel account's circuit is not open, picks the account and method; the "
                "next matching rule is the fallback. Replaces the whole table; this gateway "
                "uses it at once, the others within 30 s. See docs/routing.md.",
                "tags": ["routing"],
                "security": _MERCHANT,
                "parameters": [_TRACE],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("RoutingRulesPut")}},
                },
                "responses": {
                    "200": _ok("The routing table as stored", "RoutingRules"),
                    **_errors(
                        400,
                        401,
                        *_COMMON,
                        s400={
                            "malformed_json",
                            "parameter_invalid",
                            "channel_not_configured",
                            "method_not_supported",
                            "currency_not_supported",
                        },
                        s503={"service_unavailable"},
                    ),
                },
            },
        },
        "/v1/tokens/{token}": {
            "get": {
                "operationId": "getToken",
                "summary": "Read a payment through its token (the shopper's front-end)",
                "description": "No API key: possession of the token is the credential. "
                "Long-polls up to `wait` seconds while the status is `pending` or `prepaying`. "
                "Answers `Access-Control-Allow-Origin: *` and `Cache-Control: no-store`.",
                "tags": ["tokens"],
                "security": [],
                "parameters": [
                    _path("token", "The token of `POST /v1/payments`"),
                    {
                        "name": "wait",
                        "in": "query",
                        "required": False,
                        "description": "Seconds to long-poll while the credential is not ready",
                        "schema": {
                            "type": "number",
                            "minimum": 0,
                            "maximum": settings.token_max_wait_s,
                            "default": 0,
                        },
                    },
                    _TRACE,
                ],
                "responses": {
                    "200": _ok(
                        "The token", "Token", "Access-Control-Allow-Origin", "Cache-Control"
                    ),
                    **_errors(
                        400,
                        404,
                        500,
                        503,
                        s400={"parameter_invalid"},
                        s404={"token_not_found", "route_not_found"},
                    ),
                },
            }
        },
        "/v1/webhook_endpoints": {
            "post": {
                "operationId": "createWebhookEndpoint",
                "summary": "Register a webhook endpoint",
                "description": "Answers the signing `secret` once; payfront keeps it encrypted.",
                "tags": ["webhooks"],
                "security": _MERCHANT,
                "parameters": [{"$ref": "#/components/parameters/Idempotency-Key"}, _TRACE],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("WebhookEndpointCreate")}},
                },
                "responses": {
                    "201": _ok(
                        "The endpoint, with its secret (again, on a replay)",
                        "WebhookEndpoint",
                        "Idempotent-Replayed",
                    ),
                    **_errors(
                        400,
                        401,
                        409,
                        422,
                        *_COMMON,
                        s400={"malformed_json", "parameter_invalid", "invalid_request"},
                        s409={"idempotency_key_in_use"},
                    ),
                },
            }
        },
        "/callbacks/{channel}/{account}": {
            "post": {
                "operationId": "channelCallback",
                "summary": "Channel callback (channel-facing, not for merchants)",
                "description": "Verified, decrypted and cross-checked as the channel's protocol "
                "says, and answered as the channel expects: WeChat Pay `204` (acknowledged) or "
                '`500` with `{"code": "FAIL", …}` (send again); Alipay `200` `success` or '
                '`fail` (text); Stripe `200` `{"received": true}` or `400`.',
                "tags": ["channels"],
                "security": [],
                "parameters": [
                    _path("channel", "`wechatpay`, `alipay` or `stripe`"),
                    _path("account", "The channel account's id in payfront"),
                    _TRACE,
                ],
                "requestBody": callback_body,
                "responses": {
                    "200": {
                        "description": "Acknowledged (Alipay, Stripe); Alipay `fail` too",
                        "content": channel_answer,
                    },
                    "204": {"description": "Acknowledged (WeChat Pay)"},
                    "400": {
                        "description": "Refused, send again (Stripe)",
                        "content": channel_answer,
                    },
                    "404": _error(404, {"route_not_found"}),
                    "413": _error(413),
                    "500": {
                        "description": "Refused, send again (WeChat Pay's channel answer); or "
                        "the error object of an internal error",
                        "content": channel_answer,
                    },
                    "503": _error(503),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness",
                "tags": ["operations"],
                "security": [],
                "responses": {"200": _ok("Alive", "Health")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the live database and Redis answer (the shadow "
                "database is reported in `checks`; it takes only test mode down)",
                "tags": ["operations"],
                "security": [],
                "responses": {
                    "200": _ok("Ready", "Readiness"),
                    "503": _ok("Not ready; `checks` says which", "Readiness"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (see docs/operations.md)",
                "tags": ["operations"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "headers": {"Request-Id": _header("Request-Id")},
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description (OpenAPI 3.1)",
                "tags": ["operations"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/docs": {
            "get": {
                "operationId": "docs",
                "summary": "This reference, as one self-contained HTML page",
                "tags": ["operations"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "The reference page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def _webhooks() -> dict[str, Any]:
    headers = [
        ("Payfront-Signature", True, '`t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`'),
        ("Payfront-Event-Id", True, "The event's `id`: de-duplicate by it"),
        ("Payfront-Event-Type", True, "The event's `type`"),
        ("traceparent", False, "W3C trace context of the payment's trace"),
    ]
    when = {
        "payment.succeeded": "The payment is paid.",
        "payment.failed": "The channel refused the order (`status: prepay_failed`).",
        "payment.closed": "Expired unpaid, closed at the channel (`status: closed`).",
        "payment.partially_paid": "Paid less than asked; refunded or kept per your policy.",
        "payment.late_succeeded": "Paid after it was closed; refunded or held per your policy.",
        "payment.duplicate": "A second attempt of a paid trade was paid; refunded automatically.",
        "refund.succeeded": "The refund reached the shopper (`data.object` is the refund).",
        "recharge.succeeded": "A recharge was paid and its wallet credited.",
        "transfer.succeeded": "Money moved between two of your wallets.",
        "withdrawal.succeeded": "A wallet was paid out to its holder.",
        "withdrawal.failed": "A payout failed at the channel; the wallet is credited back.",
        "refund.failed": "The channel refused or gave up the refund; no money moved.",
    }
    return {
        event_type: {
            "post": {
                "operationId": f"webhook_{event_type.replace('.', '_')}",
                "summary": f"`{event_type}`: {text}",
                "description": "POSTed to each enabled webhook endpoint. Any 2xx acknowledges; "
                "otherwise retried after 1 m, 5 m, 30 m, 1 h, 2 h, 4 h, 8 h, 12 h, 24 h, 24 h. "
                "At least once: de-duplicate by the event id. Verify with "
                "`sdk.verify_webhook` (300 s tolerance).",
                "parameters": [
                    {
                        "name": name,
                        "in": "header",
                        "required": required,
                        "description": description,
                        "schema": {"type": "string"},
                    }
                    for name, required, description in headers
                ],
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref("Event")}}},
                "responses": {
                    "2XX": {"description": "Acknowledged"},
                    "default": {"description": "Not acknowledged: delivered again later"},
                },
            }
        }
        for event_type, text in when.items()
    }


def _with_test_callbacks(paths: dict[str, Any]) -> dict[str, Any]:
    """A test-mode channel account's callbacks: the same operation under ``/test``."""
    live = paths["/callbacks/{channel}/{account}"]["post"]
    paths["/test/callbacks/{channel}/{account}"] = {
        "post": live
        | {
            "operationId": "testChannelCallback",
            "summary": "Test-mode (sandbox) channel callback: applied to the shadow database",
        }
    }
    return paths


def build_spec(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway, from the pydantic models of its bodies."""
    _, definitions = models_json_schema(_MODELS, ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "payfront merchant API",
            "version": "1",
            "description": "Generated by payfront from its pydantic models at start-up; "
            "do not edit by hand. Amounts are integer minor units.",
        },
        "servers": [{"url": settings.public_base_url}],
        "tags": [
            {"name": "payments"},
            {"name": "refunds"},
            {"name": "routing"},
            {"name": "resolutions"},
            {"name": "reconciliation"},
            {"name": "wallets"},
            {"name": "tokens"},
            {"name": "balance"},
            {"name": "webhooks"},
            {"name": "channels"},
            {"name": "operations"},
        ],
        "paths": _with_test_callbacks(_operations(settings)),
        "webhooks": _webhooks(),
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer sk_test_…` (or `sk_live_…`)",
                }
            },
            "parameters": {
                "Idempotency-Key": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Same key and body: the first answer is replayed; "
                    "different body: 422; still in flight: 409.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                },
                "traceparent": {
                    "name": "traceparent",
                    "in": "header",
                    "required": False,
                    "description": "W3C trace context; an invalid one is ignored",
                    "schema": {"type": "string"},
                },
            },
            "headers": {
                "Request-Id": {
                    "description": "This request's id, in payfront's logs",
                    "schema": {"type": "string"},
                },
                "Trace-Id": {"description": "The trace id", "schema": {"type": "string"}},
                "Idempotent-Replayed": {
                    "description": "`true` on a replayed answer; absent otherwise",
                    "schema": {"type": "string", "const": "true"},
                },
                "Access-Control-Allow-Origin": {"schema": {"type": "string", "const": "*"}},
                "Cache-Control": {"schema": {"type": "string", "const": "no-store"}},
            },
        },
    }


@dataclass(frozen=True, slots=True)
class Published:
    """The spec and its page, rendered once at start-up."""

    spec_json: bytes
    page_html: bytes

    @classmethod
    def build(cls, settings: Settings) -> Published:
        spec = build_spec(settings)
        return cls(orjson.dumps(spec), render_page(spec).encode())


PUBLISHED = web.AppKey("openapi", Published)
routes = web.RouteTableDef()


def publish(app: web.Application, settings: Settings) -> None:
    app[PUBLISHED] = Published.build(settings)
    app.add_routes(routes)


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[PUBLISHED].spec_json, content_type=JSON)


@routes.get("/docs")
async def docs(request: web.Request) -> web.Response:
    return web.Response(body=request.app[PUBLISHED].page_html, content_type="text/html")
