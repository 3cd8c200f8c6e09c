"""Persistence of the Stripe emulator's accounts under ``state_dir/stripe/accounts.json``.

Accounts (secret keys, webhook URLs and signing secrets) survive a restart, so payfront's stored
credentials keep working against a restarted sandbox. The methods block; the sandbox calls them
through ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from mock_channels.common import write_atomically


class StripeStore:
    def __init__(self, state_dir: pathlib.Path) -> None:
        self.root = state_dir / "stripe"
        self._accounts_path = self.root / "accounts.json"

    def load_accounts(self) -> list[dict[str, Any]]:
        if not self._accounts_path.exists():
            return []
        records = json.loads(self._accounts_path.read_text("utf-8"))
        return [dict(record) for record in records]

    def save_accounts(self, records: list[dict[str, Any]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data = json.dumps(records, indent=2).encode("utf-8")
        # The file holds secret keys (sandbox keys, but keys): owner-only.
        write_atomically(self._accounts_path, data, mode=0o600)
