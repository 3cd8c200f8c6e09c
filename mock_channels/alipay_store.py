"""Persistence of the Alipay emulator's lasting state under ``state_dir/alipay/``: its Alipay
key pair (PEM) and the registered applications (JSON), so a restarted sandbox keeps verifying
the same apps and signing with the same key. Blocking; called through ``asyncio.to_thread``."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from mock_channels.alipay_crypto import generate_alipay_key, load_alipay_key, private_key_pem
from mock_channels.common import write_atomically


class AlipayStore:
    def __init__(self, state_dir: pathlib.Path) -> None:
        self.root = state_dir / "alipay"
        self._key_path = self.root / "alipay_key.pem"
        self._apps_path = self.root / "apps.json"

    def load_key(self) -> rsa.RSAPrivateKey | None:
        return load_alipay_key(self._key_path.read_bytes()) if self._key_path.exists() else None

    def load_or_create_key(self) -> rsa.RSAPrivateKey:
        """The stored Alipay key, or a new one written on first start."""
        if self._key_path.exists():
            return load_alipay_key(self._key_path.read_bytes())
        self.root.mkdir(parents=True, exist_ok=True)
        key = generate_alipay_key()
        write_atomically(self._key_path, private_key_pem(key), mode=0o600)
        return key

    def load_apps(self) -> list[dict[str, Any]]:
        if not self._apps_path.exists():
            return []
        return [dict(record) for record in json.loads(self._apps_path.read_text("utf-8"))]

    def save_apps(self, records: list[dict[str, str]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data = json.dumps(records, indent=2, ensure_ascii=False).encode("utf-8")
        write_atomically(self._apps_path, data)
