"""Exceptions the payfront SDK raises: one class per API error ``type``, plus client-side ones."""

from __future__ import annotations

from collections.abc import Mapping


class PayfrontError(Exception):
    """Base of every error the SDK raises.

    Fields mirror the API's error object; they are ``None`` for errors that never reached the
    server (connection failures, webhook verification). ``idempotency_key`` is the key a failed
    ``create_payment`` call used, so the caller can replay it safely even when the SDK generated it.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.idempotency_key: str | None = None

    def __str__(self) -> str:
        details = [
            f"{name}={value}"
            for name, value in (
                ("status", self.status),
                ("code", self.code),
                ("param", self.param),
                ("request_id", self.request_id),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(details)})" if details else self.message


class InvalidRequestError(PayfrontError):
    """The request was malformed or failed validation (400, 413, 422)."""


class AuthenticationError(PayfrontError):
    """The API key is missing, malformed or unknown (401)."""


class IdempotencyError(PayfrontError):
    """The idempotency key is in use by a request in flight, or was reused with other parameters."""


class ConflictError(PayfrontError):
    """The request conflicts with existing state, e.g. a taken ``merchant_order_no`` (409)."""


class NotFoundError(PayfrontError):
    """The object does not exist or belongs to another merchant (404)."""


class RateLimitError(PayfrontError):
    """Too many requests; back off before retrying (429)."""


class APIError(PayfrontError):
    """The server failed to handle the request (5xx)."""


class ServiceUnavailableError(APIError):
    """The server is temporarily unable to take requests (503)."""


class APIConnectionError(PayfrontError):
    """The request never got an HTTP response: connection refused, reset, or timed out."""


class PayfrontTimeout(PayfrontError):
    """A wait (such as ``wait_for_credential``) ran past its deadline without an outcome."""


class SignatureVerificationError(PayfrontError):
    """A webhook's ``Payfront-Signature`` header is malformed, stale or does not match."""


ERROR_CLASS_BY_TYPE: Mapping[str, type[PayfrontError]] = {
    "invalid_request_error": InvalidRequestError,
    "authentication_error": AuthenticationError,
    "idempotency_error": IdempotencyError,
    "conflict_error": ConflictError,
    "not_found_error": NotFoundError,
    "rate_limit_error": RateLimitError,
    "api_error": APIError,
    "service_unavailable_error": ServiceUnavailableError,
}

_ERROR_CLASS_BY_STATUS: Mapping[int, type[PayfrontError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def error_class_for(error_type: str | None, status: int) -> type[PayfrontError]:
    """Pick the exception class for an API error: by its ``type``, else by the HTTP status."""
    if error_type is not None and error_type in ERROR_CLASS_BY_TYPE:
        return ERROR_CLASS_BY_TYPE[error_type]
    if status in _ERROR_CLASS_BY_STATUS:
        return _ERROR_CLASS_BY_STATUS[status]
    if 400 <= status < 500:
        return InvalidRequestError
    return APIError
