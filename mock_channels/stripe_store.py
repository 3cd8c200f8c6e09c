"""Persistence of the Stripe emulator's accounts under ``state_dir/stripe/accounts.json``.

Accounts (secret keys, webhook URLs and signing secrets) survive a restart, so payfront's stored
credentials keep working against a restarted sandbox. The methods block; the sandbox calls them
through ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any


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
        # Write next to the target, then rename: a crash never leaves half a file. The file
        # holds secret keys (sandbox keys, but keys): owner-only.
        tmp = self._accounts_path.with_name(self._accounts_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._accounts_path)
