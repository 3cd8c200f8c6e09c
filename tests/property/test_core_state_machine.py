"""Random sequences against the trade and pay core on the real store (issue 4's "done when").

A hypothesis state machine drives the core's own functions — no HTTP, no channel — on a
fresh SQLite file per example, and on PostgreSQL (one database, one merchant per example;
skipped when no server answers, unless PAYFRONT_REQUIRE_POSTGRES=1): payments created
(idempotent replays included), prepay progress, channel reports of payment (duplicated,
reordered, late after a close, with a wrong amount, currency or account), closes, lost
outcomes settled by hand, refunds (too large, racing each other), refund reports
(processing / succeeded / failed, duplicated, reordered, contradicting) and crashes: each
step may run once, again after it returned, or twice at once; some steps race different
calls on one order. After every step ``tests.property.invariants`` checks the whole store.

The budget keeps both databases under a minute; raise it for a longer run:
``PAYFRONT_PROPERTY_EXAMPLES=200 scripts/test tests/property`` (examples per database; the
steps per example grow with it).
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from core import pay, prepay, receipts, refunds, resolutions
from core.errors import Conflict, PayfrontError, StaleState
from core.idempotency import IdempotencyClaim
from core.merchants import MerchantAuth
from core.payments import NewPayment, create_payment
from core.receipts import PaymentReport
from core.refunds import NewRefund, RefundReport
from core.states import (
    PAY_RECEIVED,
    PayEvent,
    PayStatus,
    RefundEvent,
    RefundStatus,
    TradeStatus,
)
from core.store.db import Database
from core.vault import Vault, new_master_key
from tests import factories
from tests.property.invariants import (
    PAY,
    REFUND,
    TRADE,
    History,
    check_all,
    check_money_in_is_posted,
    received_minor,
)
from tests.property.view import StoreView, read_view

T = TypeVar("T")

EXAMPLES = int(os.environ.get("PAYFRONT_PROPERTY_EXAMPLES", "30"))
STEPS = 50 if EXAMPLES <= 30 else 80

MACHINE_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,  # database I/O
    database=None,  # no .hypothesis/ examples database: every run is the same budget
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _note(text: str) -> None:
    """A line in hypothesis's report of a failing example (the pinned tests below drive
    the machine's steps outside hypothesis, where there is no report)."""
    if currently_in_test_context():
        note(text)


def _event(text: str) -> None:
    if currently_in_test_context():
        event(text)


def _unexpected(error: BaseException) -> None:
    """A step's error that no rule allows: fail the example with it. (A report delivered twice
    at once used to fail on uq_anomalies_source: test_duplicate_reports_at_once_…)"""
    raise error


class Delivery(enum.Enum):
    """How a step reaches the core: jobs and callbacks arrive at least once."""

    ONCE = "once"
    AGAIN = "again"  # run again after it returned (a worker died before acknowledging)
    RACING = "racing"  # the same call twice at once (a duplicate delivered to two workers)


deliveries = st.sampled_from(Delivery)
sources = st.sampled_from(["callback-1", "callback-2", "query"])
picks = st.integers(0, 63)  # which of the refunds seen so far


@dataclass(frozen=True)
class Refused:
    """An error the core answered with (a value, so that racing calls keep their answers)."""

    error: PayfrontError


@dataclass
class Store:
    """Where examples get their database."""

    name: str
    vault: Vault
    new_database: Callable[[], Database]
    runner: asyncio.Runner
    shared: bool  # one database for every example (PostgreSQL), disposed by the fixture


class CoreMachine(RuleBasedStateMachine):
    store: ClassVar[Store]

    payments = Bundle("payments")

    def __init__(self) -> None:
        super().__init__()
        self.db = self.store.new_database()
        self.merchant, self.account_id = self.run(
            factories.merchant_with_account(self.db, self.store.vault)
        )
        self.history = History()
        self.view = StoreView({}, {}, {}, [], {}, set())
        self.reports: dict[str, set[str]] = {}  # pay_no → source ids reported for it
        # Refunds in the order the machine first saw them (made by a step, or by the core
        # itself): drawn by index, so that a race deciding which refunds exist does not
        # change what hypothesis draws next.
        self.refund_list: list[str] = []

    def teardown(self) -> None:
        if not self.store.shared:
            self.run(self.db.dispose())

    def run(self, work: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await work

        return self.store.runner.run(wrapped())

    def deliver(self, delivery: Delivery, call: Callable[[], Awaitable[T]]) -> list[T]:
        async def go() -> list[T]:
            if delivery is Delivery.ONCE:
                return [await call()]
            if delivery is Delivery.AGAIN:
                return [await call(), await call()]
            kept: list[T] = []
            for answer in await asyncio.gather(call(), call(), return_exceptions=True):
                if isinstance(answer, BaseException):
                    _unexpected(answer)
                else:
                    kept.append(answer)
            return kept

        return self.run(go())

    def observe(self) -> StoreView:
        """Read the store and check every invariant; the machine's view moves on."""
        self.view = self.run(read_view(self.db, self.merchant.merchant_id))
        check_all(self.view, self.history)
        for status in {order.status for order in self.view.pays.values()}:
            _event(f"pay order reached {status}")  # --hypothesis-show-statistics
        for status in {refund.status for refund in self.view.refunds.values()}:
            _event(f"refund reached {status}")
        known = set(self.refund_list)
        self.refund_list.extend(sorted(no for no in self.view.refunds if no not in known))
        return self.view

    def refund_no(self, pick: int) -> str | None:
        if not self.refund_list:
            return None
        refund_no = self.refund_list[pick % len(self.refund_list)]
        _note(f"refund {self.refund_list.index(refund_no)}: {refund_no}")
        return refund_no

    @initialize(
        partial=st.sampled_from(["refund", "accept"]), late=st.sampled_from(["refund", "hold"])
    )
    def policies(self, partial: str, late: str) -> None:
        self.partial_policy, self.late_policy = partial, late
        self.run(
            receipts.set_policies(
                self.db, self.merchant.merchant_id, partial_payment=partial, late_payment=late
            )
        )
        self.observe()

    # --- payments -------------------------------------------------------------------------

    @rule(
        target=payments,
        amount=st.sampled_from([1, 2, 100, 999]) | st.integers(1, 10**9),
        currency=st.sampled_from(["CNY", "USD"]),
        delivery=deliveries,
    )
    def create_payment(self, amount: int, currency: str, delivery: Delivery) -> str:
        new = NewPayment(
            amount_minor=amount,
            currency=currency,
            merchant_order_no=f"order-{uuid.uuid4().hex[:12]}",
            channel="wechatpay",
            method="native",
            description="A cup of tea",
            expires_in_s=900,
        )
        claim = IdempotencyClaim(key=uuid.uuid4().hex, request_hash="a" * 64)
        made = self.deliver(
            delivery,
            lambda: create_payment(
                self.db, self.merchant, new, claim=claim, channel_account_id=self.account_id
            ),
        )
        assert len({created.pay_no for created in made}) == 1, made
        assert sum(not created.replayed for created in made) == 1, made
        after = self.observe()
        assert after.pays[made[0].pay_no].status == PayStatus.PENDING
        return made[0].pay_no

    @rule(
        target=payments,
        amount=st.sampled_from([1, 2, 100, 999]) | st.integers(1, 10**9),
        paid=st.sampled_from(["exact", "less"]),
    )
    def create_awaiting_then_paid(self, amount: int, paid: str) -> str:
        """The common path in one step (prepay, credential, the shopper pays), so that
        examples spend their steps on what follows a payment: refunds and late news."""
        pay_no = str(self.create_payment(amount=amount, currency="CNY", delivery=Delivery.ONCE))
        self.start_prepay(pay_no=pay_no, delivery=Delivery.ONCE)
        self.credential_ready(pay_no=pay_no, delivery=Delivery.ONCE)
        self.channel_reports_payment(
            pay_no=pay_no, paid=paid, source="callback-1", delivery=Delivery.ONCE
        )
        return pay_no

    def _step(self, pay_no: str, event: PayEvent, delivery: Delivery, call: Any) -> None:
        """A step that names one table event: it makes that move if the table has it from
        where the order is, and nothing otherwise, however often it is delivered."""
        before = self.view.pays[pay_no].status
        self.deliver(delivery, call)
        after = self.observe().pays[pay_no].status
        assert after == PAY.after(before, event), f"{event}: {before} → {after}"

    @rule(pay_no=payments, delivery=deliveries)
    def start_prepay(self, pay_no: str, delivery: Delivery) -> None:
        self._step(
            pay_no, PayEvent.START_PREPAY, delivery, lambda: prepay.start_prepay(self.db, pay_no)
        )

    @rule(pay_no=payments, delivery=deliveries)
    def credential_ready(self, pay_no: str, delivery: Delivery) -> None:
        self._step(
            pay_no,
            PayEvent.CREDENTIAL_READY,
            delivery,
            lambda: prepay.credential_ready(self.db, pay_no, {"code_url": "weixin://x"}, "4200"),
        )

    @rule(pay_no=payments, delivery=deliveries)
    def prepay_failed(self, pay_no: str, delivery: Delivery) -> None:
        self._step(
            pay_no,
            PayEvent.PREPAY_REJECTED,
            delivery,
            lambda: pay.prepay_failed(self.db, pay_no, "PARAM_ERROR", "refused"),
        )

    @rule(pay_no=payments, delivery=deliveries)
    def outcome_lost(self, pay_no: str, delivery: Delivery) -> None:
        self._step(
            pay_no,
            PayEvent.OUTCOME_LOST,
            delivery,
            lambda: pay.outcome_lost(self.db, pay_no, "TIMEOUT", "read timeout"),
        )

    @rule(pay_no=payments, delivery=deliveries)
    def close(self, pay_no: str, delivery: Delivery) -> None:
        """Expired, or closed at the channel."""
        self._step(pay_no, PayEvent.CLOSED, delivery, lambda: pay.close(self.db, pay_no))

    @rule(pay_no=payments, action=st.sampled_from(["paid", "failed"]))
    def resolve_unknown(self, pay_no: str, action: str) -> None:
        before = self.view.pays[pay_no].status
        auth = MerchantAuth(self.merchant.merchant_id, livemode=False, key_prefix="sk_test_prop")
        decision = resolutions.Decision(action=action, actor="ops", reason="checked console")
        try:
            self.run(pay.resolve_unknown(self.db, auth, pay_no, decision))
        except Conflict:
            assert before != PayStatus.UNKNOWN, "a payment in unknown was not settled"
        after = self.observe().pays[pay_no].status
        if before == PayStatus.UNKNOWN:
            assert after == PAY.after(before, pay.RESOLUTION_EVENTS[action]), (before, after)
        else:
            assert after == before, f"only a payment in unknown is settled: {before} → {after}"

    @rule(
        pay_no=payments,
        paid=st.sampled_from(["exact", "less", "more", "zero", "currency", "app_id", "account"]),
        source=sources,
        delivery=deliveries,
    )
    def channel_reports_payment(
        self, pay_no: str, paid: str, source: str, delivery: Delivery
    ) -> None:
        before = self.view
        order = before.pays[pay_no]
        amount = {
            "less": max(order.amount_minor // 2, 1),
            "more": order.amount_minor + 1,
            "zero": 0,
        }.get(paid, order.amount_minor)
        report = PaymentReport(
            channel_account_id="acct_elsewhere" if paid == "account" else self.account_id,
            out_trade_no=pay_no,
            amount_minor=amount,
            currency=("USD" if order.currency == "CNY" else "CNY")
            if paid == "currency"
            else order.currency,
            channel_trade_no="4200001",
            paid_at=None,
            source_id=f"{source}:{pay_no}",
            account_mismatch="appid wx_other != wx_ours" if paid == "app_id" else None,
        )
        self.reports.setdefault(pay_no, set()).add(report.source_id)
        outcomes = self.deliver(delivery, lambda: receipts.apply_payment(self.db, report))
        _note(f"outcomes: {[outcome for outcome, _ in outcomes]}")
        after = self.observe()
        status, now = order.status, after.pays[pay_no].status
        if paid == "account":  # not an order of that account: nothing to see
            assert now == status
            return
        recorded = {(no, source_id) for no, _kind, source_id in after.anomalies}
        if paid in ("more", "zero", "currency", "app_id"):
            # A wrong report never changes state and is recorded for review.
            assert now == status, f"{paid} report moved {status} → {now}"
            assert (pay_no, "payment_mismatch", report.source_id) in after.anomalies
            return
        money_in = (PayEvent.PAYMENT_SUCCEEDED, PayEvent.LATE_PAYMENT, PayEvent.PARTIAL_PAYMENT)
        allowed = {status} | {PAY.after(status, event) for event in money_in}
        assert now in allowed, f"{paid} report moved {status} → {now}"
        if amount == order.amount_minor and status in PAY.moves_from(PayEvent.PAYMENT_SUCCEEDED):
            trade = before.trades[order.trade_no].status
            if trade == TradeStatus.OPEN:
                assert now == PayStatus.PAID, f"paid in full, {status} → {now}"
        if now == status and status not in PAY_RECEIVED:
            # Money the order cannot take (pending, failed) is never dropped silently.
            assert (pay_no, report.source_id) in recorded, f"{status}: nothing recorded"
        if now != status:
            # Money it was not asked to keep is given back at once, per the merchant's policy.
            late = status == PayStatus.CLOSED
            partial = now == PayStatus.PARTIALLY_PAID
            give_back = (late and self.late_policy == "refund") or (
                partial and self.partial_policy == "refund"
            )
            automatic = [r for r in after.refunds.values() if r.pay_no == pay_no and r.automatic]
            assert len(automatic) == int(give_back), (
                f"{status} → {now} (late {self.late_policy}, partial {self.partial_policy}): "
                f"automatic refunds {automatic}"
            )
            if give_back:
                assert automatic[0].amount_minor == received_minor(after.pays[pay_no])

    # --- refunds --------------------------------------------------------------------------

    def _refund_outcome(
        self, before: StoreView, pay_no: str, amount: int | None
    ) -> type[PayfrontError] | None:
        """What creating a refund must answer, from the order as it was."""
        order = before.pays[pay_no]
        if order.status not in PAY_RECEIVED:
            return Conflict
        received = order.paid_minor if order.paid_minor is not None else order.amount_minor
        left = received - order.refunded_minor
        if left <= 0:
            return Conflict
        if (amount if amount is not None else left) > left:
            return PayfrontError
        return None

    @rule(
        pay_no=payments,
        amount=st.none() | st.sampled_from([1, 50, 99, 100]) | st.integers(1, 10**9),
        delivery=deliveries,
    )
    def create_refund(self, pay_no: str, amount: int | None, delivery: Delivery) -> None:
        before = self.view
        expected = self._refund_outcome(before, pay_no, amount)
        claim = IdempotencyClaim(key=uuid.uuid4().hex, request_hash="b" * 64)
        new = NewRefund(pay_no=pay_no, amount_minor=amount, reason="broken cup")

        async def call() -> str | Refused:
            try:
                created = await refunds.create_refund(self.db, self.merchant, new, claim=claim)
            except PayfrontError as exc:
                return Refused(exc)
            return created.refund_no

        answers = self.deliver(delivery, call)
        after = self.observe()
        made = set(after.refunds) - set(before.refunds)
        if expected is None:
            assert len(made) == 1, f"expected one refund, made {made}; answers {answers}"
            replayed = {answer for answer in answers if isinstance(answer, str)}
            assert replayed == made, f"a replay answered another refund: {answers}"
            # A racing duplicate is replayed too (test_same_key_refunds_at_once_…).
            assert all(isinstance(answer, str) for answer in answers), answers
        else:
            assert not made, f"expected {expected.__name__}, made {made}"
            assert all(
                isinstance(answer, Refused) and isinstance(answer.error, expected)
                for answer in answers
            ), answers

    @rule(
        pay_no=payments,
        amounts=st.lists(st.integers(1, 60) | st.none(), min_size=2, max_size=5),
    )
    def refunds_at_once(self, pay_no: str, amounts: list[int | None]) -> None:
        """Refunds asked for at the same time never add up to more than was received, and
        none is refused that would have fit in what is left."""
        before = self.view

        async def one(amount: int | None) -> str | PayfrontError:
            new = NewRefund(pay_no=pay_no, amount_minor=amount)
            try:
                return (
                    await refunds.create_refund(self.db, self.merchant, new, claim=None)
                ).refund_no
            except PayfrontError as exc:
                return exc

        async def rush() -> list[str | PayfrontError]:
            return list(await asyncio.gather(*(one(amount) for amount in amounts)))

        answers = self.run(rush())
        _note(f"answers: {answers}")
        after = self.observe()
        made = set(after.refunds) - set(before.refunds)
        assert made == {answer for answer in answers if isinstance(answer, str)}
        order = after.pays[pay_no]
        if order.status in PAY_RECEIVED:
            received = order.paid_minor if order.paid_minor is not None else order.amount_minor
            left = received - order.refunded_minor
            for amount, answer in zip(amounts, answers, strict=True):
                if isinstance(answer, PayfrontError) and amount is not None:
                    assert amount > left, f"refused {amount} with {left} left: {answer}"

    @rule(pick=picks, delivery=deliveries)
    def start_refund(self, pick: int, delivery: Delivery) -> None:
        refund_no = self.refund_no(pick)
        if refund_no is None:
            return
        before = self.view.refunds[refund_no].status
        self.deliver(delivery, lambda: refunds.start_refund(self.db, refund_no))
        after = self.observe().refunds[refund_no].status
        assert after == REFUND.after(before, RefundEvent.SUBMIT), (before, after)

    @rule(
        pick=picks,
        status=st.sampled_from(
            [RefundStatus.PROCESSING, RefundStatus.SUCCEEDED, RefundStatus.FAILED]
        ),
        told=st.sampled_from(["exact", "bare", "amount", "currency", "account", "stranger"]),
        source=sources,
        delivery=deliveries,
    )
    def channel_reports_refund(
        self, pick: int, status: RefundStatus, told: str, source: str, delivery: Delivery
    ) -> None:
        refund_no = self.refund_no(pick)
        if refund_no is None:
            return
        refund = self.view.refunds[refund_no]
        before = refund.status
        report = RefundReport(
            channel_account_id="acct_elsewhere" if told == "account" else self.account_id,
            refund_no="rfd_not_ours" if told == "stranger" else refund_no,
            pay_no=refund.pay_no,
            status=status,
            source_id=f"{source}:{refund_no}:{status}",
            amount_minor=None if told == "bare" else refund.amount_minor + (told == "amount"),
            currency=None if told == "bare" else ("XXX" if told == "currency" else refund.currency),
            channel_refund_no="5030001",
            failure_code="NOT_ENOUGH" if status is RefundStatus.FAILED else None,
        )
        self.reports.setdefault(refund.pay_no, set()).add(report.source_id)
        outcomes = self.deliver(delivery, lambda: refunds.apply_refund(self.db, report))
        _note(f"outcomes: {[outcome for outcome, _ in outcomes]}")
        after = self.observe()
        now = after.refunds[refund_no].status
        anomalies = {(kind, source_id) for no, kind, source_id in after.anomalies}
        if told in ("amount", "currency"):
            assert now == before, f"a wrong {told} moved {before} → {now}"
            assert ("refund_mismatch", report.source_id) in anomalies
        elif told == "stranger":
            assert now == before
            assert ("refund_unknown", report.source_id) in anomalies
        elif told == "account":
            assert now == before
        else:
            event = {
                RefundStatus.PROCESSING: RefundEvent.ACCEPTED,
                RefundStatus.SUCCEEDED: RefundEvent.SUCCEEDED,
                RefundStatus.FAILED: RefundEvent.FAILED,
            }[status]
            assert now == REFUND.after(before, event), f"{status}: {before} → {now}"
            contradicts = before in REFUND.terminal and status not in (
                before,
                RefundStatus.PROCESSING,
            )
            if contradicts:
                assert ("refund_mismatch", report.source_id) in anomalies

    # --- races ----------------------------------------------------------------------------

    @rule(
        pay_no=payments,
        calls=st.lists(
            st.sampled_from(["start", "credential", "failed", "lost", "close", "paid"]),
            min_size=2,
            max_size=3,
        ),
    )
    def race_on_one_order(self, pay_no: str, calls: list[str]) -> None:
        """Different news about one order at once (a callback, the expiry sweep, a query):
        the order ends where some order of those calls takes it. A call that loses its
        compare-and-set three times may give up (its job is retried); it changed nothing."""
        order = self.view.pays[pay_no]
        report = PaymentReport(
            channel_account_id=self.account_id,
            out_trade_no=pay_no,
            amount_minor=order.amount_minor,
            currency=order.currency,
            channel_trade_no="4200002",
            paid_at=None,
            source_id=f"race:{pay_no}",
        )
        self.reports.setdefault(pay_no, set()).add(report.source_id)
        make: dict[str, Callable[[], Awaitable[Any]]] = {
            "start": lambda: prepay.start_prepay(self.db, pay_no),
            "credential": lambda: prepay.credential_ready(self.db, pay_no, {"code_url": "w"}, None),
            "failed": lambda: pay.prepay_failed(self.db, pay_no, "PARAM_ERROR", "refused"),
            "lost": lambda: pay.outcome_lost(self.db, pay_no, "TIMEOUT", "read timeout"),
            "close": lambda: pay.close(self.db, pay_no),
            "paid": lambda: receipts.apply_payment(self.db, report),
        }
        events: dict[str, Sequence[PayEvent]] = {
            "start": [PayEvent.START_PREPAY],
            "credential": [PayEvent.CREDENTIAL_READY],
            "failed": [PayEvent.PREPAY_REJECTED],
            "lost": [PayEvent.OUTCOME_LOST],
            "close": [PayEvent.CLOSED],
            "paid": [PayEvent.PAYMENT_SUCCEEDED, PayEvent.LATE_PAYMENT],
        }

        async def race() -> list[Any]:
            return list(
                await asyncio.gather(*(make[call]() for call in calls), return_exceptions=True)
            )

        answers = self.run(race())
        _note(f"answers: {answers}")
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, StaleState):
                _unexpected(answer)
        now = self.observe().pays[pay_no].status
        possible = set()
        for ordering in itertools.permutations(calls):
            statuses = {order.status}
            for call in ordering:  # each call moves by one of its events, or not at all
                statuses |= {PAY.after(s, event) for s in statuses for event in events[call]}
            possible |= statuses
        assert now in possible, f"{calls} took {order.status} to {now}, not one of {possible}"

    @rule(
        pick=picks,
        statuses=st.lists(
            st.sampled_from([RefundStatus.PROCESSING, RefundStatus.SUCCEEDED, RefundStatus.FAILED]),
            min_size=2,
            max_size=3,
        ),
        with_start=st.booleans(),
    )
    def race_on_one_refund(self, pick: int, statuses: list[RefundStatus], with_start: bool) -> None:
        """A refund's answer, its callback and a query, all at once (contradicting ones too)."""
        refund_no = self.refund_no(pick)
        if refund_no is None:
            return
        refund = self.view.refunds[refund_no]

        def report(status: RefundStatus, index: int) -> RefundReport:
            return RefundReport(
                channel_account_id=self.account_id,
                refund_no=refund_no,
                pay_no=refund.pay_no,
                status=status,
                source_id=f"race-{index}:{refund_no}",
            )

        async def race() -> list[Any]:
            calls: list[Awaitable[Any]] = [
                refunds.apply_refund(self.db, report(status, index))
                for index, status in enumerate(statuses)
            ]
            if with_start:
                calls.append(refunds.start_refund(self.db, refund_no))
            return list(await asyncio.gather(*calls, return_exceptions=True))

        answers = self.run(race())
        _note(f"answers: {answers}")
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, StaleState):
                _unexpected(answer)
        self.observe()  # History checks the moves against the table; the invariants the rest


def _machine_for(store: Store) -> type[CoreMachine]:
    return type(f"CoreMachineOn{store.name.title()}", (CoreMachine,), {"store": store})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_url: str | None,
) -> Iterator[Store]:
    vault = Vault(new_master_key())
    counter = itertools.count()
    with asyncio.Runner() as runner:
        if request.param == "sqlite":

            def new_sqlite() -> Database:
                path = tmp_path / f"example-{next(counter)}.db"
                path.write_bytes(sqlite_template.read_bytes())
                return Database(f"sqlite+aiosqlite:///{path}")

            yield Store("sqlite", vault, new_sqlite, runner, shared=False)
            return
        if postgres_url is None:
            pytest.skip("no PostgreSQL answers at PAYFRONT_TEST_POSTGRES_URL")
        # One engine for every example: each example is its own merchant, and every read is
        # scoped by merchant (a pool per example churns connections on a busy server).
        database = Database(postgres_url)
        try:
            yield Store("postgres", vault, lambda: database, runner, shared=True)
        finally:
            runner.run(database.dispose())


def test_core_keeps_its_invariants_under_random_sequences(store: Store) -> None:
    run_state_machine_as_test(_machine_for(store), settings=MACHINE_SETTINGS)


def test_money_received_late_is_posted_to_the_ledger(store: Store) -> None:
    """The machine's first find, kept as its own test: money received after a close was
    recorded as payment.late_succeeded, which owed no ledger posting (fixed in core.events:
    RECEIVED_EVENTS are money events)."""
    machine = _machine_for(store)()
    try:
        machine.policies(partial="refund", late="refund")
        pay_no = machine.create_payment(amount=1, currency="CNY", delivery=Delivery.ONCE)
        machine.start_prepay(pay_no=pay_no, delivery=Delivery.ONCE)
        machine.close(pay_no=pay_no, delivery=Delivery.ONCE)
        machine.channel_reports_payment(
            pay_no=pay_no, paid="exact", source="callback-1", delivery=Delivery.ONCE
        )
        check_money_in_is_posted(machine.view)
    finally:
        machine.teardown()


def test_duplicate_reports_at_once_record_one_anomaly(store: Store) -> None:
    """A callback delivered twice at once (to two gateways) that must be recorded as an
    anomaly: one delivery records it, the other is a no-op. The machine meets this on
    PostgreSQL; here it is tried until the two transactions overlap."""
    if store.name == "sqlite":
        pytest.skip("SQLite takes one writer at a time: the deliveries cannot overlap")
    machine = _machine_for(store)()
    try:
        for _ in range(20):
            pay_no = str(machine.create_payment(amount=1, currency="CNY", delivery=Delivery.ONCE))
            report = PaymentReport(
                channel_account_id=machine.account_id,
                out_trade_no=pay_no,
                amount_minor=1,
                currency="CNY",
                channel_trade_no="4200003",
                paid_at=None,
                source_id=f"callback:{pay_no}",  # paid while pending: recorded, not applied
            )

            async def at_once(report: PaymentReport = report) -> None:
                await asyncio.gather(*(receipts.apply_payment(machine.db, report) for _ in "ab"))

            machine.run(at_once())
    finally:
        machine.teardown()


def test_same_key_refunds_at_once_replay_the_first(store: Store) -> None:
    """One refund request sent twice at once with the same key (the gateway's in-flight
    lock lapsed): both answers name the one refund made."""
    if store.name == "sqlite":
        pytest.skip("SQLite takes one writer at a time: the requests cannot overlap")
    machine = _machine_for(store)()
    try:
        machine.policies(partial="refund", late="refund")
        for _ in range(10):
            pay_no = str(machine.create_awaiting_then_paid(amount=1, paid="exact"))
            claim = IdempotencyClaim(key=uuid.uuid4().hex, request_hash="c" * 64)
            new = NewRefund(pay_no=pay_no)

            async def at_once(new: NewRefund = new, claim: IdempotencyClaim = claim) -> None:
                await asyncio.gather(
                    *(
                        refunds.create_refund(machine.db, machine.merchant, new, claim=claim)
                        for _ in "ab"
                    )
                )

            machine.run(at_once())
    finally:
        machine.teardown()


def test_terminal_statuses_leave_nothing_in_the_tables() -> None:
    """The declared terminal sets agree with the tables the machine checks moves against."""
    for table in (PAY, REFUND, TRADE):
        for (status, on), _to in table.moves.items():
            assert status not in table.terminal, f"{table.name}: {status} moves on {on}"
