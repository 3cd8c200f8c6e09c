"""The invariants of the trade and pay core over a ``StoreView``: no money created or lost,
at most one kept payment per trade, one event (and its outbox rows) per money move, the work
owed recorded, and every status reached only through the state tables."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.events import MONEY_EVENTS, NOTIFY_JOB, POST_ENTRY_JOB, RECEIVED_EVENTS
from core.payments import PREPAY_JOB
from core.refunds import REFUND_JOB
from core.states import (
    PAY_RECEIVED,
    PAY_TERMINAL,
    PAY_TRANSITIONS,
    PAY_WAITING,
    REFUND_TERMINAL,
    REFUND_TRANSITIONS,
    TRADE_TRANSITIONS,
    PayStatus,
    RefundStatus,
    TradeStatus,
)
from tests.property.view import PayRow, StoreView

# The events that record money received for a pay order: paid, and paid in the exceptions
# core.receipts handles (after a close, in part, a second attempt of a paid trade).
PAYMENT_MONEY_EVENTS = RECEIVED_EVENTS
# A refund's work is owed (its job may run) until the channel has accepted or ended it.
REFUND_OWED = frozenset({RefundStatus.PENDING, RefundStatus.SUBMITTING})


@dataclass(frozen=True)
class Table:
    """One state machine's table as a graph."""

    name: str
    moves: Mapping[Any, str]
    initial: str
    terminal: frozenset[str]
    statuses: frozenset[str]

    @classmethod
    def of(
        cls,
        name: str,
        moves: Mapping[Any, str],
        initial: str,
        statuses: Iterable[str],
        terminal: Iterable[str] | None = None,
    ) -> Table:
        if terminal is None:  # no declared set: the statuses nothing leaves
            terminal = {status for status in statuses if not _leaves(moves, status)}
        return cls(name, moves, initial, frozenset(terminal), frozenset(statuses))

    def after(self, status: str, event: str) -> str:
        """Where ``event`` takes ``status``; the status itself when the table has no move."""
        return self.moves.get((status, event), status)

    def moves_from(self, event: str) -> set[str]:
        """The statuses ``event`` moves."""
        return {at for (at, on), _to in self.moves.items() if on == event}

    def reachable_in(self, start: str, moves: int) -> set[str]:
        """The statuses exactly ``moves`` table moves lead to from ``start``."""
        now = {start}
        for _ in range(moves):
            now = {to for (at, _event), to in self.moves.items() if at in now}
        return now


def _leaves(moves: Mapping[Any, str], status: str) -> bool:
    return any(at == status for at, _event in moves)


PAY = Table.of("pay_order", PAY_TRANSITIONS, PayStatus.PENDING, PayStatus, PAY_TERMINAL)
REFUND = Table.of(
    "refund_order", REFUND_TRANSITIONS, RefundStatus.PENDING, RefundStatus, REFUND_TERMINAL
)
TRADE = Table.of("trade_order", TRADE_TRANSITIONS, TradeStatus.OPEN, TradeStatus)


@dataclass
class History:
    """Each row's statuses as the machine saw them. Every compare-and-set adds one to the
    version and makes one table move, so a row seen at (s1, v1) and then at (s2, v2) must
    be reachable from s1 in exactly v2 - v1 moves; a new row starts at (initial, 0)."""

    seen: dict[tuple[str, str], list[tuple[str, int]]] = field(default_factory=dict)

    def observe(self, table: Table, key: str, status: str, version: int) -> None:
        trail = self.seen.setdefault((table.name, key), [(table.initial, 0)])
        before, before_version = trail[-1]
        assert status in table.statuses, f"{table.name} {key}: unknown status {status!r}"
        moves = version - before_version
        assert moves >= 0, f"{table.name} {key}: version went back {before_version} → {version}"
        if before in table.terminal:
            assert (status, moves) == (before, 0), (
                f"{table.name} {key} left terminal {before!r} for {status!r} (trail {trail})"
            )
        assert status in table.reachable_in(before, moves), (
            f"{table.name} {key}: {before!r} v{before_version} → {status!r} v{version} is not "
            f"{moves} move(s) of the table (trail {trail})"
        )
        if (status, version) != trail[-1]:
            trail.append((status, version))

    def observe_all(self, view: StoreView) -> None:
        for trade in view.trades.values():
            self.observe(TRADE, trade.trade_no, trade.status, trade.version)
        for pay in view.pays.values():
            self.observe(PAY, pay.pay_no, pay.status, pay.version)
        for refund in view.refunds.values():
            self.observe(REFUND, refund.refund_no, refund.status, refund.version)


def received_minor(pay: PayRow) -> int:
    """What the channel says was received for a pay order (0 unless it was paid)."""
    if pay.status not in PAY_RECEIVED:
        return 0
    return pay.paid_minor if pay.paid_minor is not None else pay.amount_minor


def check_money(view: StoreView) -> None:
    """Refunds hold what they may still move, never more than was received."""
    for pay in view.pays.values():
        refunds = [refund for refund in view.refunds.values() if refund.pay_no == pay.pay_no]
        held = sum(r.amount_minor for r in refunds if r.status != RefundStatus.FAILED)
        succeeded = sum(r.amount_minor for r in refunds if r.status == RefundStatus.SUCCEEDED)
        received = received_minor(pay)
        assert pay.refunded_minor == held, (
            f"{pay.pay_no}: refunded_minor {pay.refunded_minor} != {held} held by its "
            f"refunds {[(r.refund_no, r.amount_minor, r.status) for r in refunds]}"
        )
        assert held <= received, f"{pay.pay_no}: {held} refunded of {received} received"
        assert succeeded <= received, f"{pay.pay_no}: {succeeded} refunded of {received}"
        if received == 0:
            assert not refunds, f"{pay.pay_no} ({pay.status}) was never paid but has refunds"
        for refund in refunds:
            assert refund.amount_minor > 0, f"{refund.refund_no}: amount {refund.amount_minor}"
            assert refund.currency == pay.currency, f"{refund.refund_no}: {refund.currency}"


def check_kept_payments(view: StoreView) -> None:
    """A trade keeps at most one payment: any other money received for it is refunded by
    payfront itself, or held for a person with an anomaly on record."""
    for trade in view.trades.values():
        attempts = [pay for pay in view.pays.values() if pay.trade_no == trade.trade_no]
        returned = {r.pay_no for r in view.refunds.values() if r.automatic}
        kept = [p for p in attempts if p.status in PAY_RECEIVED and p.pay_no not in returned]
        assert len(kept) <= 1, f"trade {trade.trade_no} keeps {[p.pay_no for p in kept]}"
        if trade.status == TradeStatus.PAID:
            assert any(p.status == PayStatus.PAID for p in attempts), trade
        if trade.status == TradeStatus.PARTIALLY_PAID:
            assert any(p.status == PayStatus.PARTIALLY_PAID for p in attempts), trade
        for pay in kept:
            if trade.status != pay.status:  # kept, but not what the trade was paid by
                assert any(anomaly[0] == pay.pay_no for anomaly in view.anomalies), (
                    f"{pay.pay_no} is {pay.status} in {trade.status} trade "
                    f"{trade.trade_no}, kept without a refund or an anomaly"
                )


def check_events(view: StoreView) -> None:
    """One money event per pay order that received money and per refund that moved it,
    each with the work it owes (a notification; a ledger posting for money)."""
    by_pay: dict[str, Counter[str]] = {pay_no: Counter() for pay_no in view.pays}
    by_refund: dict[str, Counter[str]] = {refund_no: Counter() for refund_no in view.refunds}
    for event in view.events:
        if event.refund_no is not None:
            by_refund[event.refund_no][event.type] += 1
        elif event.pay_no is not None:
            by_pay[event.pay_no][event.type] += 1
        assert (NOTIFY_JOB, event.event_id) in view.outbox, f"{event} owes no notification"
        posted = (POST_ENTRY_JOB, event.event_id) in view.outbox
        assert posted == (event.type in MONEY_EVENTS), f"{event}: ledger posting owed {posted}"
    for pay_no, counts in by_pay.items():
        status = view.pays[pay_no].status
        money = sum(counts[kind] for kind in PAYMENT_MONEY_EVENTS)
        expected = 1 if status in PAY_RECEIVED else 0
        assert money == expected, f"{pay_no} is {status} with money events {dict(counts)}"
        assert all(count == 1 for count in counts.values()), f"{pay_no}: {dict(counts)}"
        if status == PayStatus.PREPAY_FAILED:
            assert counts["payment.failed"] == 1, f"{pay_no}: {dict(counts)}"
        if status == PayStatus.CLOSED:
            assert counts["payment.closed"] == 1, f"{pay_no}: {dict(counts)}"
    for refund_no, counts in by_refund.items():
        status = view.refunds[refund_no].status
        ended = {
            "refund.succeeded": int(status == RefundStatus.SUCCEEDED),
            "refund.failed": int(status == RefundStatus.FAILED),
        }
        assert {kind: counts[kind] for kind in ended} == ended, (
            f"{refund_no} is {status} with events {dict(counts)}"
        )


def check_money_in_is_posted(view: StoreView) -> None:
    """Money received is money the ledger must post, whichever event recorded it (a refund's
    posting reverses the payment's: core.ledger.posting finds no source without it)."""
    for event in view.events:
        if event.type in PAYMENT_MONEY_EVENTS:
            assert (POST_ENTRY_JOB, event.event_id) in view.outbox, (
                f"{event.type} of {event.pay_no} owes no ledger posting"
            )


def check_owed_work(view: StoreView) -> None:
    """The outbox owes a prepay job while the order waits for one, and a refund job until
    the channel has the refund: what the sweeper re-drives after a Redis loss."""
    for pay in view.pays.values():
        owed = view.outbox.get((PREPAY_JOB, pay.pay_no))
        assert owed == ("pending" if pay.status in PAY_WAITING else "done"), (
            f"{pay.pay_no} is {pay.status}, its prepay job {owed}"
        )
    for refund in view.refunds.values():
        owed = view.outbox.get((REFUND_JOB, refund.refund_no))
        assert owed == ("pending" if refund.status in REFUND_OWED else "done"), (
            f"{refund.refund_no} is {refund.status}, its refund job {owed}"
        )


def check_all(view: StoreView, history: History) -> None:
    history.observe_all(view)
    check_money(view)
    check_kept_payments(view)
    check_events(view)
    check_money_in_is_posted(view)
    check_owed_work(view)
