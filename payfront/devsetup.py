"""Provisioning a merchant against the sandbox: used by ``payfront dev`` and by tests."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from core.merchants import load_channel_account, save_channel_account
from core.provision import WechatMerchantKeys, ensure_merchant
from core.store.db import Database
from core.vault import Vault

DEV_MERCHANT_ID = "mch_dev"
DEV_ACCOUNT_ID = "wx_dev"


@dataclass(frozen=True, slots=True)
class SandboxAccount:
    merchant_id: str
    account_id: str
    keys: WechatMerchantKeys


async def provision_wechat_sandbox_account(
    db: Database,
    vault: Vault,
    *,
    sandbox_url: str,
    merchant_id: str,
    merchant_name: str,
    api_key: str,
    account_id: str,
) -> SandboxAccount:
    """Ensure the merchant, its key and a WeChat Pay account registered with the sandbox.

    Idempotent: an existing account keeps its keys and is registered again, so a sandbox
    that lost its state (or a new platform key) is picked up.
    """
    await ensure_merchant(db, merchant_id, merchant_name, api_key)
    try:
        existing = await load_channel_account(db, vault, account_id)
        keys = WechatMerchantKeys.from_credentials(existing.credentials)
    except LookupError:
        keys = WechatMerchantKeys.generate()
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        answer = await client.post("/sandbox/wechatpay/merchants", json=keys.sandbox_registration())
        answer.raise_for_status()
        platform = answer.json()
    credentials = keys.credentials(
        platform_public_key_pem=platform["platform_public_key_pem"],
        platform_public_key_id=platform["platform_public_key_id"],
        base_url=sandbox_url,
    )
    await save_channel_account(
        db,
        vault,
        merchant_id=merchant_id,
        account_id=account_id,
        channel="wechatpay",
        credentials=credentials,
    )
    return SandboxAccount(merchant_id=merchant_id, account_id=account_id, keys=keys)
