"""Merchants and what belongs to them: API keys, channel accounts, webhook endpoints."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa

from core import ids
from core.idempotency import IdempotencyClaim, StoredAnswer, remember, stored_answer
from core.store.db import Database
from core.store.tables import api_keys, channel_accounts, merchants, webhook_endpoints
from core.vault import Vault, hash_api_key, same_secret
from core.views import iso


@dataclass(frozen=True, slots=True)
class MerchantAuth:
    merchant_id: str
    livemode: bool
    # The first characters of the API key used (``sk_test_AbCd``): who, in audit records.
    key_prefix: str = ""


@dataclass(frozen=True, slots=True)
class ChannelAccount:
    id: str
    merchant_id: str
    channel: str
    credentials: dict[str, str]


def _now() -> datetime:
    return datetime.now(UTC)


async def create_merchant(db: Database, name: str, *, merchant_id: str | None = None) -> str:
    merchant_id = merchant_id or "mch_" + secrets.token_hex(8)
    async with db.begin() as conn:
        await conn.execute(merchants.insert().values(id=merchant_id, name=name, created_at=_now()))
    return merchant_id


async def create_api_key(
    db: Database, merchant_id: str, *, livemode: bool = False, api_key: str | None = None
) -> str:
    """Store a new API key (only its hash) and return the key, shown once."""
    api_key = api_key or ids.new_api_key(livemode)
    expected_prefix = "sk_live_" if livemode else "sk_test_"
    if not api_key.startswith(expected_prefix):
        raise ValueError(f"a {'live' if livemode else 'test'} key starts with {expected_prefix}")
    async with db.begin() as conn:
        await conn.execute(
            api_keys.insert().values(
                id="key_" + secrets.token_hex(8),
                merchant_id=merchant_id,
                key_hash=hash_api_key(api_key),
                key_prefix=api_key[:12],
                livemode=livemode,
                created_at=_now(),
            )
        )
    return api_key


async def authenticate(db: Database, api_key: str) -> MerchantAuth | None:
    key_hash = hash_api_key(api_key)
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(
                    api_keys.c.merchant_id,
                    api_keys.c.livemode,
                    api_keys.c.key_hash,
                    api_keys.c.key_prefix,
                ).where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
            )
        ).first()
    if row is None or not same_secret(row.key_hash, key_hash):
        return None
    return MerchantAuth(
        merchant_id=row.merchant_id, livemode=row.livemode, key_prefix=row.key_prefix
    )


def _account_context(account_id: str) -> str:
    return f"channel_account:{account_id}"


async def save_channel_account(
    db: Database,
    vault: Vault,
    *,
    merchant_id: str,
    account_id: str,
    channel: str,
    credentials: dict[str, str],
) -> None:
    """Create the account, or replace its credentials (and enable it) if it exists."""
    sealed = vault.encrypt_json(credentials, context=_account_context(account_id))
    async with db.begin() as conn:
        updated = await conn.execute(
            channel_accounts.update()
            .where(
                channel_accounts.c.id == account_id,
                channel_accounts.c.merchant_id == merchant_id,
                channel_accounts.c.channel == channel,
            )
            .values(credentials_enc=sealed, enabled=True)
        )
        if updated.rowcount == 0:
            await conn.execute(
                channel_accounts.insert().values(
                    id=account_id,
                    merchant_id=merchant_id,
                    channel=channel,
                    credentials_enc=sealed,
                    enabled=True,
                    created_at=_now(),
                )
            )


async def load_channel_account(db: Database, vault: Vault, account_id: str) -> ChannelAccount:
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(channel_accounts).where(channel_accounts.c.id == account_id)
            )
        ).first()
    if row is None:
        raise LookupError(f"no channel account {account_id!r}")
    credentials = vault.decrypt_json(row.credentials_enc, context=_account_context(account_id))
    return ChannelAccount(
        id=row.id, merchant_id=row.merchant_id, channel=row.channel, credentials=credentials
    )


async def register_webhook_endpoint(
    db: Database, vault: Vault, *, merchant_id: str, url: str, claim: IdempotencyClaim | None
) -> tuple[bytes, bool]:
    """``POST /v1/webhook_endpoints``: the endpoint's JSON (with its signing secret) and
    whether it is a replay. Under an Idempotency-Key the answer is stored, sealed with the
    master key like every secret, and replayed; without one each call adds an endpoint."""
    now = _now()
    async with db.begin() as conn:
        if claim is not None:
            answer = await conn.run_sync(stored_answer, merchant_id, claim)
            if answer is not None:
                context = f"idempotency:{merchant_id}:{claim.key}"
                return vault.decrypt(answer.body.decode(), context=context), True
        endpoint_id = "we_" + secrets.token_hex(8)
        secret = ids.new_webhook_secret()
        await conn.execute(
            webhook_endpoints.insert().values(
                id=endpoint_id,
                merchant_id=merchant_id,
                url=url,
                secret_enc=vault.encrypt(
                    secret.encode(), context=f"webhook_endpoint:{endpoint_id}"
                ),
                enabled=True,
                created_at=now,
            )
        )
        body = orjson.dumps(
            {
                "object": "webhook_endpoint",
                "id": endpoint_id,
                "url": url,
                "secret": secret,
                "enabled": True,
                "created_at": iso(now),
            }
        )
        if claim is not None:
            sealed = vault.encrypt(body, context=f"idempotency:{merchant_id}:{claim.key}")
            await conn.run_sync(
                remember, merchant_id, claim, StoredAnswer(201, sealed.encode()), now
            )
    return body, False


async def add_webhook_endpoint(
    db: Database, vault: Vault, *, merchant_id: str, url: str, secret: str | None = None
) -> tuple[str, str]:
    """Register a webhook URL; returns ``(endpoint_id, signing_secret)``."""
    endpoint_id = "we_" + secrets.token_hex(8)
    secret = secret or ids.new_webhook_secret()
    sealed = vault.encrypt(secret.encode(), context=f"webhook_endpoint:{endpoint_id}")
    async with db.begin() as conn:
        await conn.execute(
            webhook_endpoints.insert().values(
                id=endpoint_id,
                merchant_id=merchant_id,
                url=url,
                secret_enc=sealed,
                enabled=True,
                created_at=_now(),
            )
        )
    return endpoint_id, secret
