"""Merchant idempotency keys: the first answer to a key is stored with the write it made,
and replayed for the same request; the same key with another request is refused."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import orjson
import sqlalchemy as sa

from core.errors import IdempotencyKeyReused
from core.store.tables import idempotency_keys


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    body: bytes


def request_fingerprint(body: bytes, *, scope: str = "") -> str:
    """The SHA-256 of the request's canonical JSON, prefixed by ``scope`` (the route, for
    every route but payment creation, whose fingerprints predate scopes)."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    prefix = f"{scope}\n".encode() if scope else b""
    return hashlib.sha256(prefix + canonical).hexdigest()


def stored_answer(
    conn: sa.Connection, merchant_id: str, claim: IdempotencyClaim
) -> StoredAnswer | None:
    """The answer stored for this key, or None; ``IdempotencyKeyReused`` for another body."""
    row = conn.execute(
        sa.select(idempotency_keys).where(
            idempotency_keys.c.merchant_id == merchant_id,
            idempotency_keys.c.key == claim.key,
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != claim.request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request", param="Idempotency-Key"
        )
    return StoredAnswer(row.response_status, row.response_body.encode())


def remember(
    conn: sa.Connection,
    merchant_id: str,
    claim: IdempotencyClaim,
    answer: StoredAnswer,
    now: datetime,
) -> None:
    """Store the answer in the caller's transaction (the key's primary key makes a racing
    duplicate fail to commit)."""
    conn.execute(
        idempotency_keys.insert(),
        {
            "merchant_id": merchant_id,
            "key": claim.key,
            "request_hash": claim.request_hash,
            "response_status": answer.status,
            "response_body": answer.body.decode(),
            "created_at": now,
        },
    )
