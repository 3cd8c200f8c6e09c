"""Stripe's idempotency layer (docs.stripe.com/idempotency, docs.stripe.com/error-low-level).

A POST's ``Idempotency-Key`` is scoped to the account. The first request with a key that
reaches an endpoint has its answer saved — whatever it was, 500s included — and a repeat with
the same parameters gets that answer again (``Idempotent-Replayed: true``); a repeat with other
parameters (or another endpoint) is a 400 ``idempotency_error``; a repeat while the first is
still running is a 409. Answers of requests refused before the endpoint ran (validation,
rate limits) are not saved, so the same key can be sent again. Keys are pruned after 24 hours.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from mock_channels.stripe_errors import idempotency_key_in_use, idempotency_mismatch
from mock_channels.stripe_forms import Params

KEY_TTL_S = 24 * 3600.0
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class SavedAnswer:
    status: int
    body: bytes
    headers: Mapping[str, str]


@dataclass
class _Entry:
    fingerprint: bytes
    created: float
    answer: SavedAnswer | None = None  # None while the first request runs


def fingerprint(method: str, path: str, params: Params) -> bytes:
    """What Stripe compares: the endpoint and the parameters (not their order or encoding)."""
    return orjson.dumps([method, path, params], option=orjson.OPT_SORT_KEYS)


class IdempotencyKeys:
    def __init__(self, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        # Insertion order is age order: pruning pops from the front.
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def begin(self, account_id: str, key: str, print_: bytes) -> SavedAnswer | None:
        """The saved answer to replay, or None after marking the key as running."""
        self._prune()
        entry = self._entries.get((account_id, key))
        if entry is not None:
            if entry.fingerprint != print_:
                raise idempotency_mismatch(key)
            if entry.answer is None:
                raise idempotency_key_in_use(key)
            return entry.answer
        self._entries[(account_id, key)] = _Entry(print_, self._clock())
        return None

    def save(self, account_id: str, key: str, answer: SavedAnswer) -> None:
        entry = self._entries.get((account_id, key))
        if entry is not None:
            entry.answer = answer

    def forget(self, account_id: str, key: str) -> None:
        """The request did not reach the endpoint: the key may be used again."""
        entry = self._entries.get((account_id, key))
        if entry is not None and entry.answer is None:
            del self._entries[(account_id, key)]

    def _prune(self) -> None:
        horizon = self._clock() - self._ttl_s
        while self._entries:
            _, oldest = next(iter(self._entries.items()))
            if oldest.created > horizon or oldest.answer is None:
                return
            self._entries.popitem(last=False)
