"""The Alipay emulator's behaviour, apart from HTTP: precreate / cashier / query / close the way
Alipay answers, play the buyer, send signed notifications, inject faults.

Business answers follow Alipay's tables: ACQ.TRADE_NOT_EXIST until the buyer scans (a precreate
QR code or an opened cashier is not yet a trade), ACQ.CONTEXT_INCONSISTENT for an out_trade_no
reused with other parameters, ACQ.TRADE_HAS_SUCCESS / ACQ.TRADE_HAS_CLOSE for a create on a
paid / closed trade, ACQ.TRADE_STATUS_ERROR for closing a trade that is not WAIT_BUYER_PAY.
Refunds follow ``alipay_refunds``, trade bills ``alipay_bills``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from mock_channels import alipay_errors as errors
from mock_channels import alipay_refunds as refunds
from mock_channels.alipay_bills import BillDesk
from mock_channels.alipay_crypto import (
    content_to_sign,
    public_key_pem,
    random_digits,
    random_lower_alnum,
    rsa2_sign,
)
from mock_channels.alipay_models import (
    BEIJING,
    PRODUCT_CODES,
    BillQuery,
    PayOrder,
    RefundCreate,
    RefundQuery,
    RegisterApp,
    TradeCreate,
    TradeReference,
    first_issue,
    load_biz_content,
)
from mock_channels.alipay_notify import (
    ALIPAY_ACK,
    ALIPAY_NOTIFY_DELAYS_S,
    FORM_HEADERS,
    notify_record,
)
from mock_channels.alipay_payouts import METHODS as PAYOUT_METHODS
from mock_channels.alipay_payouts import TransferDesk
from mock_channels.alipay_state import (
    DEFAULT_FEE_RATE,
    PAID,
    App,
    Refund,
    Trade,
    TradeBook,
    TradeEvent,
    TradeStatus,
)
from mock_channels.alipay_store import AlipayStore
from mock_channels.callbacks import CallbackAttempt, CallbackJob
from mock_channels.common import SandboxCore
from mock_channels.config import SandboxConfig

_Biz = TypeVar("_Biz", TradeCreate, TradeReference, RefundCreate, RefundQuery, BillQuery)

PRECREATE = "alipay.trade.precreate"
QUERY = "alipay.trade.query"
CLOSE = "alipay.trade.close"
REFUND = "alipay.trade.refund"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"
BILL_QUERY = "alipay.data.dataservice.bill.downloadurl.query"
API_METHODS = (
    frozenset({PRECREATE, QUERY, CLOSE, REFUND, REFUND_QUERY, BILL_QUERY}) | PAYOUT_METHODS
)
CASHIER_METHODS = frozenset({"alipay.trade.page.pay", "alipay.trade.wap.pay"})


class AdminError(Exception):
    """A sandbox admin API refusal: an HTTP status plus ``{code, message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _trade_no(now: dt.datetime) -> str:
    """28 digits, shaped like Alipay's ``2016071921001003030200089909``."""
    return now.astimezone(BEIJING).strftime("%Y%m%d") + "22001" + random_digits(15)


def _notify_id(now: dt.datetime) -> str:
    return now.astimezone(BEIJING).strftime("%Y%m%d") + "00222" + random_digits(21)


class AlipaySandbox(SandboxCore):
    def __init__(self, config: SandboxConfig, rng: random.Random) -> None:
        super().__init__(config, rng, callback_label="alipay notify")
        self.store = AlipayStore(config.state_dir)
        self.apps: dict[str, App] = {}
        self.trades = TradeBook()
        self.bills = BillDesk()
        self.payouts = TransferDesk(trades_net=self._trades_net)
        self._key: rsa.RSAPrivateKey | None = None
        self._apps_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, session: aiohttp.ClientSession) -> None:
        # Made on the first app registration, not here: a sandbox nobody uses for Alipay
        # should not pay for an RSA key generation on every start.
        self._key = await asyncio.to_thread(self.store.load_key)
        records = await asyncio.to_thread(self.store.load_apps)
        self.apps = {app.app_id: app for app in map(App.from_record, records)}
        self.callbacks.attach_session(session)

    @property
    def key(self) -> rsa.RSAPrivateKey:
        """The sandbox's Alipay private key: it signs every answer and notification."""
        if self._key is None:
            raise RuntimeError("the Alipay sandbox has no key before its first app")
        return self._key

    # -- faults ----------------------------------------------------------------------------

    def rate_limited(self) -> Exception:
        return errors.unavailable()

    def system_error(self) -> Exception:
        return errors.system_error()

    # -- the OpenAPI -----------------------------------------------------------------------

    def call(
        self,
        app: App,
        api_method: str,
        params: dict[str, str],
        now: dt.datetime,
        *,
        origin: str = "",
    ) -> dict[str, Any]:
        """One authenticated server call; the ``…_response`` content (code 10000) or raise.
        ``origin`` (scheme://host:port the call came to) is where bill links point."""
        if api_method in PAYOUT_METHODS:
            return self.payouts.call(app, api_method, params, now)
        if api_method == BILL_QUERY:
            trades = [t for (app_id, _), t in self.trades.by_key.items() if app_id == app.app_id]
            return self.bills.query(app, trades, _parse_biz(BillQuery, params), now, origin)
        if api_method in (REFUND, REFUND_QUERY):
            return self._refund_call(app, api_method, params, now)
        if api_method == PRECREATE:
            created = self.create(app, api_method, params, now)
            return {
                "code": "10000",
                "msg": "Success",
                "out_trade_no": created.out_trade_no,
                "qr_code": created.qr_code,
            }
        reference = _parse_biz(TradeReference, params)
        trade = self._find(app, reference, now)
        if api_method == QUERY:
            if trade is None or not trade.exists:
                raise errors.trade_not_exist(
                    buyer_pay_amount="0.00",
                    invoice_amount="0.00",
                    out_trade_no=reference.out_trade_no,
                    point_amount="0.00",
                    receipt_amount="0.00",
                )
            return {k: v for k, v in trade.query_content().items() if v is not None}
        if trade is None or not trade.exists:
            raise errors.trade_not_exist()
        if trade.status is not TradeStatus.WAIT_BUYER_PAY:
            raise errors.business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.apply(TradeEvent.CLOSE)
        trade.gmt_close = now
        return {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
        }

    def _refund_call(
        self, app: App, api_method: str, params: dict[str, str], now: dt.datetime
    ) -> dict[str, Any]:
        if api_method == REFUND_QUERY:
            asked = _parse_biz(RefundQuery, params)
            reference = TradeReference(out_trade_no=asked.out_trade_no, trade_no=asked.trade_no)
            return refunds.query(self._find(app, reference, now), asked)
        request = _parse_biz(RefundCreate, params)
        reference = TradeReference(out_trade_no=request.out_trade_no, trade_no=request.trade_no)
        trade = self._find(app, reference, now)
        content, made = refunds.refund(trade, request, now, _notify_id(now))
        if trade is not None and made is not None:
            self._notify_refund(app, trade, made)
        return {k: v for k, v in content.items() if v is not None}

    def _trades_net(self, app_id: str) -> int:
        """What the app's paid trades brought in, less their refunds (the transfer balance)."""
        return sum(
            trade.paid_total_fen - trade.refunded_fen
            for (owner, _), trade in self.trades.by_key.items()
            if owner == app_id and trade.gmt_payment is not None
        )

    def _find(self, app: App, reference: TradeReference, now: dt.datetime) -> Trade | None:
        if reference.trade_no:  # Alipay's rule: trade_no wins when both are given
            trade = self.trades.get_by_trade_no(app.app_id, reference.trade_no)
        else:
            trade = self.trades.get(app.app_id, reference.out_trade_no or "")
        if trade is not None:
            trade.refresh(now)
        return trade

    def create(self, app: App, api_method: str, params: dict[str, str], now: dt.datetime) -> Trade:
        """A QR code (precreate) or an opened cashier (page/wap): not a trade until scanned.

        The same out_trade_no with the same parameters gives the same QR code / cashier again.
        """
        request = _parse_biz(TradeCreate, params)
        if request.product_code not in PRODUCT_CODES[api_method]:
            raise errors.invalid_parameter(f"product_code {request.product_code} 不支持")
        if request.seller_id is not None and request.seller_id != app.seller_id:
            raise errors.invalid_parameter("seller_id 与 app_id 对应的收款账户不一致")
        notify_url = params.get("notify_url") or None
        if notify_url is not None:
            parts = urlsplit(notify_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise errors.invalid_parameter("notify_url 必须是 http(s) 地址")
        identity = request.identity(api_method)
        existing = self.trades.get(app.app_id, request.out_trade_no)
        if existing is not None:
            status = existing.refresh(now)
            if status is TradeStatus.TRADE_FINISHED:
                raise errors.business("ACQ.TRADE_HAS_FINISHED", "交易已经完结")
            if status in PAID:
                raise errors.business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if status in (TradeStatus.TRADE_CLOSED, TradeStatus.LAPSED):
                raise errors.business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if existing.identity != identity:
                raise errors.business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            return existing
        expire_at = request.expire_at(now)
        if expire_at is not None and expire_at <= now:
            raise errors.invalid_parameter("time_expire 不能早于当前时间")
        trade = Trade(
            app_id=app.app_id,
            seller_id=app.seller_id,
            out_trade_no=request.out_trade_no,
            api_method=api_method,
            identity=identity,
            notify_url=notify_url,
            total_fen=request.total_amount,
            subject=request.subject,
            body=request.body,
            passback_params=request.passback_params,
            created_at=now,
            expire_at=expire_at,
        )
        if api_method == PRECREATE:
            trade.qr_code = "https://qr.alipay.com/bax" + random_lower_alnum(21)
        self.trades.add(trade)
        return trade

    # -- the sandbox admin API -------------------------------------------------------------

    def alipay_public_key_pem(self) -> str:
        return public_key_pem(self.key.public_key())

    async def register_app(self, request: RegisterApp) -> dict[str, str]:
        async with self._apps_lock:
            if self._key is None:
                self._key = await asyncio.to_thread(self.store.load_or_create_key)
            existing = self.apps.get(request.app_id)
            seller_id = (
                request.seller_id
                or (existing.seller_id if existing else None)
                or "2088" + random_digits(12)
            )
            fee_rate = request.fee_rate or (existing.fee_rate if existing else DEFAULT_FEE_RATE)
            app = App.from_record(
                {
                    "app_id": request.app_id,
                    "seller_id": seller_id,
                    "app_public_key_pem": request.app_public_key_pem,
                    "fee_rate": str(fee_rate),
                }
            )
            self.apps[app.app_id] = app
            records = [a.to_record() for a in self.apps.values()]
            await asyncio.to_thread(self.store.save_apps, records)
        return {
            "app_id": app.app_id,
            "seller_id": app.seller_id,
            "alipay_public_key_pem": self.alipay_public_key_pem(),
            "fee_rate": str(app.fee_rate),
        }

    def _admin_trade(self, app_id: str | None, out_trade_no: str) -> tuple[App, Trade]:
        if not app_id:
            found = self.trades.find(out_trade_no)
            if len(found) > 1:
                raise AdminError(409, "AMBIGUOUS", "several apps have this order; give app_id")
            if not found:
                raise AdminError(404, "TRADE_NOT_EXIST", "no such order")
            app_id = found[0].app_id
        app = self.apps.get(app_id)
        trade = self.trades.get(app_id, out_trade_no) if app is not None else None
        if app is None or trade is None:
            raise AdminError(404, "TRADE_NOT_EXIST", "no such order for this app_id")
        return app, trade

    def order_view(self, app_id: str | None, out_trade_no: str, now: dt.datetime) -> dict[str, Any]:
        return self._admin_trade(app_id, out_trade_no)[1].admin_view(now)

    def pay(self, out_trade_no: str, request: PayOrder, now: dt.datetime) -> dict[str, Any]:
        """Play the buyer: scan (the trade now exists), then pay or not, then notify."""
        app, trade = self._admin_trade(request.app_id, out_trade_no)
        status = trade.refresh(now)
        if status in (TradeStatus.TRADE_CLOSED, TradeStatus.LAPSED):
            raise AdminError(409, "TRADE_HAS_CLOSE", "the trade is closed")
        if status in PAID:
            if not (request.again and request.outcome == "success"):
                raise AdminError(409, "TRADE_HAS_SUCCESS", "already paid; again=true re-notifies")
            self._notify(app, trade)
            return trade.admin_view(now)
        trade.apply(TradeEvent.SCAN)
        if trade.trade_no is None:
            trade.trade_no = _trade_no(now)
            trade.buyer_id = "2088" + random_digits(12)
            trade.buyer_logon_id = "buy***@sandbox.com"
            trade.gmt_create = now
            self.trades.index_trade_no(trade)
        if request.outcome == "success":
            trade.apply(TradeEvent.PAY)
            trade.gmt_payment = now
            trade.paid_fen = request.paid_amount
            trade.notify_id = _notify_id(now)
            self._notify(app, trade)
        # Alipay sends no notification for a scan or a failed attempt (WAIT_BUYER_PAY).
        return trade.admin_view(now)

    # -- notifications ---------------------------------------------------------------------

    def notification_body(self, trade: Trade, fields: dict[str, str]) -> bytes:
        """The form of one send: fields with this send's notify_time, signed over all fields
        but sign and sign_type (empty ones included)."""
        fields = fields | {"notify_time": _beijing_now()}
        content = content_to_sign(fields.items(), exclude=("sign", "sign_type"), skip_empty=False)
        fields["sign"] = rsa2_sign(self.key, content.encode("utf-8"))
        return urlencode(fields).encode("ascii")

    def _notify(self, app: App, trade: Trade) -> None:
        self._send(app, trade, trade.notification_fields(dt.datetime.now(dt.UTC)))

    def _notify_refund(self, app: App, trade: Trade, made: Refund) -> None:
        fields = refunds.notification_fields(trade, made, dt.datetime.now(dt.UTC))
        self._send(app, trade, fields, made.notify_attempts)

    def _send(
        self,
        app: App,
        trade: Trade,
        fields: dict[str, str],
        attempts: list[dict[str, Any]] | None = None,
    ) -> None:
        """Send one notification to the trade's notify_url on Alipay's schedule (refunds are
        reported there too: a refund request carries no notify_url of its own)."""
        if trade.notify_url is None:
            return
        plan = self.faults.plan_for(app.app_id)
        if self.faults.strikes(plan.lose_callbacks):
            trade.notifies_lost += 1
            return
        log = trade.notify_attempts if attempts is None else attempts

        def record(attempt: CallbackAttempt) -> None:
            log.append(notify_record(attempt))

        self.callbacks.start(
            CallbackJob(
                url=trade.notify_url,
                body_for=lambda: self.notification_body(trade, fields),
                headers_for=lambda body: FORM_HEADERS,
                record=record,
                retry_delays_s=ALIPAY_NOTIFY_DELAYS_S,
                acknowledgement=ALIPAY_ACK,
                duplicate=plan.duplicate_callbacks,
            )
        )


def _beijing_now() -> str:
    return dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _parse_biz(model: type[_Biz], params: dict[str, str]) -> _Biz:
    text = params.get("biz_content")
    if not text:
        raise errors.invalid_parameter("缺少 biz_content")
    try:
        return model.model_validate(load_biz_content(text))
    except (ValueError, ValidationError) as exc:
        raise errors.invalid_parameter(first_issue(exc)) from None


ALIPAY_SANDBOX = web.AppKey("alipay_sandbox", AlipaySandbox)
