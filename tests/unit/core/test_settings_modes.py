"""Settings per mode: the shadow database and what test mode gets of its own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import Settings, shadow_url

PG = "postgresql+asyncpg://payfront:secret@db.internal:5432/payfront"


def test_the_shadow_database_is_derived_next_to_the_live_one() -> None:
    assert shadow_url("sqlite+aiosqlite:///./.payfront/payfront.db") == (
        "sqlite+aiosqlite:///.payfront/payfront-shadow.db"
    )
    assert shadow_url(PG) == "postgresql+asyncpg://payfront:secret@db.internal:5432/payfront_shadow"


def test_the_shadow_may_never_be_the_live_database() -> None:
    with pytest.raises(ValidationError, match="another database"):
        Settings(database_url=PG, test_database_url=PG)
    with pytest.raises(ValidationError, match="another database"):
        # The same file under two spellings is still the same database.
        Settings(
            database_url="sqlite+aiosqlite:///./x/live.db",
            test_database_url="sqlite+aiosqlite:///x/../x/live.db",
        )
    assert Settings(database_url=PG, test_database_url=PG + "_load").shadow_database_url == (
        PG + "_load"
    )


def test_test_mode_gets_its_own_database_queues_and_circuit_keys() -> None:
    live = Settings(database_url=PG, queue_name="pf:core", notify_queue_name="pf:notify")
    test = live.for_mode("test")
    assert (test.mode, test.database_url) == ("test", PG + "_shadow")
    assert (test.queue_name, test.notify_queue_name) == ("pf:core:test", "pf:notify:test")
    assert test.callback_path_prefix == "/test" and live.callback_path_prefix == ""
    assert live.for_mode("live") is live
    assert test.for_mode("test") is test
    with pytest.raises(ValueError, match="no live side"):
        test.for_mode("live")


def test_worker_modes_and_sandbox_origins_are_checked() -> None:
    assert Settings(worker_modes="test, live").worker_mode_list == ("live", "test")
    with pytest.raises(ValueError, match="worker_modes"):
        _ = Settings(worker_modes="staging").worker_mode_list
    assert Settings(sandbox_port=9000).sandbox_origins == {"http://127.0.0.1:9000"}
    origins = Settings(
        sandbox_urls="https://Sandbox.example.com, http://10.0.0.5:8090/"
    ).sandbox_origins
    assert origins == {"https://sandbox.example.com:443", "http://10.0.0.5:8090"}
