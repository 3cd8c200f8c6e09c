from __future__ import annotations

import pytest

from core.ttlcache import TtlCache


async def test_loads_once_within_the_ttl_and_again_after(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("core.ttlcache.time.monotonic", lambda: clock[0])
    loads: list[str] = []

    async def load() -> str:
        loads.append("x")
        return f"value-{len(loads)}"

    cache: TtlCache[str, str] = TtlCache(ttl_s=30)
    assert await cache.get("k", load) == "value-1"
    clock[0] += 29
    assert await cache.get("k", load) == "value-1"
    clock[0] += 2
    assert await cache.get("k", load) == "value-2"
    assert len(loads) == 2


async def test_a_none_answer_is_cached_too() -> None:
    calls = 0

    async def load() -> None:
        nonlocal calls
        calls += 1

    cache: TtlCache[str, None] = TtlCache(ttl_s=30)
    assert await cache.get("unknown key", load) is None
    assert await cache.get("unknown key", load) is None
    assert calls == 1


async def test_it_starts_over_when_full() -> None:
    async def load() -> int:
        return 1

    cache: TtlCache[int, int] = TtlCache(ttl_s=30, max_entries=2)
    for key in range(5):
        await cache.get(key, load)
    assert len(cache._entries) <= 2
