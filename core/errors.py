"""payfront's one error hierarchy; the gateway renders each as one JSON error object."""

from __future__ import annotations


class PayfrontError(Exception):
    """Base of every error a caller may see. ``type`` and ``code`` are documented API."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param


class InvalidRequest(PayfrontError):
    pass


class MalformedBody(PayfrontError):
    code = "malformed_json"


class BodyTooLarge(PayfrontError):
    status = 413
    code = "body_too_large"


class AuthenticationFailed(PayfrontError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class NotFound(PayfrontError):
    status = 404
    type = "not_found_error"
    code = "resource_missing"


class Conflict(PayfrontError):
    status = 409
    type = "conflict_error"
    code = "conflict"


class IdempotencyKeyInUse(PayfrontError):
    status = 409
    type = "idempotency_error"
    code = "idempotency_key_in_use"


class IdempotencyKeyReused(PayfrontError):
    status = 422
    type = "idempotency_error"
    code = "idempotency_key_reused"


class ServiceUnavailable(PayfrontError):
    status = 503
    type = "service_unavailable_error"
    code = "service_unavailable"


class StaleState(Exception):
    """A compare-and-set found the row in another state or version: someone else moved it."""
