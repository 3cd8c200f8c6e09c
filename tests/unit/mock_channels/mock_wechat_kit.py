"""Test kit for the WeChat Pay sandbox: merchant credentials made at test time, an independent
v3 request signer and response verifier (no code shared with the sandbox), a sandbox runner and
a callback receiver."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mock_channels.app import SandboxConfig, create_app


@dataclass
class MerchantCredentials:
    mchid: str
    appid: str
    serial_no: str
    private_key: rsa.RSAPrivateKey
    apiv3_key: str

    def public_key_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def registration(self, **extra: Any) -> dict[str, Any]:
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "merchant_serial_no": self.serial_no,
            "merchant_public_key_pem": self.public_key_pem(),
            "apiv3_key": self.apiv3_key,
            **extra,
        }

    def authorization(
        self,
        method: str,
        path: str,
        body: bytes,
        *,
        timestamp: int | None = None,
        serial_no: str | None = None,
        order: tuple[str, ...] = ("mchid", "nonce_str", "signature", "timestamp", "serial_no"),
    ) -> str:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = uuid.uuid4().hex.upper()
        message = f"{method}\n{path}\n{ts}\n{nonce}\n".encode() + body + b"\n"
        signature = base64.b64encode(
            self.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        ).decode()
        values = {
            "mchid": self.mchid,
            "nonce_str": nonce,
            "signature": signature,
            "timestamp": ts,
            "serial_no": serial_no or self.serial_no,
        }
        return "WECHATPAY2-SHA256-RSA2048 " + ",".join(f'{k}="{values[k]}"' for k in order)


def make_merchant(private_key: rsa.RSAPrivateKey, mchid: str = "1900000109") -> MerchantCredentials:
    return MerchantCredentials(
        mchid=mchid,
        appid="wxd678efh567hg6787",
        serial_no=secrets.token_hex(20).upper(),
        private_key=private_key,
        apiv3_key=secrets.token_hex(16),
    )


def verify_platform_signature(public_key: rsa.RSAPublicKey, headers: Any, body: bytes) -> bool:
    message = (
        f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + body + b"\n"
    )
    try:
        public_key.verify(
            base64.b64decode(headers["Wechatpay-Signature"]),
            message,
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except Exception:
        return False
    return True


def decrypt_resource(apiv3_key: str, resource: dict[str, str]) -> bytes:
    return AESGCM(apiv3_key.encode()).decrypt(
        resource["nonce"].encode(),
        base64.b64decode(resource["ciphertext"]),
        resource["associated_data"].encode(),
    )


@dataclass
class V3Answer:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Sandbox:
    client: TestClient[web.Request, web.Application]
    merchant: MerchantCredentials
    registration: dict[str, Any]
    config: SandboxConfig

    @property
    def platform_public_key(self) -> rsa.RSAPublicKey:
        key = serialization.load_pem_public_key(
            self.registration["platform_public_key_pem"].encode()
        )
        assert isinstance(key, rsa.RSAPublicKey)
        return key

    async def v3(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        merchant: MerchantCredentials | None = None,
        authorization: str | None = None,
        raw_body: bytes | None = None,
        timeout: float | None = None,
    ) -> V3Answer:
        merchant = merchant or self.merchant
        if raw_body is not None:
            body = raw_body
        else:
            body = json.dumps(payload).encode() if payload is not None else b""
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Authorization": authorization or merchant.authorization(method, path, body),
        }
        coro = self.client.request(method, path, data=body, headers=headers)
        response = await (asyncio.wait_for(coro, timeout) if timeout else coro)
        async with response:
            return V3Answer(response.status, response.headers, await response.read())

    async def admin(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        response = await self.client.request(method, path, json=payload)
        async with response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    def order_body(self, out_trade_no: str, notify_url: str, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "appid": self.merchant.appid,
            "mchid": self.merchant.mchid,
            "description": "Image形象店-深圳腾大-QQ公仔",
            "out_trade_no": out_trade_no,
            "notify_url": notify_url,
            "amount": {"total": 100, "currency": "CNY"},
        }
        body.update(changes)
        return body


async def start_sandbox(state_dir: Path, merchant: MerchantCredentials, **config: Any) -> Sandbox:
    settings = SandboxConfig(
        state_dir=state_dir,
        time_scale=config.pop("time_scale", 0.001),
        callback_timeout_s=config.pop("callback_timeout_s", 1.0),
        seed=config.pop("seed", 1),
        **config,
    )
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    response = await client.post("/sandbox/wechatpay/merchants", json=merchant.registration())
    assert response.status == 200, await response.text()
    registration = await response.json()
    return Sandbox(client, merchant, registration, settings)


@dataclass
class Receiver:
    """A merchant's notify_url: records every delivery; answers from ``statuses`` in turn."""

    url: str
    deliveries: list[tuple[dict[str, str], bytes, float]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int, timeout: float = 3.0) -> None:
        async def enough() -> None:
            while len(self.deliveries) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), timeout)
