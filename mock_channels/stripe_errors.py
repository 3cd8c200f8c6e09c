"""Stripe's error answers: an HTTP status plus ``{"error": {type, code?, message, param?, …}}``
(docs.stripe.com/api/errors), with the messages Stripe writes for the cases the emulator
produces, and the one JSON helper every emulator route answers through."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

INVALID_REQUEST = "invalid_request_error"


class StripeApiError(Exception):
    """A Stripe-style error answer.

    ``saved`` says whether Stripe's idempotency layer keeps this answer for its key: only
    answers of an endpoint that began executing are kept (docs.stripe.com/idempotency:
    parameters failing validation, or a request conflicting with a concurrent one, are not).
    ``should_retry`` becomes the ``Stripe-Should-Retry`` header when set.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = INVALID_REQUEST,
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
        saved: bool = False,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(f"{status} {type_} {code}: {message}")
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.extra = extra or {}
        self.saved = saved
        self.should_retry = should_retry

    def payload(self) -> dict[str, Any]:
        error: dict[str, Any] = {}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error["message"] = self.message
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        error["type"] = self.type
        return {"error": error}

    def headers(self) -> dict[str, str]:
        if self.should_retry is None:
            return {}
        return {"Stripe-Should-Retry": "true" if self.should_retry else "false"}

    def response(self) -> web.Response:
        return json_response(self.status, self.payload(), self.headers())


def json_response(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(payload),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


# -- the errors, as Stripe words them -------------------------------------------------------


def no_api_key() -> StripeApiError:
    return StripeApiError(
        401,
        "You did not provide an API key. You need to provide your API key in the Authorization "
        "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
        "https://stripe.com/docs/api#authentication for details, or we can help at "
        "https://support.stripe.com/.",
    )


def invalid_api_key(key: str) -> StripeApiError:
    masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "****"
    return StripeApiError(401, f"Invalid API Key provided: {masked}")


def no_access_to_account(account_id: str) -> StripeApiError:
    return StripeApiError(
        403,
        f"The provided key does not have access to account '{account_id}' "
        "(or that account does not exist). Application access may have been revoked.",
        code="account_invalid",
    )


def unrecognized_url(method: str, path: str) -> StripeApiError:
    return StripeApiError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
    )


def resource_missing(kind: str, object_id: str, param: str) -> StripeApiError:
    return StripeApiError(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def parameter_missing(param: str) -> StripeApiError:
    return StripeApiError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def parameter_unknown(param: str) -> StripeApiError:
    return StripeApiError(
        400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param
    )


def parameter_invalid(param: str, message: str, code: str | None = None) -> StripeApiError:
    return StripeApiError(400, message, code=code, param=param)


def idempotency_mismatch(key: str) -> StripeApiError:
    return StripeApiError(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
        type_="idempotency_error",
    )


def idempotency_key_in_use(key: str) -> StripeApiError:
    return StripeApiError(
        409,
        "There is currently another in-progress request using this Idempotent Key (that "
        "probably means you submitted twice, and the other request is still going through): "
        f"{key}. Please try again later.",
        code="idempotency_key_in_use",
    )


def rate_limited() -> StripeApiError:
    return StripeApiError(
        429,
        "Request rate limit exceeded. You can learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        code="rate_limit",
    )


def api_error() -> StripeApiError:
    return StripeApiError(
        500, "An unknown error occurred while processing your request.", type_="api_error"
    )
