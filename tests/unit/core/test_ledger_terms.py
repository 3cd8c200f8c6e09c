"""core.ledger.terms and the settlement scheme: days in Asia/Shanghai, T+n due times, the
deterministic settlement key, and the settlement entry in both directions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from core.ledger.accounts import merchant_available, merchant_pending
from core.ledger.entries import SETTLEMENT, Role, settlement_entry
from core.ledger.terms import (
    SETTLEMENT_TZ,
    SettlementTerms,
    day_of,
    day_of_key,
    key_range,
    parse_delays,
    settlement_key,
)
from core.settings import Settings


def test_days_are_beijing_days() -> None:
    # 16:00 UTC is midnight in Beijing: the next day there.
    assert day_of(datetime(2026, 11, 26, 15, 59, 59, tzinfo=UTC)) == date(2026, 11, 26)
    assert day_of(datetime(2026, 11, 26, 16, 0, tzinfo=UTC)) == date(2026, 11, 27)


def test_due_at_follows_the_merchants_term() -> None:
    terms = SettlementTerms(1, {"mch_slow": 3})
    day = date(2026, 11, 26)
    assert terms.due_at("mch_a", day) == datetime(2026, 11, 27, tzinfo=SETTLEMENT_TZ)
    assert terms.due_at("mch_slow", day) == datetime(2026, 11, 29, tzinfo=SETTLEMENT_TZ)
    just_before = datetime(2026, 11, 26, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Beijing
    assert not terms.is_due("mch_a", day, just_before)
    assert terms.is_due("mch_a", day, datetime(2026, 11, 26, 16, 0, tzinfo=UTC))
    assert terms.last_due_day("mch_slow", datetime(2026, 11, 29, 1, tzinfo=UTC)) == day


def test_terms_come_from_settings_and_are_checked() -> None:
    settings = Settings(settlement_delay_days=2, settlement_delays="mch_a=1, mch_b = 7")
    terms = SettlementTerms.from_settings(settings)
    assert (terms.delay_days("mch_a"), terms.delay_days("mch_b"), terms.delay_days("x")) == (
        1,
        7,
        2,
    )
    assert parse_delays("") == {}
    for bad in ("mch_a", "mch_a=x", "=2", "mch_a=-1"):
        with pytest.raises(ValueError):
            parse_delays(bad)
    with pytest.raises(ValueError):
        SettlementTerms(1, {"mch_a": 0})


def test_the_settlement_key_is_deterministic_and_fits_the_column() -> None:
    day = date(2026, 11, 26)
    key = settlement_key("mch_" + "x" * 36, "CNY", False, day)
    assert key == settlement_key("mch_" + "x" * 36, "CNY", False, day)
    assert len(key) <= 40 and day_of_key(key) == day
    others = {
        settlement_key("mch_" + "x" * 36, "CNY", True, day),
        settlement_key("mch_" + "x" * 36, "USD", False, day),
        settlement_key("mch_y", "CNY", False, day),
        settlement_key("mch_" + "x" * 36, "CNY", False, date(2026, 11, 27)),
    }
    assert key not in others and len(others) == 4
    # One account's keys lie in its own range of the index, and no other account's do.
    lowest, highest = key_range("mch_" + "x" * 36, "CNY", False)
    assert lowest <= key <= highest
    assert not any(lowest <= other <= highest for other in others if not other.endswith("1127"))
    # Later days sort after earlier ones (the latest key is the latest settled day).
    assert settlement_key("mch_y", "CNY", False, date(2026, 12, 1)) > settlement_key(
        "mch_y", "CNY", False, date(2026, 11, 30)
    )


def test_a_settlement_moves_pending_to_available_or_back() -> None:
    at = datetime(2026, 11, 27, tzinfo=SETTLEMENT_TZ)
    pending = merchant_pending("mch_a", "CNY", False)
    available = merchant_available("mch_a", "CNY", False)
    forward = settlement_entry(
        key="stl_x",
        merchant_id="mch_a",
        currency="CNY",
        livemode=False,
        amount_minor=6_958,
        effective_at=at,
    )
    forward.validate()
    assert forward.event_type == SETTLEMENT
    assert [(line.account, line.delta_minor, line.role) for line in forward.lines] == [
        (pending, -6_958, Role.SETTLEMENT),
        (available, 6_958, Role.SETTLEMENT),
    ]
    back = settlement_entry(
        key="stl_y",
        merchant_id="mch_a",
        currency="CNY",
        livemode=False,
        amount_minor=-994,
        effective_at=at,
    )
    back.validate()
    assert [(line.account, line.delta_minor) for line in back.lines] == [
        (available, -994),
        (pending, 994),
    ]
    with pytest.raises(ValueError):
        settlement_entry(
            key="stl_z",
            merchant_id="mch_a",
            currency="CNY",
            livemode=False,
            amount_minor=0,
            effective_at=at,
        )
