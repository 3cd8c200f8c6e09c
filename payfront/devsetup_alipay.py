"""Provisioning an Alipay application against the sandbox, for ``payfront dev`` and tests:
the app key pair is generated here, registered at the sandbox, and stored sealed as the
merchant's channel account."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.merchants import load_channel_account, save_channel_account
from core.provision import ensure_merchant, merchant_exists
from core.store.db import Database
from core.vault import Vault

CHANNEL = "alipay"


@dataclass(frozen=True, slots=True)
class AlipayAppKeys:
    """What a merchant holds for one Alipay application: its id and RSA key pair."""

    app_id: str
    private_key_pem: str
    public_key_pem: str

    @classmethod
    def generate(cls, app_id: str | None = None) -> AlipayAppKeys:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        # Alipay app ids are 16 digits, e.g. 2021001144680325.
        return cls._from_key(app_id or "2021" + f"{secrets.randbelow(10**12):012d}", key)

    @classmethod
    def from_credentials(cls, credentials: dict[str, str]) -> AlipayAppKeys:
        key = serialization.load_pem_private_key(
            credentials["app_private_key_pem"].encode(), password=None
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the stored Alipay app key is not an RSA key")
        return cls._from_key(credentials["app_id"], key)

    @classmethod
    def _from_key(cls, app_id: str, key: rsa.RSAPrivateKey) -> AlipayAppKeys:
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
        return cls(app_id=app_id, private_key_pem=private_pem, public_key_pem=public_pem)


@dataclass(frozen=True, slots=True)
class AlipaySandboxAccount:
    merchant_id: str
    account_id: str
    app_id: str
    seller_id: str


async def provision_alipay_sandbox_account(
    db: Database,
    vault: Vault,
    *,
    sandbox_url: str,
    merchant_id: str,
    account_id: str,
    merchant_name: str | None = None,
    api_key: str | None = None,
) -> AlipaySandboxAccount:
    """Ensure an Alipay application for the merchant, registered with the sandbox.

    The merchant must exist, unless ``merchant_name`` and ``api_key`` are given (then it is
    created if missing). Idempotent: an existing account keeps its app id and key and is
    registered again, so a sandbox that lost its state is picked up.
    """
    if merchant_name is not None and api_key is not None:
        await ensure_merchant(db, merchant_id, merchant_name, api_key)
    elif not await merchant_exists(db, merchant_id):
        raise LookupError(f"no merchant {merchant_id!r}: create it first or pass its name/key")
    try:
        existing = await load_channel_account(db, vault, account_id)
    except LookupError:
        existing = None
    if existing is None:
        keys = AlipayAppKeys.generate()
    elif existing.channel == CHANNEL and existing.merchant_id == merchant_id:
        keys = AlipayAppKeys.from_credentials(existing.credentials)
    else:
        raise ValueError(f"account {account_id!r} exists for another merchant or channel")
    base_url = sandbox_url.rstrip("/")
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        answer = await client.post(
            "/sandbox/alipay/apps",
            json={"app_id": keys.app_id, "app_public_key_pem": keys.public_key_pem},
        )
        answer.raise_for_status()
        registration = answer.json()
    credentials = {
        "app_id": keys.app_id,
        "app_private_key_pem": keys.private_key_pem,
        "alipay_public_key_pem": registration["alipay_public_key_pem"],
        "gateway_url": f"{base_url}/gateway.do",
        "seller_id": registration["seller_id"],
    }
    await save_channel_account(
        db,
        vault,
        merchant_id=merchant_id,
        account_id=account_id,
        channel=CHANNEL,
        credentials=credentials,
    )
    return AlipaySandboxAccount(
        merchant_id=merchant_id,
        account_id=account_id,
        app_id=keys.app_id,
        seller_id=registration["seller_id"],
    )
