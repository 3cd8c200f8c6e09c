"""The blocking payfront client: sends what ``sdk.protocol`` builds over an ``httpx.Client``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import TracebackType
from typing import Self, TypeVar

import httpx

from sdk.models import Balance, Payment, Refund, Settlement, Token, WebhookEndpoint
from sdk.protocol import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    ApiCall,
    CredentialWait,
    RequestBuilder,
)
from sdk.transport import build_http_request, is_retryable

ModelT = TypeVar("ModelT")


class PayfrontClient:
    """Synchronous client for the payfront merchant API.

    Use it as a context manager, or call :meth:`close`. A caller-supplied ``http_client`` is
    used as is (its own timeout applies except on long-polls) and is not closed by the SDK.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._builder = RequestBuilder(api_key, base_url)
        self._timeout = timeout
        self._owns_http_client = http_client is None
        self._http = http_client if http_client is not None else httpx.Client(timeout=timeout)

    def __repr__(self) -> str:
        return f"PayfrontClient(base_url={self._builder.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool, unless the caller supplied (and so owns) it."""
        if self._owns_http_client:
            self._http.close()

    def _execute(self, call: ApiCall[ModelT]) -> ModelT:
        http_request = build_http_request(self._http, call.request, self._timeout)
        attempt = 1
        while True:
            try:
                response = self._http.send(http_request)
            except httpx.TransportError as exc:
                if attempt < MAX_ATTEMPTS and is_retryable(exc):
                    attempt += 1
                    continue
                raise call.connection_error(exc) from exc
            return call.handle_response(response.status_code, response.headers, response.content)

    def create_payment(
        self,
        *,
        amount: int,
        currency: str,
        merchant_order_no: str,
        description: str,
        channel: str | None = "wechatpay",
        method: str | None = "native",
        expires_in: int | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Create a payment and return it, usually still ``pending``.

        ``amount`` is in minor units (fen for CNY). Without ``idempotency_key`` a UUID4 key is
        generated; the request is retried once, with the same key, after a connection error or
        timeout. A failed call's key is on the raised error as ``idempotency_key``.
        ``channel=None`` lets the merchant's routing rules choose (``method``: a kind or None).
        """
        return self._execute(
            self._builder.create_payment(
                amount=amount,
                currency=currency,
                merchant_order_no=merchant_order_no,
                description=description,
                channel=channel,
                method=method,
                expires_in=expires_in,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
        )

    def create_refund(
        self,
        pay_no: str,
        *,
        amount: int | None = None,
        reason: str | None = None,
        merchant_refund_no: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Refund:
        """Refund ``amount`` minor units of a paid payment (all that is left without it).

        Answers at once with the refund ``pending``; ``refund.succeeded`` or ``refund.failed``
        follows as a webhook. Idempotency keys work as for :meth:`create_payment`.
        """
        return self._execute(
            self._builder.create_refund(
                pay_no,
                amount=amount,
                reason=reason,
                merchant_refund_no=merchant_refund_no,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
        )

    def get_refund(self, refund_no: str) -> Refund:
        """Fetch one of this merchant's refunds."""
        return self._execute(self._builder.get_refund(refund_no))

    def list_refunds(self, pay_no: str) -> list[Refund]:
        """A payment's refunds, oldest first."""
        return self._execute(self._builder.list_refunds(pay_no))

    def create_webhook_endpoint(self, url: str) -> WebhookEndpoint:
        """Register ``url`` for this merchant's events; keep the returned ``secret``."""
        return self._execute(self._builder.create_webhook_endpoint(url))

    def get_payment(self, pay_no: str) -> Payment:
        """Fetch one of this merchant's payments by ``pay_no``."""
        return self._execute(self._builder.get_payment(pay_no))

    def get_balance(self) -> Balance:
        """This merchant's balance: pending and available, by currency, in minor units."""
        return self._execute(self._builder.get_balance())

    def get_settlement(self, day: date, currency: str) -> Settlement:
        """What ``day`` (Asia/Shanghai) collected, refunded and paid in fees in ``currency``,
        and what it makes payable."""
        return self._execute(self._builder.get_settlement(day, currency))

    def get_token(self, token: str, *, wait: float = 0) -> Token:
        """Fetch a token's view; with ``wait`` (≤ 30 s) the server holds it while pending."""
        return self._execute(self._builder.get_token(token, wait=wait))

    def wait_for_credential(self, token: str, *, timeout: float = 10.0) -> Token:
        """Long-poll until the token has a credential or a failure; return that token.

        Raises ``PayfrontTimeout`` if it is still pending/prepaying after ``timeout`` seconds.
        """
        credential_wait = CredentialWait(token, timeout)
        while True:
            polled = self.get_token(token, wait=credential_wait.next_wait())
            outcome = credential_wait.outcome(polled)
            if outcome is not None:
                return outcome
