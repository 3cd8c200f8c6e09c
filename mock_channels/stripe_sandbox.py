"""The Stripe emulator's behaviour apart from HTTP routing: accounts and API-key
authentication, idempotency keys, fault injection, the shopper's moves, refunds settled later,
and events signed and delivered to each account's webhook endpoint on Stripe's retry
schedule."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from mock_channels.callbacks import CallbackAttempt, CallbackJob
from mock_channels.common import SandboxCore
from mock_channels.config import SandboxConfig
from mock_channels.stripe_balance import Balance
from mock_channels.stripe_errors import (
    StripeApiError,
    api_error,
    invalid_api_key,
    no_access_to_account,
    no_api_key,
    rate_limited,
    resource_missing,
)
from mock_channels.stripe_idempotency import KEY_TTL_S, IdempotencyKeys
from mock_channels.stripe_models import PayIntent, RegisterAccount, RollWebhookSecret, SettleRefund
from mock_channels.stripe_payments import Payments, RequestMeta
from mock_channels.stripe_payouts import Transfers
from mock_channels.stripe_refund_state import IllegalRefundTransition, Refund
from mock_channels.stripe_refunds import Refunds
from mock_channels.stripe_state import (
    Account,
    Book,
    Event,
    IllegalTransition,
    IntentStatus,
    PaymentIntent,
    WebhookSecret,
    new_id,
)
from mock_channels.stripe_store import StripeStore
from mock_channels.stripe_webhooks import STRIPE_RETRY_DELAYS_S, delivery_headers

logger = logging.getLogger(__name__)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


class StripeSandbox(SandboxCore):
    def __init__(self, config: SandboxConfig, rng: random.Random) -> None:
        super().__init__(config, rng)
        self.store = StripeStore(config.state_dir)
        self.accounts: dict[str, Account] = {}
        self.book = Book()
        self.balance = Balance(self.book, self.accounts)
        self.payments = Payments(self.book, self.emit, self.balance.charge_succeeded)
        self.refunds = Refunds(self.book, self.accounts, self.balance, self.emit, self.later)
        self.transfers = Transfers(self.book, self.emit)
        self._timers: set[asyncio.Task[None]] = set()
        # Stripe keeps keys 24 hours; the sandbox's clock runs time_scale times as fast.
        self.idempotency = IdempotencyKeys(ttl_s=max(KEY_TTL_S * config.time_scale, 1.0))
        self._accounts_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, session: aiohttp.ClientSession) -> None:
        records = await asyncio.to_thread(self.store.load_accounts)
        # Filled in place: the balance and the refunds hold this very dict.
        self.accounts.update((a.account_id, a) for a in map(Account.from_record, records))
        self.callbacks.attach_session(session)

    async def stop(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        for timer in list(self._timers):
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await super().stop()

    def later(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay_s`` seconds of sandbox time (scaled by time_scale)."""

        async def wait_then_act() -> None:
            await asyncio.sleep(delay_s * self.config.time_scale)
            try:
                action()
            except Exception:
                logger.exception("Stripe sandbox: a delayed action failed")

        timer = asyncio.get_running_loop().create_task(wait_then_act())
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)

    # -- authentication --------------------------------------------------------------------

    def authenticate(self, authorization: str | None, stripe_account: str | None) -> Account:
        """``Authorization: Bearer sk_…`` (or Basic with the key as user name, as curl -u
        sends it); ``Stripe-Account`` may name only the key's own account (no Connect)."""
        if not authorization or not authorization.strip():
            raise no_api_key()
        scheme, _, credential = authorization.strip().partition(" ")
        key = credential.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(key, validate=True).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                raise invalid_api_key("") from None
        elif scheme.lower() != "bearer":
            raise no_api_key()
        account = next((a for a in self.accounts.values() if a.secret_key == key), None)
        if account is None:
            raise invalid_api_key(key)
        if stripe_account and stripe_account != account.account_id:
            raise no_access_to_account(stripe_account)
        return account

    # -- accounts --------------------------------------------------------------------------

    async def register_account(self, request: RegisterAccount) -> dict[str, Any]:
        async with self._accounts_lock:
            account = self._find_or_create(request)
            if request.webhook_url is not None:
                account.webhook_url = request.webhook_url
            if request.enabled_events is not None:
                account.enabled_events = list(request.enabled_events)
            if request.fee_percent is not None:
                account.fee_percent = request.fee_percent
            if request.fee_fixed is not None:
                account.fee_fixed = request.fee_fixed
            if request.refund_settlement is not None:
                account.refund_settlement = request.refund_settlement
            if request.webhook_secret is not None and request.webhook_secret != (
                account.webhook_secret
            ):
                account.webhook_secrets = [WebhookSecret(request.webhook_secret)]
            self.accounts[account.account_id] = account
            await self._save_accounts()
        return account.public_view()

    def _find_or_create(self, request: RegisterAccount) -> Account:
        by_key = next(
            (a for a in self.accounts.values() if a.secret_key == request.secret_key), None
        )
        by_id = self.accounts.get(request.account_id or "")
        if by_key is not None:
            if request.account_id is not None and request.account_id != by_key.account_id:
                raise StripeApiError(409, "this secret_key belongs to another account")
            return by_key
        if by_id is not None and request.secret_key is not None:
            raise StripeApiError(409, "this account_id is registered with another secret_key")
        if by_id is not None:
            return by_id
        return Account(
            account_id=request.account_id or new_id("acct_1", 16),
            secret_key=request.secret_key or new_id("sk_test_51", 96),
            webhook_secrets=[WebhookSecret(request.webhook_secret or new_id("whsec_", 32))],
        )

    async def roll_webhook_secret(
        self, account_id: str, request: RollWebhookSecret
    ) -> dict[str, Any]:
        async with self._accounts_lock:
            account = self._account(account_id)
            expires_at = time.time() + request.keep_previous_s * self.config.time_scale
            previous = [
                WebhookSecret(entry.secret, entry.expires_at or expires_at)
                for entry in account.webhook_secrets
            ]
            account.webhook_secrets = [WebhookSecret(new_id("whsec_", 32)), *previous]
            await self._save_accounts()
        return account.public_view()

    async def _save_accounts(self) -> None:
        records = [a.to_record() for a in self.accounts.values()]
        await asyncio.to_thread(self.store.save_accounts, records)

    def _account(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise resource_missing("account", account_id, "account")
        return account

    # -- faults ----------------------------------------------------------------------------

    # faults_before_acting (SandboxCore): latency, then a 429 or 500 refused before the
    # endpoint runs (so not saved for the idempotency key: a repeat is executed).

    def rate_limited(self) -> Exception:
        return rate_limited()

    def system_error(self) -> Exception:
        return api_error()

    # -- the shopper (sandbox admin) -------------------------------------------------------

    def admin_intent(self, intent_id: str) -> PaymentIntent:
        intent = self.book.intent(None, intent_id)
        if intent is None:
            raise resource_missing("payment_intent", intent_id, "intent")
        return intent

    def pay(self, intent_id: str, request: PayIntent) -> dict[str, Any]:
        intent = self.admin_intent(intent_id)
        if intent.status is IntentStatus.SUCCEEDED:
            if request.again and request.outcome == "success" and intent.succeeded_event_id:
                self._deliver(self.book.events[intent.succeeded_event_id])
                return self.intent_view(intent)
            raise StripeApiError(
                409,
                "This PaymentIntent has already succeeded; send again=true to re-send its "
                "payment_intent.succeeded event.",
                code="payment_intent_unexpected_state",
            )
        try:
            self.payments.shopper_pays(
                intent,
                request.outcome,
                payment_method=request.payment_method,
                decline_code=request.decline_code,
                amount_received=request.amount_received,
            )
        except IllegalTransition as exc:
            raise StripeApiError(409, str(exc), code="payment_intent_unexpected_state") from None
        return self.intent_view(intent)

    def settle_refund(self, refund_id: str, request: SettleRefund) -> dict[str, Any]:
        refund = self.admin_refund(refund_id)
        failure = request.failure_reason if request.outcome == "failed" else None
        try:
            self.refunds.settle(refund, failure)
        except IllegalRefundTransition as exc:
            raise StripeApiError(409, str(exc), code="refund_unexpected_state") from None
        return refund.to_api()

    def admin_refund(self, refund_id: str) -> Refund:
        refund = self.book.refund(None, refund_id)
        if refund is None:
            raise resource_missing("refund", refund_id, "refund")
        return refund

    def find_intents(self, account_id: str | None, pay_no: str | None) -> list[dict[str, Any]]:
        """Intents (admin views), oldest first, of one account and/or one ``metadata[pay_no]``."""
        return [
            self.intent_view(intent)
            for intent in self.book.intents.values()
            if (account_id is None or intent.account_id == account_id)
            and (pay_no is None or intent.metadata.get("pay_no") == pay_no)
        ]

    def intent_view(self, intent: PaymentIntent) -> dict[str, Any]:
        """Everything the sandbox knows about one intent, for ``GET /sandbox/stripe/…``."""
        charges = [c.to_api() for c in self.book.charges.values() if c.payment_intent == intent.id]
        events = [
            self.book.events[event_id].admin_view()
            for event_id in intent.event_ids
            if event_id in self.book.events
        ]
        return {
            "account_id": intent.account_id,
            "payment_intent": self.payments.render(intent, frozenset({"latest_charge"})),
            "charges": charges,
            "refunds": self.refunds.views(intent.id),
            "events": events,
        }

    # -- events ----------------------------------------------------------------------------

    def emit(
        self, account_id: str, event_type: str, snapshot: dict[str, Any], meta: RequestMeta
    ) -> Event:
        event = Event(
            id=new_id("evt_3"),
            account_id=account_id,
            type=event_type,
            data_object=snapshot,
            request_id=meta.request_id,
            idempotency_key=meta.idempotency_key,
        )
        self.book.events[event.id] = event
        account = self.accounts.get(account_id)
        if account is not None and account.webhook_url and account.wants(event_type):
            self._deliver(event)
        return event

    def _deliver(self, event: Event) -> None:
        account = self.accounts[event.account_id]
        if not account.webhook_url:
            return
        plan = self.faults.plan_for(account.account_id)
        if self.faults.strikes(plan.lose_callbacks):
            event.deliveries_lost += 1
            return

        def record(attempt: CallbackAttempt) -> None:
            event.delivery_attempts.append(
                {
                    "attempt": attempt.attempt,
                    "at": _iso(attempt.at),
                    "status": attempt.status,
                    "error": attempt.error,
                    "duplicate": attempt.duplicate,
                }
            )
            if attempt.acknowledged:
                event.delivered = True

        body = orjson.dumps(event.to_api())

        def headers_for(body: bytes) -> dict[str, str]:
            # Signed afresh for each attempt, with the secrets valid at that moment.
            now = time.time()
            current = self.accounts.get(event.account_id, account)
            return delivery_headers(current.signing_secrets(now), int(now), body)

        self.callbacks.start(
            CallbackJob(
                url=account.webhook_url,
                body_for=lambda: body,
                headers_for=headers_for,
                record=record,
                retry_delays_s=STRIPE_RETRY_DELAYS_S,
                duplicate=plan.duplicate_callbacks,
            )
        )


STRIPE_SANDBOX = web.AppKey("stripe_sandbox", StripeSandbox)
