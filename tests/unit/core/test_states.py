from __future__ import annotations

import pytest

from core.states import (
    PAY_TERMINAL,
    PAY_TRANSITIONS,
    IllegalTransition,
    PayEvent,
    PayStatus,
    next_pay_status,
)


def test_the_happy_path_is_in_the_table() -> None:
    status = PayStatus.PENDING
    for event in (PayEvent.START_PREPAY, PayEvent.CREDENTIAL_READY, PayEvent.PAYMENT_SUCCEEDED):
        status = next_pay_status(status, event)
    assert status is PayStatus.PAID


@pytest.mark.parametrize("terminal", sorted(PAY_TERMINAL))
@pytest.mark.parametrize("event", list(PayEvent))
def test_nothing_leaves_a_terminal_status(terminal: PayStatus, event: PayEvent) -> None:
    with pytest.raises(IllegalTransition):
        next_pay_status(terminal, event)


def test_a_pending_order_cannot_be_paid_before_it_exists_at_the_channel() -> None:
    with pytest.raises(IllegalTransition):
        next_pay_status(PayStatus.PENDING, PayEvent.PAYMENT_SUCCEEDED)


def test_every_status_is_reachable_from_pending() -> None:
    reached = {PayStatus.PENDING}
    frontier = [PayStatus.PENDING]
    while frontier:
        status = frontier.pop()
        for (source, _event), target in PAY_TRANSITIONS.items():
            if source is status and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(PayStatus)
