"""Routing rules: a merchant's ordered table that picks a channel account and method for a
payment that names no channel, by currency, amount range and the kind of payment the
shopper's page can show, skipping accounts whose circuit is open (fallback)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from core.errors import InvalidRequest, ServiceUnavailable
from core.store.db import Database
from core.store.tables import channel_accounts, routing_rules

# What a merchant may ask for instead of a channel's own method name: what the shopper's
# page can show. Each (channel, method) is of one kind.
KINDS = ("qr", "redirect", "card", "in_app")
METHOD_KINDS: Mapping[tuple[str, str], str] = {
    ("wechatpay", "native"): "qr",
    ("wechatpay", "h5"): "redirect",
    ("wechatpay", "jsapi"): "in_app",
    ("wechatpay", "app"): "in_app",
    ("alipay", "qr"): "qr",
    ("alipay", "page"): "redirect",
    ("alipay", "wap"): "redirect",
    ("stripe", "payment_intent"): "card",
}
MAX_RULES = 50


class ChannelCapability(Protocol):
    """What a channel takes (``channels.registry.ChannelSpec`` is one; core imports no channel)."""

    @property
    def methods(self) -> frozenset[str]: ...

    @property
    def currencies(self) -> frozenset[str]: ...


Capabilities = Mapping[str, ChannelCapability]


class NoRoute(InvalidRequest):
    code = "no_route"


class ChannelUnavailable(ServiceUnavailable):
    code = "channel_unavailable"


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule as a merchant writes it. ``None`` bounds and currency match anything."""

    priority: int
    channel_account_id: str
    method: str
    currency: str | None = None
    min_amount: int | None = None
    max_amount: int | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A stored rule with what the gateway needs to match it without another look-up."""

    spec: RuleSpec
    channel: str
    kind: str
    # The currencies this rule can take: its own, or all its channel accepts.
    currencies: frozenset[str]
    # A disabled account's rules are kept but never match.
    enabled: bool = True

    def matches(self, currency: str, amount_minor: int, kind: str | None) -> bool:
        spec = self.spec
        return (
            self.enabled
            and currency in self.currencies
            and (kind is None or kind == self.kind)
            and (spec.min_amount is None or amount_minor >= spec.min_amount)
            and (spec.max_amount is None or amount_minor <= spec.max_amount)
        )


@dataclass(frozen=True, slots=True)
class Route:
    channel_account_id: str
    channel: str
    method: str


def choose(
    rules: Sequence[Rule],
    *,
    currency: str,
    amount_minor: int,
    kind: str | None,
    is_open: Callable[[str], bool],
) -> Route:
    """The first matching rule (by priority) whose account's circuit is not open.

    Raises ``NoRoute`` when no rule matches the payment at all, ``ChannelUnavailable`` when
    rules match but every one of their accounts is open (refused fast, nothing written).
    """
    skipped: list[str] = []
    for rule in rules:
        if not rule.matches(currency, amount_minor, kind):
            continue
        if is_open(rule.spec.channel_account_id):
            skipped.append(rule.spec.channel_account_id)
            continue
        return Route(rule.spec.channel_account_id, rule.channel, rule.spec.method)
    if skipped:
        raise ChannelUnavailable(
            "every channel account that could take this payment is failing ("
            + ", ".join(dict.fromkeys(skipped))
            + "); retry shortly or name another channel"
        )
    wanted = f"{kind} payment" if kind else "payment"
    raise NoRoute(
        f"no routing rule takes a {wanted} of {amount_minor} {currency}: add one with "
        "PUT /v1/routing_rules, or name a channel and method",
        param="channel",
    )


def _validate(
    specs: Sequence[RuleSpec], accounts: Mapping[str, str], capabilities: Capabilities
) -> None:
    """Refuse a rule set that could never route (``param`` names the bad rule's field)."""
    if len(specs) > MAX_RULES:
        raise InvalidRequest(f"at most {MAX_RULES} rules", code="parameter_invalid", param="rules")
    seen: set[int] = set()
    for index, spec in enumerate(specs):
        where = f"rules.{index}"
        if spec.priority in seen:
            raise InvalidRequest(
                f"{where}: priority {spec.priority} is used twice",
                code="parameter_invalid",
                param=f"{where}.priority",
            )
        seen.add(spec.priority)
        channel = accounts.get(spec.channel_account_id)
        if channel is None:
            raise InvalidRequest(
                f"{where}: no channel account {spec.channel_account_id!r} of this merchant",
                code="channel_not_configured",
                param=f"{where}.channel_account_id",
            )
        capability = capabilities.get(channel)
        if capability is None or spec.method not in capability.methods:
            raise InvalidRequest(
                f"{where}: {channel} has no method {spec.method!r}",
                code="method_not_supported",
                param=f"{where}.method",
            )
        if spec.currency is not None and spec.currency not in capability.currencies:
            raise InvalidRequest(
                f"{where}: {channel} does not accept {spec.currency}",
                code="currency_not_supported",
                param=f"{where}.currency",
            )
        if (
            spec.min_amount is not None
            and spec.max_amount is not None
            and spec.min_amount > spec.max_amount
        ):
            raise InvalidRequest(
                f"{where}: min_amount is above max_amount",
                code="parameter_invalid",
                param=f"{where}.min_amount",
            )


async def replace_rules(
    db: Database, merchant_id: str, specs: Sequence[RuleSpec], *, capabilities: Capabilities
) -> tuple[Rule, ...]:
    """Replace the merchant's whole table in one transaction (validated first)."""
    now = datetime.now(UTC)
    async with db.begin() as conn:
        found = await conn.execute(
            sa.select(
                channel_accounts.c.id, channel_accounts.c.channel, channel_accounts.c.enabled
            ).where(channel_accounts.c.merchant_id == merchant_id)
        )
        rows = {row.id: row for row in found}
        _validate(specs, {id_: row.channel for id_, row in rows.items()}, capabilities)
        await conn.execute(routing_rules.delete().where(routing_rules.c.merchant_id == merchant_id))
        if specs:
            await conn.execute(
                routing_rules.insert(),
                [
                    {
                        "merchant_id": merchant_id,
                        "priority": spec.priority,
                        "channel_account_id": spec.channel_account_id,
                        "method": spec.method,
                        "currency": spec.currency,
                        "min_amount_minor": spec.min_amount,
                        "max_amount_minor": spec.max_amount,
                        "created_at": now,
                    }
                    for spec in specs
                ],
            )
    ordered = sorted(specs, key=lambda spec: spec.priority)
    return tuple(
        _rule(
            spec,
            rows[spec.channel_account_id].channel,
            capabilities,
            enabled=rows[spec.channel_account_id].enabled,
        )
        for spec in ordered
    )


async def load_rules(
    db: Database, merchant_id: str, *, capabilities: Capabilities
) -> tuple[Rule, ...]:
    """The merchant's rules by priority (one SELECT)."""
    query = (
        sa.select(routing_rules, channel_accounts.c.channel, channel_accounts.c.enabled)
        .join(channel_accounts, channel_accounts.c.id == routing_rules.c.channel_account_id)
        .where(routing_rules.c.merchant_id == merchant_id)
        .order_by(routing_rules.c.priority)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return tuple(
        _rule(
            RuleSpec(
                priority=row.priority,
                channel_account_id=row.channel_account_id,
                method=row.method,
                currency=row.currency,
                min_amount=row.min_amount_minor,
                max_amount=row.max_amount_minor,
            ),
            row.channel,
            capabilities,
            enabled=row.enabled,
        )
        for row in rows
    )


def _rule(spec: RuleSpec, channel: str, capabilities: Capabilities, *, enabled: bool) -> Rule:
    capability = capabilities.get(channel)
    accepted = capability.currencies if capability is not None else frozenset()
    currencies = accepted & {spec.currency} if spec.currency is not None else accepted
    kind = METHOD_KINDS.get((channel, spec.method), spec.method)
    return Rule(
        spec=spec, channel=channel, kind=kind, currencies=frozenset(currencies), enabled=enabled
    )


def rule_object(rule: Rule) -> dict[str, Any]:
    """A rule as the merchant API shows it."""
    spec = rule.spec
    return {
        "priority": spec.priority,
        "channel_account_id": spec.channel_account_id,
        "channel": rule.channel,
        "method": spec.method,
        "kind": rule.kind,
        "currency": spec.currency,
        "min_amount": spec.min_amount,
        "max_amount": spec.max_amount,
        "enabled": rule.enabled,
    }
