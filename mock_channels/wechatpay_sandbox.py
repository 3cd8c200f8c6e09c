"""The WeChat Pay v3 emulator's behaviour, apart from HTTP routing: create / query / close
orders the way WeChat answers, sign answers with the platform key, play the shopper, and send
encrypted, signed payment and refund callbacks. Refunds and trade bills keep their rules in
``wechatpay_refunds`` and ``wechatpay_bills`` (called through ``wechatpay_aftersale``).

Error codes follow WeChat's v3 error tables (pay.weixin.qq.com/doc/v3/merchant, "下单" pages:
400 PARAM_ERROR / APPID_MCHID_NOT_MATCH, 401 SIGN_ERROR, 403 OUT_TRADE_NO_USED for a reused
out_trade_no with other parameters, 429 FREQUENCY_LIMITED, 500 SYSTEM_ERROR; 404
ORDER_NOT_EXIST on query; 400 ORDERPAID / ORDER_CLOSED). Close answers 204 even for an unknown
or already closed order, as WeChat does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import secrets
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import ValidationError

from mock_channels.common import SandboxCore
from mock_channels.config import SandboxConfig
from mock_channels.statement_edits import StatementEdits
from mock_channels.wechatpay_auth import check_payment_params
from mock_channels.wechatpay_bills import BillDesk
from mock_channels.wechatpay_crypto import (
    AEAD_ALGORITHM,
    SIGNATURE_TYPE,
    PlatformIdentity,
    aead_encrypt,
    new_nonce,
    public_key_pem,
    random_alnum,
    random_digits,
    response_signing_string,
    rsa_sign,
)
from mock_channels.wechatpay_errors import (
    ApiError,
    order_not_exist,
    param_error,
    parse_json_object,
)
from mock_channels.wechatpay_models import (
    TRADE_TYPES,
    CreateTransaction,
    FieldIssue,
    PayOrder,
    RegisterMerchant,
    first_issue,
    missing_for_trade_type,
)
from mock_channels.wechatpay_notify import deliver, notification_body
from mock_channels.wechatpay_payouts import (
    BillState,
    Transfer,
    TransferDesk,
    transfer_notification_body,
)
from mock_channels.wechatpay_refunds import Refund, RefundDesk, refund_notification_body
from mock_channels.wechatpay_state import (
    BEIJING,
    PAID_STATES,
    Merchant,
    Order,
    OrderBook,
    OrderEvent,
    PlatformMode,
    TradeState,
    rfc3339,
)
from mock_channels.wechatpay_store import WeChatPayStore

# "支付结束时间不能早于下单时间后1分钟": earlier values are moved to one minute after creation.
MIN_ORDER_LIFETIME_S = 60.0


def _transaction_id(now: dt.datetime) -> str:
    """28 digits, shaped like WeChat's ``4200001863202305068344507881``."""
    return (
        "4200" + random_digits(4) + now.astimezone(BEIJING).strftime("%Y%m%d") + random_digits(12)
    )


def _openid() -> str:
    return "o" + secrets.token_urlsafe(21)[:27]


class WeChatPaySandbox(SandboxCore):
    def __init__(self, config: SandboxConfig, rng: random.Random) -> None:
        super().__init__(config, rng)
        self.store = WeChatPayStore(config.state_dir)
        self.merchants: dict[str, Merchant] = {}
        self.orders = OrderBook()
        self.refunds = RefundDesk(time_scale=config.time_scale, notify=self._notify_refund)
        self.bills = BillDesk()
        # Sandbox-only edits of the trade bills it serves (mock_channels.statement_edits).
        self.statement_edits = StatementEdits()
        self.transfers = TransferDesk(time_scale=config.time_scale, notify=self._notify_transfer)
        self._platform: PlatformIdentity | None = None
        self._merchants_lock = asyncio.Lock()
        self._timers: set[asyncio.TimerHandle] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, session: aiohttp.ClientSession) -> None:
        self._platform = await asyncio.to_thread(self.store.load_or_create_platform)
        records = await asyncio.to_thread(self.store.load_merchants)
        self.merchants = {m.mchid: m for m in map(Merchant.from_record, records)}
        self.callbacks.attach_session(session)

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await super().stop()

    @property
    def platform(self) -> PlatformIdentity:
        if self._platform is None:
            raise RuntimeError("the WeChat Pay sandbox has not been started")
        return self._platform

    # -- signatures ------------------------------------------------------------------------

    def platform_serial(self, merchant: Merchant | None) -> str:
        if merchant is not None and merchant.platform_mode is PlatformMode.CERTIFICATE:
            return self.platform.serial_no
        return self.platform.public_key_id

    def signature_headers(self, body: bytes, merchant: Merchant | None) -> dict[str, str]:
        timestamp = str(int(time.time()))
        nonce = new_nonce()
        message = response_signing_string(timestamp, nonce, body)
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": rsa_sign(self.platform.private_key, message),
            "Wechatpay-Serial": self.platform_serial(merchant),
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    # -- faults ----------------------------------------------------------------------------

    def rate_limited(self) -> Exception:
        return ApiError(429, "FREQUENCY_LIMITED", "频率超限，请降低请求接口频率")

    def system_error(self) -> Exception:
        return ApiError(500, "SYSTEM_ERROR", "系统异常，请用相同参数重新调用")

    # -- the v3 API ------------------------------------------------------------------------

    def create_transaction(
        self, merchant: Merchant, product: str, body: bytes, now: dt.datetime
    ) -> dict[str, str]:
        trade_type = TRADE_TYPES[product]
        try:
            request = CreateTransaction.model_validate(parse_json_object(body))
        except ValidationError as exc:
            raise param_error(first_issue(exc)) from None
        if request.mchid != merchant.mchid:
            raise param_error(
                FieldIssue(
                    field="/mchid",
                    issue="与 Authorization 中的商户号不一致",
                    value=request.mchid,
                    has_value=True,
                )
            )
        if request.appid != merchant.appid:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
        missing = missing_for_trade_type(trade_type, request)
        if missing is not None:
            raise param_error(FieldIssue(field=missing, issue="字段缺失 (field required)"))
        params = request.model_dump(mode="json", exclude_none=True)

        existing = self.orders.get(merchant.mchid, request.out_trade_no)
        if existing is not None:
            state = existing.refresh(now)
            if state in PAID_STATES:
                raise ApiError(400, "ORDERPAID", "该订单已支付")
            if state is TradeState.CLOSED:
                raise ApiError(400, "ORDER_CLOSED", "订单已关闭")
            if existing.trade_type != trade_type or existing.params != params:
                raise ApiError(403, "OUT_TRADE_NO_USED", "商户订单号重复")
            return existing.credential

        order = Order(
            mchid=merchant.mchid,
            appid=request.appid,
            out_trade_no=request.out_trade_no,
            trade_type=trade_type,
            params=params,
            credential=self._credential(trade_type, now),
            notify_url=request.notify_url,
            total=request.amount.total,
            currency=request.amount.currency,
            attach=request.attach,
            created_at=now,
            expire_at=self._expire_at(request, now),
        )
        self.orders.add(order)
        return order.credential

    def _expire_at(self, request: CreateTransaction, now: dt.datetime) -> dt.datetime | None:
        requested = request.expire_at()
        if requested is None:
            return None
        earliest = now + dt.timedelta(seconds=MIN_ORDER_LIFETIME_S * self.config.time_scale)
        return max(requested, earliest)

    @staticmethod
    def _credential(trade_type: str, now: dt.datetime) -> dict[str, str]:
        if trade_type == "NATIVE":
            return {"code_url": f"weixin://wxpay/bizpayurl?pr={random_alnum(7)}"}
        prepay_id = f"wx{now.astimezone(BEIJING):%Y%m%d%H%M%S}{secrets.token_hex(10)}"
        if trade_type == "MWEB":
            return {
                "h5_url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb"
                f"?prepay_id={prepay_id}&package={random_digits(10)}"
            }
        return {"prepay_id": prepay_id}

    def _check_mchid_param(self, merchant: Merchant, mchid: str | None, location: str) -> None:
        if not mchid:
            issue = FieldIssue(field="/mchid", issue="字段缺失 (field required)")
            raise ApiError(400, "PARAM_ERROR", f"{location} 缺少 mchid", issue.detail())
        if mchid != merchant.mchid:
            issue = FieldIssue(
                field="/mchid",
                issue="与 Authorization 中的商户号不一致",
                value=mchid,
                has_value=True,
            )
            raise ApiError(400, "PARAM_ERROR", issue.message(), issue.detail())

    def query(
        self,
        merchant: Merchant,
        mchid_param: str | None,
        now: dt.datetime,
        *,
        out_trade_no: str | None = None,
        transaction_id: str | None = None,
    ) -> dict[str, Any]:
        self._check_mchid_param(merchant, mchid_param, "query")
        if out_trade_no is not None:
            order = self.orders.get(merchant.mchid, out_trade_no)
        else:
            order = self.orders.get_by_transaction_id(merchant.mchid, transaction_id or "")
        if order is None:
            raise order_not_exist()
        order.refresh(now)
        return order.transaction_resource()

    def close(self, merchant: Merchant, out_trade_no: str, body: bytes, now: dt.datetime) -> None:
        """204 for an open, already closed or unknown order (WeChat does not check existence
        on close); 400 ORDERPAID once the shopper has paid."""
        data = parse_json_object(body)
        mchid = data.get("mchid")
        self._check_mchid_param(merchant, mchid if isinstance(mchid, str) else None, "body")
        order = self.orders.get(merchant.mchid, out_trade_no)
        if order is None:
            return
        if order.refresh(now) in PAID_STATES:
            raise ApiError(400, "ORDERPAID", "订单已支付")
        order.apply(OrderEvent.CLOSE)

    def certificates(self, merchant: Merchant) -> dict[str, Any]:
        certificate = self.platform.certificate
        sealed = aead_encrypt(
            merchant.apiv3_key, self.platform.certificate_pem().encode("ascii"), "certificate"
        )
        return {
            "data": [
                {
                    "serial_no": self.platform.serial_no,
                    "effective_time": rfc3339(certificate.not_valid_before_utc),
                    "expire_time": rfc3339(certificate.not_valid_after_utc),
                    "encrypt_certificate": {
                        "algorithm": AEAD_ALGORITHM,
                        "nonce": sealed.nonce,
                        "associated_data": sealed.associated_data,
                        "ciphertext": sealed.ciphertext,
                    },
                }
            ]
        }

    # -- the sandbox admin API -------------------------------------------------------------

    async def register_merchant(self, request: RegisterMerchant) -> dict[str, str]:
        merchant = Merchant.from_record(request.model_dump())
        async with self._merchants_lock:
            self.merchants[merchant.mchid] = merchant
            records = [m.to_record() for m in self.merchants.values()]
            await asyncio.to_thread(self.store.save_merchants, records)
        return {
            "mchid": merchant.mchid,
            "platform_public_key_pem": public_key_pem(self.platform.public_key),
            "platform_public_key_id": self.platform.public_key_id,
            "platform_serial_no": self.platform.serial_no,
            "platform_certificate_pem": self.platform.certificate_pem(),
        }

    def _admin_order(self, mchid: str | None, out_trade_no: str) -> tuple[Merchant, Order]:
        if not mchid:
            found = self.orders.find(out_trade_no)
            if len(found) > 1:
                raise ApiError(409, "AMBIGUOUS", "several merchants have this order; give mchid")
            if not found:
                raise ApiError(404, "ORDER_NOT_EXIST", "no such order")
            mchid = found[0].mchid
        merchant = self.merchants.get(mchid)
        order = self.orders.get(mchid, out_trade_no) if merchant is not None else None
        if merchant is None or order is None:
            raise ApiError(404, "ORDER_NOT_EXIST", "no such order for this mchid")
        return merchant, order

    def order_view(self, mchid: str | None, out_trade_no: str, now: dt.datetime) -> dict[str, Any]:
        return self._admin_order(mchid, out_trade_no)[1].admin_view(now)

    def pay(self, out_trade_no: str, request: PayOrder, now: dt.datetime) -> dict[str, Any]:
        """Play the shopper: pay (or fail to pay) the order, then notify as WeChat would."""
        merchant, order = self._admin_order(request.mchid, out_trade_no)
        state = order.refresh(now)
        if state is TradeState.CLOSED:
            raise ApiError(409, "ORDER_CLOSED", "the order is closed")
        if state in PAID_STATES:
            if not (request.again and request.outcome == "success"):
                raise ApiError(409, "ORDERPAID", "already paid; send again=true to re-notify")
            self._notify(merchant, order, now)
            return order.admin_view(now)

        if request.payment_params is not None:
            check_payment_params(
                merchant, order.credential.get("prepay_id"), request.payment_params
            )
        success = request.outcome == "success"
        order.apply(OrderEvent.PAY_SUCCESS if success else OrderEvent.PAY_FAIL)
        order.transaction_id = order.transaction_id or _transaction_id(now)
        payer = order.params.get("payer")
        openid = payer.get("openid") if isinstance(payer, dict) else None  # JSAPI's shopper
        order.payer_openid = order.payer_openid or openid or _openid()
        order.bank_type = "OTHERS"
        self.orders.index_transaction(order)
        if success:
            order.success_time = now
            order.paid_total = request.paid_amount
            order.paid_currency = request.paid_currency
            order.notification_id = str(uuid.uuid4())
            self._notify(merchant, order, now)
        # WeChat sends no TRANSACTION.SUCCESS callback for a failed payment.
        return order.admin_view(now)

    # -- callbacks -------------------------------------------------------------------------

    def notification_body(self, merchant: Merchant, order: Order, now: dt.datetime) -> bytes:
        return notification_body(
            merchant,
            notification_id=order.notification_id or str(uuid.uuid4()),
            event_type="TRANSACTION.SUCCESS",
            summary="支付成功",
            original_type="transaction",
            resource=order.transaction_resource(),
            now=now,
        )

    def _notify(self, merchant: Merchant, order: Order, now: dt.datetime) -> None:
        self.send_notification(
            merchant, order.notify_url, self.notification_body(merchant, order, now), order
        )

    def schedule_refund(self, merchant: Merchant, refund: Refund) -> None:
        """End the refund once its processing delay is over (as the merchant's mode says)."""
        delay = max(0.0, (refund.settle_at - dt.datetime.now(dt.UTC)).total_seconds())

        def due() -> None:
            self._timers.discard(timer)
            now = max(dt.datetime.now(dt.UTC), refund.settle_at)
            self.refunds.refresh(merchant, refund, now)

        timer = asyncio.get_running_loop().call_later(delay, due)
        self._timers.add(timer)

    def _notify_refund(self, merchant: Merchant, refund: Refund, now: dt.datetime) -> None:
        # Without a notify_url WeChat would use the console's refund URL; there is none here.
        if refund.notify_url is not None:
            body = refund_notification_body(merchant, refund, now)
            self.send_notification(merchant, refund.notify_url, body, refund)

    # -- merchant transfers (payouts) ------------------------------------------------------

    def create_transfer(
        self, merchant: Merchant, body: bytes, serial: str | None, now: dt.datetime
    ) -> dict[str, Any]:
        serials = frozenset({self.platform.public_key_id, self.platform.serial_no})
        transfer, new = self.transfers.create(
            merchant, body, serial, (self.platform.private_key, serials), now
        )
        confirm_at = self.transfers.auto_confirm_at(merchant, transfer) if new else None
        if confirm_at is not None:
            self._confirm_later(merchant, transfer, confirm_at)
        return transfer.answer()

    def _confirm_later(self, merchant: Merchant, transfer: Transfer, at: dt.datetime) -> None:
        delay = max(0.0, (at - dt.datetime.now(dt.UTC)).total_seconds())

        def due() -> None:
            self._timers.discard(timer)
            if transfer.state is BillState.WAIT_USER_CONFIRM:
                self.transfers.settle(merchant, transfer, BillState.SUCCESS, at)

        timer = asyncio.get_running_loop().call_later(delay, due)
        self._timers.add(timer)

    def _notify_transfer(self, merchant: Merchant, transfer: Transfer, now: dt.datetime) -> None:
        # Without a notify_url WeChat sends nothing (there is no console default for it).
        if transfer.notify_url is not None:
            body = transfer_notification_body(merchant, transfer, now)
            self.send_notification(merchant, transfer.notify_url, body, transfer)

    def send_notification(
        self, merchant: Merchant, url: str, body: bytes, about: Order | Refund | Transfer
    ) -> None:
        """Deliver a notification about an order or a refund, with the merchant's faults."""
        plan = self.faults.plan_for(merchant.mchid)
        sent = deliver(
            self.callbacks,
            self.faults,
            url=url,
            body=body,
            headers_for=lambda sent: self.signature_headers(sent, merchant),
            attempts=about.callback_attempts,
            lose_rate=plan.lose_callbacks,
            duplicate=plan.duplicate_callbacks,
        )
        if not sent:
            about.callbacks_lost += 1


WECHATPAY_SANDBOX = web.AppKey("wechatpay_sandbox", WeChatPaySandbox)
