"""Settlement terms and the settlement calendar: which day a moment belongs to (Asia/Shanghai
days), when a merchant's day becomes due (T+n), and the deterministic key of the one entry
that settles a (merchant, currency, day, mode)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.settings import Settings

# Days are China Standard Time days, as WeChat Pay's and Alipay's statements and settlements
# count them.
SETTLEMENT_TZ = ZoneInfo("Asia/Shanghai")

# ``ledger_entries.source_event_id`` of a settlement: ``stl_`` + 24 hex digits of SHA-256 over
# (merchant, currency, mode) + ``_YYYYMMDD`` = 37 characters (the column holds 40). One
# account's keys are adjacent in the column's unique index and sort by day, so its latest
# settled day is one short index range scan (``key_range``).
SETTLEMENT_KEY_PREFIX = "stl_"
MAX_DELAY_DAYS = 90


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The day as a half-open interval [start, end) of aware datetimes."""
    start = datetime.combine(day, time(), tzinfo=SETTLEMENT_TZ)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=SETTLEMENT_TZ)
    return start, end


def day_of(moment: datetime) -> date:
    """The settlement day a moment falls in."""
    return moment.astimezone(SETTLEMENT_TZ).date()


def account_hash(merchant_id: str, currency: str, livemode: bool) -> str:
    owner = f"{merchant_id}|{currency}|{'live' if livemode else 'test'}"
    return hashlib.sha256(owner.encode()).hexdigest()[:24]


def settlement_key(merchant_id: str, currency: str, livemode: bool, day: date) -> str:
    """The source key of the entry settling this day: the same in every run, so a second
    (or concurrent) run finds it taken (``ledger_entries.source_event_id`` is unique)."""
    return f"{_key_stem(merchant_id, currency, livemode)}{day:%Y%m%d}"


def key_range(merchant_id: str, currency: str, livemode: bool) -> tuple[str, str]:
    """The lowest and highest possible settlement key of the account (inclusive)."""
    stem = _key_stem(merchant_id, currency, livemode)
    return f"{stem}00000000", f"{stem}99999999"


def _key_stem(merchant_id: str, currency: str, livemode: bool) -> str:
    return f"{SETTLEMENT_KEY_PREFIX}{account_hash(merchant_id, currency, livemode)}_"


def day_of_key(key: str) -> date:
    digits = key[-8:]
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


@dataclass(frozen=True, slots=True)
class SettlementTerms:
    """How long a merchant's collected funds stay pending: ``default_delay_days`` (T+1 by
    default), or the merchant's own term. Day D becomes due at 00:00 (Asia/Shanghai) of day
    D + delay: with T+1, right after the day has closed."""

    default_delay_days: int = 1
    delay_by_merchant: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for who, days in {"default": self.default_delay_days, **self.delay_by_merchant}.items():
            if not 1 <= days <= MAX_DELAY_DAYS:
                raise ValueError(f"settlement delay of {who}: 1..{MAX_DELAY_DAYS} days, not {days}")

    @classmethod
    def from_settings(cls, settings: Settings) -> SettlementTerms:
        return cls(settings.settlement_delay_days, parse_delays(settings.settlement_delays))

    def delay_days(self, merchant_id: str) -> int:
        return self.delay_by_merchant.get(merchant_id, self.default_delay_days)

    def due_at(self, merchant_id: str, day: date) -> datetime:
        """When the day's pending funds become available."""
        return day_bounds(day + timedelta(days=self.delay_days(merchant_id)))[0]

    def last_due_day(self, merchant_id: str, now: datetime) -> date:
        """The latest day that is due at ``now``."""
        return day_of(now) - timedelta(days=self.delay_days(merchant_id))

    def is_due(self, merchant_id: str, day: date, now: datetime) -> bool:
        return day <= self.last_due_day(merchant_id, now)


def parse_delays(text: str) -> dict[str, int]:
    """``"mch_a=2, mch_b=7"`` → ``{"mch_a": 2, "mch_b": 7}``; raises ``ValueError``."""
    delays: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        merchant_id, sep, days = item.partition("=")
        if not sep or not merchant_id.strip() or not days.strip().isdigit():
            raise ValueError(f"settlement_delays: expected merchant_id=days, not {item!r}")
        delays[merchant_id.strip()] = int(days)
    return delays
