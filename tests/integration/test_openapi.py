"""The OpenAPI description against the running gateway: every route documented, real answers
valid against their response schemas, and schemathesis finding no server error and no
undocumented answer."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import BaseModel
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from gateway import openapi_models as models
from gateway.app import create_app
from gateway.openapi import build_spec
from tests.conftest import Stack, make_settings

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
MAX_EXAMPLES = int(os.environ.get("PAYFRONT_OPENAPI_EXAMPLES", "25"))  # per operation; < 60 s


def test_every_route_is_in_the_spec() -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", "redis://127.0.0.1:6379/9")
    app = create_app(settings)  # no start-up: nothing connects
    spec = build_spec(settings)
    registered = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {(method, path) for path, item in spec["paths"].items() for method in item}
    assert registered == documented
    assert set(spec["webhooks"]) == {
        "payment.succeeded",
        "payment.failed",
        "payment.closed",
        "payment.partially_paid",
        "payment.late_succeeded",
        "payment.duplicate",
        "refund.succeeded",
        "recharge.succeeded",
        "transfer.succeeded",
        "withdrawal.succeeded",
        "withdrawal.failed",
        "refund.failed",
    }
    for item in spec["webhooks"].values():
        headers = {parameter["name"] for parameter in item["post"]["parameters"]}
        assert {"Payfront-Signature", "Payfront-Event-Id", "Payfront-Event-Type"} <= headers


def _validator(spec: dict[str, Any], path: str, method: str, status: int) -> Any:
    response = spec["paths"][path][method]["responses"][str(status)]
    schema = {**response["content"]["application/json"]["schema"], **_root(spec)}
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def _root(spec: dict[str, Any]) -> dict[str, Any]:
    return {"components": {"schemas": spec["components"]["schemas"]}}


def _holds(
    spec: dict[str, Any], path: str, method: str, answer: httpx.Response, model: type[BaseModel]
) -> dict[str, Any]:
    """The answer is valid against the spec's schema for its status, and against ``model``."""
    body = answer.json()
    errors = [
        e.message for e in _validator(spec, path, method, answer.status_code).iter_errors(body)
    ]
    assert not errors, (path, method, answer.status_code, body, errors)
    model.model_validate(body)
    return dict(body)


@SQLITE_ONLY
async def test_spec_and_page_are_served(stack: Stack) -> None:
    spec_answer = await stack.http.get(f"{stack.gateway_url}/openapi.json")
    assert spec_answer.status_code == 200
    spec = spec_answer.json()
    assert spec == json.loads(json.dumps(build_spec(stack.settings)))
    assert spec["openapi"].startswith("3.1")
    page = await stack.http.get(f"{stack.gateway_url}/docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.text
    # Self-contained: no script, stylesheet or font fetched from anywhere.
    assert "<script" not in text and "<link" not in text and "@import" not in text
    for path, item in spec["paths"].items():
        for op in item.values():
            assert f'id="{op["operationId"]}"' in text, path
            for status in op["responses"]:
                assert f"<b>{status}</b>" in text
    for event_type in spec["webhooks"]:
        assert event_type in text
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name}"' in text


async def test_real_answers_match_the_response_schemas(stack: Stack) -> None:
    spec = build_spec(stack.settings)
    base = stack.gateway_url
    payments = f"{base}/v1/payments"
    body = stack.payment_body()
    headers = stack.auth(**{"Idempotency-Key": "openapi-1"})

    created = await stack.http.post(payments, json=body, headers=headers)
    assert created.status_code == 201
    payment = _holds(spec, "/v1/payments", "post", created, models.Payment)
    replayed = await stack.http.post(payments, json=body, headers=headers)
    assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    _holds(spec, "/v1/payments", "post", replayed, models.Payment)

    errors = [
        (await stack.http.post(payments, content=b"[1]", headers=stack.auth()), 400),
        (
            await stack.http.post(
                payments, json=stack.payment_body(amount=0), headers=stack.auth()
            ),
            400,
        ),
        (
            await stack.http.post(
                payments, json=stack.payment_body(channel="x"), headers=stack.auth()
            ),
            400,
        ),
        (await stack.http.post(payments, json=body), 401),
        (await stack.http.post(payments, json=body, headers=stack.auth()), 409),
        (await stack.http.post(payments, json={**body, "amount": 7}, headers=headers), 422),
        (await stack.http.post(payments, content=b" " * 70_000, headers=stack.auth()), 413),
    ]
    for answer, status in errors:
        assert answer.status_code == status, answer.text
        error = _holds(spec, "/v1/payments", "post", answer, models.Error)
        assert error["error"]["request_id"] == answer.headers["Request-Id"]

    missing = await stack.http.get(f"{payments}/pay_missing", headers=stack.auth())
    assert missing.status_code == 404
    _holds(spec, "/v1/payments/{pay_no}", "get", missing, models.Error)
    no_token = await stack.http.get(f"{base}/v1/tokens/tok_missing")
    _holds(spec, "/v1/tokens/{token}", "get", no_token, models.Error)
    bad_wait = await stack.http.get(f"{base}/v1/tokens/{payment['token']}", params={"wait": 31})
    assert bad_wait.status_code == 400
    _holds(spec, "/v1/tokens/{token}", "get", bad_wait, models.Error)

    token = await stack.http.get(f"{base}/v1/tokens/{payment['token']}", params={"wait": 5})
    assert token.status_code == 200
    assert _holds(spec, "/v1/tokens/{token}", "get", token, models.Token)["credential"]
    paid_answer = await stack.shopper_pays(payment["pay_no"])
    assert paid_answer.status_code < 300, paid_answer.text
    await stack.wait_status(payment["pay_no"], "paid")
    read = await stack.http.get(f"{payments}/{payment['pay_no']}", headers=stack.auth())
    assert _holds(spec, "/v1/payments/{pay_no}", "get", read, models.Payment)["paid_at"]

    await stack.inbox.wait_for(1)
    hook_headers, hook_body = stack.inbox.received[0]
    event_schema = {"$ref": "#/components/schemas/Event", **_root(spec)}
    event = json.loads(hook_body)
    assert jsonschema_rs.Draft202012Validator(event_schema, validate_formats=True).is_valid(event)
    models.Event.model_validate(event)
    post = spec["webhooks"][event["type"]]["post"]
    for parameter in post["parameters"]:
        if parameter["required"]:
            assert parameter["name"] in hook_headers

    endpoint = await stack.http.post(
        f"{base}/v1/webhook_endpoints",
        json={"url": "https://example.com/hook"},
        headers=stack.auth(),
    )
    assert endpoint.status_code == 201
    _holds(spec, "/v1/webhook_endpoints", "post", endpoint, models.WebhookEndpoint)
    _holds(spec, "/healthz", "get", await stack.http.get(f"{base}/healthz"), models.Health)
    _holds(spec, "/readyz", "get", await stack.http.get(f"{base}/readyz"), models.Readiness)


@dataclass
class Findings:
    """Schemathesis failures, one per operation and kind, each with a request to replay."""

    found: dict[tuple[str, str], str] = field(default_factory=dict)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    def report(self) -> str:
        return "\n\n".join(f"{label}: {detail}" for (label, _), detail in self.found.items())


def _payable(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with ``PaymentCreate`` narrowed to the channel the merchant has, so
    that fuzzing reaches created payments, replays and conflicts, not only refusals."""
    narrowed = copy.deepcopy(spec)
    fields = narrowed["components"]["schemas"]["PaymentCreate"]["properties"]
    # The stack's merchant has a WeChat Pay account only.
    fields["channel"] = {"const": "wechatpay"}
    fields["method"] = {"const": "native"}
    fields["currency"] = {"const": "CNY"}
    return narrowed


def _fuzz(spec: dict[str, Any], base_url: str, api_key: str) -> Findings:
    """Runs in a thread: the gateway keeps serving on the test's event loop meanwhile."""
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]
    auth = {"Authorization": f"Bearer {api_key}"}
    findings = Findings()
    runs = [(schemathesis.openapi.from_dict(spec), mode) for mode in GenerationMode]
    payable = schemathesis.openapi.from_dict(_payable(spec)).find_operation_by_label(
        "POST /v1/payments"
    )
    assert payable is not None
    operations: list[tuple[Any, GenerationMode]] = [(payable, GenerationMode.POSITIVE)]
    for schema, mode in runs:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # the spec is valid
            operations.append((result.ok(), mode))
    for operation, mode in operations:
        label = operation.label

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            try:
                response = case.call(base_url=base_url, headers=auth)
                findings.statuses[(label, response.status_code)] += 1  # noqa: B023 - run() below
                case.validate_response(response, checks=checks, headers=auth)
            except Exception as exc:
                message = str(exc).strip()
                first_line = message.splitlines()[0] if message else type(exc).__name__
                key = (label, first_line)  # noqa: B023 - run() below
                curl = case.as_curl_command(headers=auth, base_url=base_url)
                findings.found.setdefault(key, f"{message}\n  request: {curl}")

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, label  # nothing to make invalid
    return findings


@SQLITE_ONLY
async def test_schemathesis_finds_no_server_error_or_undocumented_answer(stack: Stack) -> None:
    spec = build_spec(stack.settings)
    spec["servers"] = [{"url": stack.gateway_url}]
    started = time.monotonic()
    findings = await asyncio.to_thread(_fuzz, spec, stack.gateway_url, stack.api_key)
    assert sum(findings.statuses.values()) > 100
    assert not findings.found, findings.report() + f"\n\nanswers: {findings.statuses}"
    assert time.monotonic() - started < 60
