"""Persistence of the WeChat emulator's lasting state under ``state_dir/wechatpay/``.

The platform key (PEM), its certificate (PEM), its public key id (JSON) and the registered
merchants (JSON) survive a restart, so a restarted sandbox keeps verifying the same merchants
and signing with the same key. The methods block; the sandbox calls them through
``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from mock_channels.common import write_atomically
from mock_channels.wechatpay_crypto import (
    PlatformIdentity,
    generate_platform_identity,
    load_platform_identity,
)


class WeChatPayStore:
    def __init__(self, state_dir: pathlib.Path) -> None:
        self.root = state_dir / "wechatpay"
        self._key_path = self.root / "platform_key.pem"
        self._cert_path = self.root / "platform_cert.pem"
        self._platform_path = self.root / "platform.json"
        self._merchants_path = self.root / "merchants.json"

    def load_or_create_platform(self) -> PlatformIdentity:
        """The stored platform identity, or a new one written on first start."""
        if self._key_path.exists() and self._cert_path.exists() and self._platform_path.exists():
            meta = json.loads(self._platform_path.read_text("utf-8"))
            return load_platform_identity(
                self._key_path.read_bytes(),
                self._cert_path.read_bytes(),
                str(meta["public_key_id"]),
            )
        self.root.mkdir(parents=True, exist_ok=True)
        identity = generate_platform_identity()
        write_atomically(self._key_path, identity.private_key_pem(), mode=0o600)
        write_atomically(self._cert_path, identity.certificate_pem().encode("ascii"))
        meta_out = {"public_key_id": identity.public_key_id, "serial_no": identity.serial_no}
        write_atomically(self._platform_path, json.dumps(meta_out, indent=2).encode("utf-8"))
        return identity

    def load_merchants(self) -> list[dict[str, Any]]:
        if not self._merchants_path.exists():
            return []
        records = json.loads(self._merchants_path.read_text("utf-8"))
        return [dict(record) for record in records]

    def save_merchants(self, records: list[dict[str, str]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # The file holds APIv3 keys (sandbox keys, but keys): owner-only.
        data = json.dumps(records, indent=2, ensure_ascii=False).encode("utf-8")
        write_atomically(self._merchants_path, data, mode=0o600)
