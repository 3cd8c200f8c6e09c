"""One JSON error object for every error: ``{"error": {type, code, message, param, ...}}``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
import structlog
from aiohttp import web
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from core import context, ids
from core.errors import BodyTooLarge, PayfrontError, ServiceUnavailable

log = structlog.get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    404: ("not_found_error", "route_not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: (BodyTooLarge.type, BodyTooLarge.code),
}


def error_response(
    status: int, type_: str, code: str, message: str, request_id: str, param: str | None = None
) -> web.Response:
    body = {
        "error": {
            "type": type_,
            "code": code,
            "message": message,
            "param": param,
            "request_id": request_id,
        }
    }
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"Request-Id": request_id},
    )


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gives each request an id (in logs and the ``Request-Id`` header) and maps errors."""
    request_id = ids.new_request_id()
    context.clear()
    trace_id = context.bind_trace(context.parse_traceparent(request.headers.get("traceparent")))
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except PayfrontError as exc:
        response = error_response(
            exc.status, exc.type, exc.code, exc.message, request_id, exc.param
        )
        if exc.status == 429:
            response.headers["Retry-After"] = "1"
        return response
    except (OperationalError, InterfaceError, OSError, SQLAlchemyTimeoutError) as exc:
        # The database (or the network to it) is down: say so at once; the one transaction
        # of the request either committed or left nothing behind.
        log.error("request.store_unavailable", error=type(exc).__name__)
        unavailable = ServiceUnavailable("the payment store is unavailable; retry shortly")
        return error_response(
            unavailable.status, unavailable.type, unavailable.code, unavailable.message, request_id
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        type_, code = _HTTP_ERRORS.get(exc.status, ("invalid_request_error", "http_error"))
        return error_response(exc.status, type_, code, exc.reason, request_id)
    except Exception:
        log.exception("request.failed", path=request.path)
        return error_response(
            500, "api_error", "internal_error", "an internal error occurred", request_id
        )
    response.headers["Request-Id"] = request_id
    response.headers["Trace-Id"] = trace_id
    return response
