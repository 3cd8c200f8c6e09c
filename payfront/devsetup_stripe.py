"""Provisioning a merchant's Stripe account against the sandbox: for tests and local runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from channels.stripe import HANDLED_EVENT_TYPES
from core.merchants import load_channel_account, save_channel_account
from core.provision import merchant_exists
from core.store.db import Database
from core.vault import Vault


@dataclass(frozen=True, slots=True)
class StripeSandboxAccount:
    merchant_id: str
    # payfront's channel account id (the one in /callbacks/stripe/{account_id}).
    account_id: str
    # The sandbox's Stripe account id (acct_…).
    stripe_account_id: str
    webhook_url: str
    secret_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)


async def provision_stripe_sandbox_account(
    db: Database,
    vault: Vault,
    *,
    sandbox_url: str,
    merchant_id: str,
    account_id: str,
    webhook_url: str,
) -> StripeSandboxAccount:
    """Register a Stripe account at the sandbox, its webhook endpoint at ``webhook_url``
    (normally ``{gateway}/callbacks/stripe/{account_id}``) subscribed to the events payfront
    reads, and store its credentials as the merchant's channel account ``account_id``.

    The merchant must exist (``core.provision.ensure_merchant``). Idempotent: an existing
    account's key and signing secret are sent again, so a sandbox that lost its state takes
    them back and the stored credentials stay valid.
    """
    if not await merchant_exists(db, merchant_id):
        raise LookupError(f"no merchant {merchant_id!r}: create it first (ensure_merchant)")
    registration: dict[str, object] = {
        "webhook_url": webhook_url,
        "enabled_events": list(HANDLED_EVENT_TYPES),
    }
    try:
        existing = await load_channel_account(db, vault, account_id)
    except LookupError:
        existing = None
    if existing is not None:
        if existing.channel != "stripe" or existing.merchant_id != merchant_id:
            raise ValueError(f"channel account {account_id!r} is not this merchant's Stripe one")
        credentials = existing.credentials
        registration["secret_key"] = credentials["secret_key"]
        registration["webhook_secret"] = credentials["webhook_secret"].split(",")[0].strip()
        if credentials.get("account_id"):
            registration["account_id"] = credentials["account_id"]
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        answer = await client.post("/sandbox/stripe/accounts", json=registration)
        answer.raise_for_status()
        registered = answer.json()
    await save_channel_account(
        db,
        vault,
        merchant_id=merchant_id,
        account_id=account_id,
        channel="stripe",
        credentials={
            "secret_key": registered["secret_key"],
            "webhook_secret": registered["webhook_secret"],
            "account_id": registered["account_id"],
            "api_base": sandbox_url.rstrip("/"),
        },
    )
    return StripeSandboxAccount(
        merchant_id=merchant_id,
        account_id=account_id,
        stripe_account_id=registered["account_id"],
        webhook_url=webhook_url,
        secret_key=registered["secret_key"],
        webhook_secret=registered["webhook_secret"],
    )
