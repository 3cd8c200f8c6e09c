from __future__ import annotations

from typing import Any

import pytest

from channels.registry import CHANNELS
from core.errors import InvalidRequest
from core.routing import (
    ChannelUnavailable,
    NoRoute,
    Route,
    Rule,
    RuleSpec,
    _rule,
    _validate,
    choose,
    rule_object,
)


def rule(
    priority: int, account: str, channel: str, method: str, enabled: bool = True, **bounds: Any
) -> Rule:
    return _rule(RuleSpec(priority, account, method, **bounds), channel, CHANNELS, enabled=enabled)


RULES = (
    rule(10, "wx", "wechatpay", "native", currency="CNY", max_amount=100_000),
    rule(20, "ali", "alipay", "qr", currency="CNY"),
    rule(30, "ali", "alipay", "page"),
    rule(40, "st", "stripe", "payment_intent", min_amount=50),
)


def never_open(_: str) -> bool:
    return False


def test_first_matching_rule_by_priority_wins() -> None:
    assert choose(RULES, currency="CNY", amount_minor=100, kind=None, is_open=never_open) == Route(
        "wx", "wechatpay", "native"
    )


def test_amount_range_and_currency_pick_later_rules() -> None:
    # Over the WeChat rule's maximum: the next CNY rule.
    big = choose(RULES, currency="CNY", amount_minor=200_000, kind=None, is_open=never_open)
    assert big == Route("ali", "alipay", "qr")
    # A currency only Stripe takes (the rules without a currency match what the channel takes).
    usd = choose(RULES, currency="USD", amount_minor=500, kind=None, is_open=never_open)
    assert usd == Route("st", "stripe", "payment_intent")
    with pytest.raises(NoRoute) as refused:
        choose(RULES, currency="USD", amount_minor=10, kind=None, is_open=never_open)
    assert refused.value.code == "no_route" and refused.value.status == 400


def test_the_requested_kind_filters_the_rules() -> None:
    redirect = choose(RULES, currency="CNY", amount_minor=100, kind="redirect", is_open=never_open)
    assert redirect == Route("ali", "alipay", "page")
    card = choose(RULES, currency="CNY", amount_minor=100, kind="card", is_open=never_open)
    assert card == Route("st", "stripe", "payment_intent")
    with pytest.raises(NoRoute):
        choose(RULES, currency="CNY", amount_minor=100, kind="in_app", is_open=never_open)


def test_an_open_circuit_falls_back_to_the_next_rule() -> None:
    routed = choose(RULES, currency="CNY", amount_minor=100, kind="qr", is_open=lambda a: a == "wx")
    assert routed == Route("ali", "alipay", "qr")


def test_every_matching_account_open_is_a_fast_503() -> None:
    with pytest.raises(ChannelUnavailable) as refused:
        choose(RULES, currency="CNY", amount_minor=100, kind="qr", is_open=lambda _: True)
    assert refused.value.status == 503
    assert refused.value.code == "channel_unavailable"
    assert refused.value.type == "service_unavailable_error"
    assert "wx, ali" in refused.value.message


def test_a_disabled_accounts_rule_never_matches() -> None:
    rules = (rule(1, "wx", "wechatpay", "native", enabled=False), *RULES[1:])
    routed = choose(rules, currency="CNY", amount_minor=100, kind="qr", is_open=never_open)
    assert routed.channel_account_id == "ali"
    assert rule_object(rules[0])["enabled"] is False
    assert rule_object(rules[0])["kind"] == "qr"


@pytest.mark.parametrize(
    ("spec", "code", "param"),
    [
        (RuleSpec(1, "nope", "native"), "channel_not_configured", "rules.0.channel_account_id"),
        (RuleSpec(1, "wx", "qr"), "method_not_supported", "rules.0.method"),
        (RuleSpec(1, "wx", "native", currency="USD"), "currency_not_supported", "rules.0.currency"),
        (
            RuleSpec(1, "wx", "native", min_amount=10, max_amount=5),
            "parameter_invalid",
            "rules.0.min_amount",
        ),
    ],
)
def test_rule_sets_that_cannot_route_are_refused(spec: RuleSpec, code: str, param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        _validate([spec], {"wx": "wechatpay"}, CHANNELS)
    assert (refused.value.code, refused.value.param) == (code, param)


def test_priorities_are_unique() -> None:
    specs = [RuleSpec(1, "wx", "native"), RuleSpec(1, "wx", "native")]
    with pytest.raises(InvalidRequest) as refused:
        _validate(specs, {"wx": "wechatpay"}, CHANNELS)
    assert refused.value.param == "rules.1.priority"
