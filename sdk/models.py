"""Typed, immutable views of the objects the payfront API returns and sends in webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any

# A payment or token in one of these states has no credential or failure yet.
WAITING_STATUSES = frozenset({"pending", "prepaying"})


def _require(source: Mapping[str, Any], key: str) -> Any:
    try:
        return source[key]
    except KeyError:
        raise ValueError(f"missing field {key!r}") from None


def _str(source: Mapping[str, Any], key: str) -> str:
    value = _require(source, key)
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def _optional_str(source: Mapping[str, Any], key: str) -> str | None:
    value = source.get(key)
    return None if value is None else _str(source, key)


def _int(source: Mapping[str, Any], key: str) -> int:
    value = _require(source, key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"field {key!r} must be an integer, got {type(value).__name__}")
    return value


def _bool(source: Mapping[str, Any], key: str) -> bool:
    value = _require(source, key)
    if not isinstance(value, bool):
        raise ValueError(f"field {key!r} must be a boolean, got {type(value).__name__}")
    return value


def _mapping(source: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _require(source, key)
    if not isinstance(value, Mapping):
        raise ValueError(f"field {key!r} must be an object, got {type(value).__name__}")
    return value


def _optional_mapping(source: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    return None if source.get(key) is None else _mapping(source, key)


def parse_datetime(value: str) -> datetime:
    """Parse an API timestamp (ISO 8601, usually ``...Z``) to an aware ``datetime``."""
    parsed = datetime.fromisoformat(value)
    # The API always sends UTC; a missing offset is read as UTC rather than left naive.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _datetime(source: Mapping[str, Any], key: str) -> datetime:
    try:
        return parse_datetime(_str(source, key))
    except ValueError as exc:
        raise ValueError(f"field {key!r}: {exc}") from None


def _optional_datetime(source: Mapping[str, Any], key: str) -> datetime | None:
    return None if source.get(key) is None else _datetime(source, key)


def _expect_object(source: Mapping[str, Any], name: str) -> None:
    if not isinstance(source, Mapping):
        raise ValueError(f"expected a {name} object, got {type(source).__name__}")
    if source.get("object", name) != name:
        raise ValueError(f"expected a {name} object, got {source.get('object')!r}")


@dataclass(frozen=True, slots=True)
class Credential:
    """What the payer needs to pay, one shape per ``type`` (the API reference lists them):
    ``code_url`` for ``wechatpay_native``; every field of every type in ``fields`` (e.g.
    ``qr_code`` for ``alipay_qr``, ``pay_url`` for ``alipay_page``, ``client_secret`` for
    ``stripe_payment_intent``, the ``wx.requestPayment`` parameters for ``wechatpay_jsapi``)."""

    type: str
    code_url: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

    def get(self, name: str) -> str | None:
        """One field of the credential, e.g. ``credential.get("client_secret")``."""
        return self.fields.get(name)

    @classmethod
    def from_json(cls, source: Mapping[str, Any]) -> Credential:
        """Build from the API's ``credential`` object."""
        fields = {
            key: value for key, value in source.items() if key != "type" and isinstance(value, str)
        }
        return cls(
            type=_str(source, "type"),
            code_url=_optional_str(source, "code_url"),
            fields=MappingProxyType(fields),
        )


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a payment could not be prepared or completed."""

    code: str
    message: str

    @classmethod
    def from_json(cls, source: Mapping[str, Any]) -> Failure:
        """Build from the API's ``failure`` object."""
        return cls(code=_str(source, "code"), message=_str(source, "message"))


def _credential(source: Mapping[str, Any]) -> Credential | None:
    credential = _optional_mapping(source, "credential")
    return None if credential is None else Credential.from_json(credential)


def _failure(source: Mapping[str, Any]) -> Failure | None:
    failure = _optional_mapping(source, "failure")
    return None if failure is None else Failure.from_json(failure)


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment as the merchant sees it (``object: "payment"``); ``amount`` is in minor units."""

    pay_no: str
    trade_no: str
    token: str
    status: str
    amount: int
    currency: str
    merchant_order_no: str
    channel: str
    method: str
    description: str
    expires_at: datetime
    created_at: datetime
    livemode: bool
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)
    credential: Credential | None = None
    failure: Failure | None = None
    paid_at: datetime | None = None
    amount_refunded: int = 0
    paid_amount: int | None = None

    @property
    def is_waiting(self) -> bool:
        """True while the channel has not yet answered the prepay (no credential or failure)."""
        return self.status in WAITING_STATUSES

    @classmethod
    def from_json(cls, source: Mapping[str, Any]) -> Payment:
        """Build from the API's payment object; raises ``ValueError`` if it is malformed."""
        _expect_object(source, "payment")
        metadata = _optional_mapping(source, "metadata") or {}
        if not all(isinstance(value, str) for value in metadata.values()):
            raise ValueError("field 'metadata' must map strings to strings")
        return cls(
            pay_no=_str(source, "pay_no"),
            trade_no=_str(source, "trade_no"),
            token=_str(source, "token"),
            status=_str(source, "status"),
            amount=_int(source, "amount"),
            currency=_str(source, "currency"),
            merchant_order_no=_str(source, "merchant_order_no"),
            channel=_str(source, "channel"),
            method=_str(source, "method"),
            description=_str(source, "description"),
            expires_at=_datetime(source, "expires_at"),
            created_at=_datetime(source, "created_at"),
            livemode=_bool(source, "livemode"),
            metadata=MappingProxyType(dict(metadata)),
            credential=_credential(source),
            failure=_failure(source),
            paid_at=_optional_datetime(source, "paid_at"),
            amount_refunded=_int(source, "amount_refunded") if "amount_refunded" in source else 0,
            paid_amount=source.get("paid_amount")
            if isinstance(source.get("paid_amount"), int)
            else None,
        )


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund of a payment (``object: "refund"``); ``amount`` is in minor units.

    ``status`` goes ``pending`` → ``submitting`` → ``processing`` → ``succeeded``, or ends
    ``failed`` (no money moved; the amount may be refunded again).
    """

    refund_no: str
    pay_no: str
    trade_no: str
    status: str
    amount: int
    currency: str
    channel: str
    created_at: datetime
    livemode: bool
    merchant_refund_no: str | None = None
    reason: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)
    failure: Failure | None = None
    succeeded_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status in ("succeeded", "failed")

    @classmethod
    def from_json(cls, source: Mapping[str, Any]) -> Refund:
        """Build from the API's refund object; raises ``ValueError`` if it is malformed."""
        _expect_object(source, "refund")
        metadata = _optional_mapping(source, "metadata") or {}
        return cls(
            refund_no=_str(source, "refund_no"),
            pay_no=_str(source, "pay_no"),
            trade_no=_str(source, "trade_no"),
            status=_str(source, "status"),
            amount=_int(source, "amount"),
            currency=_str(source, "currency"),
            channel=_str(source, "channel"),
            created_at=_datetime(source, "created_at"),
            livemode=_bool(source, "livemode"),
            merchant_refund_no=_optional_str(source, "merchant_refund_no"),
            reason=_optional_str(source, "reason"),
            metadata=MappingProxyType(dict(metadata)),
            failure=_failure(source),
            succeeded_at=_optional_datetime(source, "succeeded_at"),
        )


def refund_list(source: Mapping[str, Any]) -> list[Refund]:
    """Parse ``{"object": "list", "data": [refund, ...]}``."""
    _expect_object(source, "list")
    items = _require(source, "data")
    if not isinstance(items, list):
        raise ValueError("field 'data' must be a list")
    return [Refund.from_json(item) for item in items]


@dataclass(frozen=True, slots=True)
class Token:
    """The payer-facing view of a payment, readable with the token alone (``object: "token"``)."""

    token: str
    pay_no: str
    status: str
    amount: int
    currency: str
    description: str
    expires_at: datetime
    credential: Credential | None = None
    failure: Failure | None = None

    @property
    def is_waiting(self) -> bool:
        """True while the channel has not yet answered the prepay (no credential or failure)."""
        return self.status in WAITING_STATUSES

    @classmethod
    def from_json(cls, source: Mapping[str, Any]) -> Token:
        """Build from the API's token object; raises ``ValueError`` if it is malformed."""
        _expect_object(source, "token")
        return cls(
            token=_str(source, "token"),
            pay_no=_str(source, "pay_no"),
            status=_str(source, "status"),
            amount=_int(source, "amount"),
            currency=_str(source, "currency"),
            description=_str(source, "description"),
            expires_at=_datetime(source, "expires_at"),
            credential=_credential(source),
            failure=_failure(source),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """A webhook event (``object: "event"``).

    ``data_object`` is the raw ``data.object``; ``payment`` or ``refund`` is it parsed.
    """

    id: str
    type: str
    created_at: datetime
    data_object: Mapping[str, Any] = field(hash=False)
    payment: Payment | None = None
    refund: Refund | None = None

    @classmethod
    def from_json(cls, source: Mapping[str, Any]) -> Event:
        """Build from a webhook body; raises ``ValueError`` if it is malformed."""
        _expect_object(source, "event")
        data_object = _mapping(_mapping(source, "data"), "object")
        kind = data_object.get("object")
        return cls(
            id=_str(source, "id"),
            type=_str(source, "type"),
            created_at=_datetime(source, "created_at"),
            data_object=MappingProxyType(dict(data_object)),
            payment=Payment.from_json(data_object) if kind == "payment" else None,
            refund=Refund.from_json(data_object) if kind == "refund" else None,
        )


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """A registered webhook URL; ``secret`` is only present in the answer that created it."""

    id: str
    url: str
    enabled: bool
    created_at: datetime
    secret: str | None = None

    @classmethod
    def from_json(cls, source: Mapping[str, Any]) -> WebhookEndpoint:
        """Build from the API's webhook_endpoint object; raises ``ValueError`` if malformed."""
        _expect_object(source, "webhook_endpoint")
        return cls(
            id=_str(source, "id"),
            url=_str(source, "url"),
            enabled=_bool(source, "enabled"),
            created_at=_datetime(source, "created_at"),
            secret=_optional_str(source, "secret"),
        )


def _amounts(source: Mapping[str, Any], key: str) -> Mapping[str, int]:
    value = _require(source, key)
    if not isinstance(value, list):
        raise ValueError(f"field {key!r} must be a list, got {type(value).__name__}")
    amounts: dict[str, int] = {}
    for item in value:
        if not isinstance(item, Mapping):
            raise ValueError(f"field {key!r} must hold objects")
        amounts[_str(item, "currency")] = _int(item, "amount")
    return MappingProxyType(amounts)


@dataclass(frozen=True, slots=True)
class Balance:
    """What payfront owes the merchant, in minor units by currency (``object: "balance"``).

    ``pending`` is collected less refunds and channel fees, not yet settled; ``available``
    is settled and payable out.
    """

    livemode: bool
    pending: Mapping[str, int] = field(default_factory=dict, hash=False)
    available: Mapping[str, int] = field(default_factory=dict, hash=False)

    @classmethod
    def from_json(cls, source: Mapping[str, Any]) -> Balance:
        """Build from the API's balance object; raises ``ValueError`` if it is malformed."""
        _expect_object(source, "balance")
        return cls(
            livemode=_bool(source, "livemode"),
            pending=_amounts(source, "pending"),
            available=_amounts(source, "available"),
        )


@dataclass(frozen=True, slots=True)
class Settlement:
    """One day's money in one currency (``object: "settlement"``), in minor units:
    ``payable == collected - refunded - fees``."""

    date: date
    timezone: str
    currency: str
    collected: int
    refunded: int
    fees: int
    payable: int
    payment_count: int
    refund_count: int
    livemode: bool

    @classmethod
    def from_json(cls, source: Mapping[str, Any]) -> Settlement:
        """Build from the API's settlement object; raises ``ValueError`` if it is malformed."""
        _expect_object(source, "settlement")
        return cls(
            date=date.fromisoformat(_str(source, "date")),
            timezone=_str(source, "timezone"),
            currency=_str(source, "currency"),
            collected=_int(source, "collected"),
            refunded=_int(source, "refunded"),
            fees=_int(source, "fees"),
            payable=_int(source, "payable"),
            payment_count=_int(source, "payment_count"),
            refund_count=_int(source, "refund_count"),
            livemode=_bool(source, "livemode"),
        )
