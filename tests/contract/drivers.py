"""The per-channel drivers of the contract suite: what differs between channels (how an
account is provisioned, how the sandbox's shopper pays, which documented answers to expect),
so that the contract's test functions never ask for a channel by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any, ClassVar

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.base import Channel, CreateOrder, HttpResponse, PrepayResult
from channels.errors import ChannelAlreadyPaid, ChannelError, ChannelUnknownOutcome
from channels.registry import build_channel
from core import ids
from core.merchants import load_channel_account
from core.provision import ensure_merchant
from core.store.db import Database
from core.vault import Vault, new_master_key
from payfront.devsetup import provision_wechat_sandbox_account
from payfront.devsetup_alipay import provision_alipay_sandbox_account
from payfront.devsetup_stripe import provision_stripe_sandbox_account
from tests.interop.harness import BackgroundSandbox, Delivery

CHANNELS = ("wechatpay", "alipay", "stripe")
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
MERCHANT_ID = "mch_contract"


# -- drivers ---------------------------------------------------------------------------------


@dataclass
class Driver:
    """What differs between channels; the contract's test functions only ask this object."""

    name: ClassVar[str]
    method: ClassVar[str]
    currency: ClassVar[str]
    # Whether an order the shopper has not opened yet exists at the channel (an Alipay QR
    # trade does not until the buyer scans: query and close answer ACQ.TRADE_NOT_EXIST).
    unopened_order_exists: ClassVar[bool] = True
    # What closing a paid order raises (ChannelAlreadyPaid is a ChannelFatal).
    close_paid_error: ClassVar[type[ChannelError]] = ChannelAlreadyPaid
    # Whether the channel signs its API answers (Stripe's integrity is TLS's).
    answers_signed: ClassVar[bool] = True
    # The channel's calendar for statements.
    statement_tz: ClassVar[tzinfo] = BEIJING
    # The credentials key holding the channel's public key (for the wrong-key forgery).
    channel_key_credential: ClassVar[str | None] = None

    sandbox: BackgroundSandbox
    credentials: dict[str, str]
    # Every callback received so far, in arrival order (the inbox is drained into it).
    deliveries: list[Delivery] = field(default_factory=list)
    # The account's adapter, built once (parsing its keys is the slow part).
    channel: Channel = field(init=False)

    def __post_init__(self) -> None:
        self.channel = self.adapter()

    @property
    def notify_url(self) -> str:
        return f"{self.sandbox.notify_url}/{self.name}"

    @property
    def account_key(self) -> str:
        """The id the sandbox keys this account's faults by."""
        raise NotImplementedError

    @property
    def faults_path(self) -> str:
        return f"/sandbox/{self.name}/faults/{self.account_key}"

    @classmethod
    async def provision_account(
        cls, db: Database, vault: Vault, *, sandbox_url: str, account_id: str, notify_url: str
    ) -> None:
        """Register an account at the sandbox and store it as the merchant's channel account
        ``account_id`` (callbacks not sent per order go to ``notify_url``)."""
        raise NotImplementedError

    def adapter(self, credentials: Mapping[str, str] | None = None) -> Channel:
        return build_channel(self.name, credentials or self.credentials)

    def wrong_key_credentials(self) -> dict[str, str] | None:
        """The account's credentials with the channel's public key swapped for another one
        (answers then no longer verify), or None where answers are not signed."""
        if self.channel_key_credential is None:
            return None
        return {**self.credentials, self.channel_key_credential: _other_public_key_pem()}

    def statement_day(self, now: datetime) -> date:
        return now.astimezone(self.statement_tz).date()

    def is_documented_ack(self, ack: HttpResponse) -> bool:
        raise NotImplementedError

    async def open(
        self, admin: httpx.AsyncClient, order: CreateOrder, prepay: PrepayResult
    ) -> None:
        """The shopper opens the order without paying (scans the QR code); a no-op where the
        order exists from its creation on."""

    async def pay(self, admin: httpx.AsyncClient, order: CreateOrder, prepay: PrepayResult) -> None:
        raise NotImplementedError

    async def payment_callback_attempts(
        self, admin: httpx.AsyncClient, order: CreateOrder, prepay: PrepayResult
    ) -> list[dict[str, Any]]:
        """The sandbox's record of its payment callback's delivery attempts, each with
        ``error`` None exactly when the receiver's answer acknowledged it."""
        raise NotImplementedError


@dataclass
class WechatDriver(Driver):
    name: ClassVar[str] = "wechatpay"
    method: ClassVar[str] = "native"
    currency: ClassVar[str] = "CNY"
    channel_key_credential: ClassVar[str | None] = "platform_public_key_pem"

    @classmethod
    async def provision_account(
        cls, db: Database, vault: Vault, *, sandbox_url: str, account_id: str, notify_url: str
    ) -> None:
        await provision_wechat_sandbox_account(
            db,
            vault,
            sandbox_url=sandbox_url,
            merchant_id=MERCHANT_ID,
            merchant_name="Contract shop",
            api_key=ids.new_api_key(livemode=False),
            account_id=account_id,
        )

    @property
    def account_key(self) -> str:
        return self.credentials["mchid"]

    def is_documented_ack(self, ack: HttpResponse) -> bool:
        # "HTTP 200/204 within 5 s"; the body is not read.
        return ack.status in (200, 204)

    async def pay(self, admin: httpx.AsyncClient, order: CreateOrder, prepay: PrepayResult) -> None:
        answer = await admin.post(
            f"/sandbox/wechatpay/orders/{order.out_trade_no}/pay",
            json={"mchid": self.account_key, "outcome": "success"},
        )
        assert answer.status_code == 200, answer.text

    async def payment_callback_attempts(
        self, admin: httpx.AsyncClient, order: CreateOrder, prepay: PrepayResult
    ) -> list[dict[str, Any]]:
        view = await _admin_json(
            admin, f"/sandbox/wechatpay/orders/{order.out_trade_no}?mchid={self.account_key}"
        )
        return list(view["callback_attempts"])


@dataclass
class AlipayDriver(Driver):
    name: ClassVar[str] = "alipay"
    method: ClassVar[str] = "qr"
    currency: ClassVar[str] = "CNY"
    unopened_order_exists: ClassVar[bool] = False
    # Alipay refuses to close a paid trade with ACQ.TRADE_STATUS_ERROR, not a "paid" code:
    # the adapter says unknown outcome (query it).
    close_paid_error: ClassVar[type[ChannelError]] = ChannelUnknownOutcome
    channel_key_credential: ClassVar[str | None] = "alipay_public_key_pem"

    @classmethod
    async def provision_account(
        cls, db: Database, vault: Vault, *, sandbox_url: str, account_id: str, notify_url: str
    ) -> None:
        await provision_alipay_sandbox_account(
            db, vault, sandbox_url=sandbox_url, merchant_id=MERCHANT_ID, account_id=account_id
        )

    @property
    def account_key(self) -> str:
        return self.credentials["app_id"]

    def is_documented_ack(self, ack: HttpResponse) -> bool:
        # Exactly the seven characters "success"; anything else is sent again.
        return ack.status == 200 and ack.body == b"success"

    async def open(
        self, admin: httpx.AsyncClient, order: CreateOrder, prepay: PrepayResult
    ) -> None:
        await self._shopper(admin, order, "scan")

    async def pay(self, admin: httpx.AsyncClient, order: CreateOrder, prepay: PrepayResult) -> None:
        await self._shopper(admin, order, "success")

    async def _shopper(self, admin: httpx.AsyncClient, order: CreateOrder, outcome: str) -> None:
        answer = await admin.post(
            f"/sandbox/alipay/orders/{order.out_trade_no}/pay",
            json={"app_id": self.account_key, "outcome": outcome},
        )
        assert answer.status_code == 200, answer.text

    async def payment_callback_attempts(
        self, admin: httpx.AsyncClient, order: CreateOrder, prepay: PrepayResult
    ) -> list[dict[str, Any]]:
        view = await _admin_json(
            admin, f"/sandbox/alipay/orders/{order.out_trade_no}?app_id={self.account_key}"
        )
        return list(view["notify_attempts"])


@dataclass
class StripeDriver(Driver):
    name: ClassVar[str] = "stripe"
    method: ClassVar[str] = "payment_intent"
    currency: ClassVar[str] = "USD"
    answers_signed: ClassVar[bool] = False
    # payfront's Stripe statement is the balance transactions of one UTC day.
    statement_tz: ClassVar[tzinfo] = UTC

    @classmethod
    async def provision_account(
        cls, db: Database, vault: Vault, *, sandbox_url: str, account_id: str, notify_url: str
    ) -> None:
        # Stripe sends every event of the account to its one webhook endpoint.
        await provision_stripe_sandbox_account(
            db,
            vault,
            sandbox_url=sandbox_url,
            merchant_id=MERCHANT_ID,
            account_id=account_id,
            webhook_url=notify_url,
        )

    @property
    def account_key(self) -> str:
        return self.credentials["account_id"]

    def is_documented_ack(self, ack: HttpResponse) -> bool:
        # Any 2xx; Stripe retries anything else for up to three days.
        return 200 <= ack.status < 300

    async def pay(self, admin: httpx.AsyncClient, order: CreateOrder, prepay: PrepayResult) -> None:
        answer = await admin.post(
            f"/sandbox/stripe/payment_intents/{_intent_id(prepay)}/pay",
            json={"outcome": "success"},
        )
        assert answer.status_code == 200, answer.text

    async def payment_callback_attempts(
        self, admin: httpx.AsyncClient, order: CreateOrder, prepay: PrepayResult
    ) -> list[dict[str, Any]]:
        view = await _admin_json(admin, f"/sandbox/stripe/payment_intents/{_intent_id(prepay)}")
        return [
            attempt
            for event in view["events"]
            if event["type"] == "payment_intent.succeeded"
            for attempt in event["delivery_attempts"]
        ]


DRIVERS: Mapping[str, type[Driver]] = {
    driver.name: driver for driver in (WechatDriver, AlipayDriver, StripeDriver)
}


def _intent_id(prepay: PrepayResult) -> str:
    assert prepay.channel_trade_no, "a PaymentIntent create answers the intent's id"
    return prepay.channel_trade_no


async def _admin_json(admin: httpx.AsyncClient, path: str) -> dict[str, Any]:
    answer = await admin.get(path)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _other_public_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# -- provisioning ----------------------------------------------------------------------------


async def provision(
    driver_class: type[Driver], sandbox: BackgroundSandbox, database_url: str
) -> dict[str, str]:
    """Provision the channel's sandbox account the way ``payfront dev`` does
    (``payfront.devsetup*``), and read back the credentials the worker would give the adapter."""
    db = Database(database_url)
    vault = Vault(new_master_key())
    account_id = f"contract_{driver_class.name}"
    try:
        await ensure_merchant(db, MERCHANT_ID, "Contract shop", ids.new_api_key(livemode=False))
        await driver_class.provision_account(
            db,
            vault,
            sandbox_url=sandbox.base_url,
            account_id=account_id,
            notify_url=f"{sandbox.notify_url}/{driver_class.name}",
        )
        account = await load_channel_account(db, vault, account_id)
    finally:
        await db.dispose()
    assert account.channel == driver_class.name
    return dict(account.credentials)
