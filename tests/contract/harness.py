"""The contract's vocabulary: one channel's adapter talking to its sandbox over real HTTP in
the words of the Channel protocol (create, query, close, refund, callbacks, statements,
faults)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx

from channels.base import (
    Channel,
    ChannelEvent,
    CreateOrder,
    CreateRefund,
    HttpRequest,
    HttpResponse,
    PrepayResult,
    RefundState,
    RefundStatus,
    StatementLine,
    TradeStatus,
)
from channels.errors import CallbackIgnored, ChannelOrderNotFound
from channels.transport import send
from tests.contract.drivers import Driver
from tests.interop.harness import Delivery

# How long to wait for the sandbox to settle a refund or deliver a callback.
WAIT_S = 5.0


@dataclass(frozen=True)
class PaidOrder:
    order: CreateOrder
    prepay: PrepayResult
    status: TradeStatus


def _new_number(prefix: str) -> str:
    # Fits every channel's order and refund numbers (WeChat: 6-32 of [A-Za-z0-9_-|*]).
    return prefix + uuid.uuid4().hex[:20]


@dataclass
class Contract:
    """One channel's adapter talking to its sandbox, in the words of the Channel protocol."""

    driver: Driver
    channel: Channel
    http: httpx.AsyncClient
    admin: httpx.AsyncClient

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    # -- orders --------------------------------------------------------------------------

    def new_order(self, amount_minor: int = 1000) -> CreateOrder:
        return CreateOrder(
            out_trade_no=_new_number("CT"),
            amount_minor=amount_minor,
            currency=self.driver.currency,
            description="Contract test order",
            notify_url=self.driver.notify_url,
            method=self.driver.method,
            # Absolute, so a repeated create carries identical parameters.
            expires_at=(self.now() + timedelta(minutes=30)).replace(microsecond=0),
        )

    async def send(
        self, request: HttpRequest, *, http: httpx.AsyncClient | None = None
    ) -> HttpResponse:
        return await send(http or self.http, request)

    async def create(
        self, order: CreateOrder, *, http: httpx.AsyncClient | None = None
    ) -> PrepayResult:
        built = self.channel.build_create(order, now=self.now())
        if isinstance(built, PrepayResult):
            return built
        response = await self.send(built, http=http)
        return self.channel.parse_create(response, order=order, now=self.now())

    async def query_response(self, order: CreateOrder, prepay: PrepayResult) -> HttpResponse:
        request = self.channel.build_query(
            order.out_trade_no, channel_trade_no=prepay.channel_trade_no, now=self.now()
        )
        return await self.send(request)

    async def query(self, order: CreateOrder, prepay: PrepayResult) -> TradeStatus:
        response = await self.query_response(order, prepay)
        return self.channel.parse_query(response, now=self.now())

    async def close(self, order: CreateOrder, prepay: PrepayResult) -> None:
        request = self.channel.build_close(
            order.out_trade_no, channel_trade_no=prepay.channel_trade_no, now=self.now()
        )
        self.channel.parse_close(await self.send(request), now=self.now())

    async def paid_order(self, amount_minor: int = 1000) -> PaidOrder:
        order = self.new_order(amount_minor)
        prepay = await self.create(order)
        await self.driver.pay(self.admin, order, prepay)
        return PaidOrder(order, prepay, await self.query(order, prepay))

    # -- refunds -------------------------------------------------------------------------

    def new_refund(self, paid: PaidOrder, amount_minor: int) -> CreateRefund:
        return CreateRefund(
            out_refund_no=_new_number("RF"),
            out_trade_no=paid.order.out_trade_no,
            refund_minor=amount_minor,
            total_minor=paid.order.amount_minor,
            currency=paid.order.currency,
            notify_url=self.driver.notify_url,
            channel_trade_no=paid.status.channel_trade_no,
            reason="contract test",
        )

    async def refund(
        self, refund: CreateRefund, *, http: httpx.AsyncClient | None = None
    ) -> RefundStatus:
        response = await self.send(self.channel.build_refund(refund, now=self.now()), http=http)
        return self.channel.parse_refund(response, refund=refund, now=self.now())

    async def query_refund(
        self, paid: PaidOrder, out_refund_no: str, *, channel_refund_no: str | None = None
    ) -> RefundStatus:
        request = self.channel.build_refund_query(
            out_refund_no,
            out_trade_no=paid.order.out_trade_no,
            channel_trade_no=paid.status.channel_trade_no,
            channel_refund_no=channel_refund_no,
            now=self.now(),
        )
        response = await self.send(request)
        return self.channel.parse_refund_query(
            response, out_refund_no=out_refund_no, now=self.now()
        )

    async def settled(self, paid: PaidOrder, out_refund_no: str) -> RefundStatus:
        """The refund once the sandbox has settled it (WeChat's take 10 s × time scale)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                status = await self.query_refund(paid, out_refund_no)
            except ChannelOrderNotFound:
                # Alipay advises querying some seconds after a refund; keep asking.
                if time.monotonic() > deadline:
                    raise
            else:
                if status.state is not RefundState.PROCESSING or time.monotonic() > deadline:
                    return status
            await asyncio.sleep(0.02)

    # -- callbacks -----------------------------------------------------------------------

    async def callback(
        self, matches: Callable[[ChannelEvent], bool]
    ) -> tuple[Delivery, ChannelEvent]:
        """The first callback received (now or within WAIT_S) that verifies into an event
        ``matches`` accepts; genuine callbacks payfront ignores are skipped."""
        inbox = self.driver.sandbox.inbox(self.driver.name)
        deadline = time.monotonic() + WAIT_S
        seen = 0
        while True:
            while not inbox.empty():
                self.driver.deliveries.append(inbox.get_nowait())
            for delivery in self.driver.deliveries[seen:]:
                try:
                    event = self.channel.parse_callback(
                        delivery.headers, delivery.body, now=self.now()
                    )
                except CallbackIgnored:
                    continue
                if matches(event):
                    return delivery, event
            seen = len(self.driver.deliveries)
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching {self.driver.name} callback in {WAIT_S} s")
            await asyncio.sleep(0.02)

    # -- statements ----------------------------------------------------------------------

    async def statement(self, day: date) -> list[StatementLine]:
        """Every line of the day's statement, following ``next_request`` with its cursor."""
        request: HttpRequest | None = self.channel.build_statement(day, now=self.now())
        cursor: Mapping[str, str] = {}
        lines: list[StatementLine] = []
        for _ in range(100):
            if request is None:
                return lines
            response = await self.send(request)
            page = self.channel.parse_statement(response, cursor=cursor, now=self.now())
            lines.extend(page.lines)
            request, cursor = page.next_request, page.cursor
        raise AssertionError("the statement did not end within 100 steps")

    # -- faults --------------------------------------------------------------------------

    async def set_faults(self, **plan: float) -> None:
        answer = await self.admin.put(self.driver.faults_path, json=plan)
        assert answer.status_code in (200, 204), answer.text

    async def clear_faults(self) -> None:
        answer = await self.admin.delete(self.driver.faults_path)
        assert answer.status_code in (200, 204), answer.text
