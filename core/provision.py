"""Set-up of a merchant with a sandbox channel account, for `payfront dev` and tests."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.merchants import create_api_key, create_merchant
from core.store.db import Database
from core.store.tables import api_keys, channel_accounts, merchants
from core.vault import hash_api_key


@dataclass(frozen=True, slots=True)
class WechatMerchantKeys:
    """What a merchant holds for WeChat Pay: ids, its RSA key, and the APIv3 key."""

    mchid: str
    appid: str
    serial_no: str
    private_key_pem: str
    public_key_pem: str
    apiv3_key: str

    @classmethod
    def generate(cls, mchid: str | None = None, appid: str | None = None) -> WechatMerchantKeys:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        return cls(
            mchid=mchid or str(1_900_000_000 + secrets.randbelow(99_999_999)),
            appid=appid or "wx" + secrets.token_hex(8),
            serial_no=secrets.token_hex(20).upper(),
            private_key_pem=private_pem,
            public_key_pem=public_pem,
            # WeChat issues a 32-character ASCII key.
            apiv3_key=secrets.token_hex(16),
        )

    @classmethod
    def from_credentials(cls, credentials: dict[str, str]) -> WechatMerchantKeys:
        private = serialization.load_pem_private_key(
            credentials["merchant_private_key_pem"].encode(), password=None
        )
        public_pem = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        return cls(
            mchid=credentials["mchid"],
            appid=credentials["appid"],
            serial_no=credentials["merchant_serial_no"],
            private_key_pem=credentials["merchant_private_key_pem"],
            public_key_pem=public_pem,
            apiv3_key=credentials["apiv3_key"],
        )

    def sandbox_registration(self) -> dict[str, str]:
        """The body of the sandbox's ``POST /sandbox/wechatpay/merchants``."""
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "merchant_serial_no": self.serial_no,
            "merchant_public_key_pem": self.public_key_pem,
            "apiv3_key": self.apiv3_key,
        }

    def credentials(
        self, *, platform_public_key_pem: str, platform_public_key_id: str, base_url: str
    ) -> dict[str, str]:
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "merchant_serial_no": self.serial_no,
            "merchant_private_key_pem": self.private_key_pem,
            "apiv3_key": self.apiv3_key,
            "platform_public_key_pem": platform_public_key_pem,
            "platform_public_key_id": platform_public_key_id,
            "base_url": base_url,
        }


async def merchant_exists(db: Database, merchant_id: str) -> bool:
    async with db.read() as conn:
        found = await conn.execute(sa.select(merchants.c.id).where(merchants.c.id == merchant_id))
        return found.first() is not None


async def ensure_merchant(db: Database, merchant_id: str, name: str, api_key: str) -> None:
    """Create the merchant and its API key unless they exist (idempotent)."""
    if not await merchant_exists(db, merchant_id):
        await create_merchant(db, name, merchant_id=merchant_id)
    async with db.read() as conn:
        found = await conn.execute(
            sa.select(api_keys.c.id).where(api_keys.c.key_hash == hash_api_key(api_key))
        )
        has_key = found.first() is not None
    if not has_key:
        await create_api_key(
            db, merchant_id, livemode=api_key.startswith("sk_live_"), api_key=api_key
        )


async def set_channel_fee_rate(
    db: Database, account_id: str, *, fee_rate_bps: int, fee_fixed_minor: int = 0
) -> None:
    """Set the channel's fee on this account's payments: basis points (rounded half up to the
    minor unit) plus a fixed minor amount; applies to payments posted from now on."""
    if not 0 <= fee_rate_bps <= 10_000 or fee_fixed_minor < 0:
        raise ValueError("fee_rate_bps must be 0..10000 and fee_fixed_minor not negative")
    async with db.begin() as conn:
        updated = await conn.execute(
            channel_accounts.update()
            .where(channel_accounts.c.id == account_id)
            .values(fee_rate_bps=fee_rate_bps, fee_fixed_minor=fee_fixed_minor)
        )
    if updated.rowcount != 1:
        raise LookupError(f"no channel account {account_id!r}")
