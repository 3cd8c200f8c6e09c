"""Alipay OpenAPI adapter (RSA2, public-key mode) for QR (``alipay.trade.precreate``), desktop
page (``alipay.trade.page.pay``) and mobile web (``alipay.trade.wap.pay``) payments, their
refunds and the daily trade bill.

Builds signed requests and verifies/parses answers and notifications as pure functions of data;
the signatures live in ``channels.alipay_sign``, the wire messages in ``channels.alipay_wire``
(payments), ``alipay_refunds`` and ``alipay_bills``, notifications in ``alipay_notify``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TypeVar
from urllib.parse import quote, urlencode

import orjson
from pydantic import ValidationError

from channels import alipay_bills as bills
from channels import alipay_payouts as payouts
from channels import alipay_refunds as refunds
from channels import alipay_wire as wire
from channels.alipay_config import DEFAULT_GATEWAY_URL, AlipayConfig
from channels.alipay_notify import SIGN_TYPE, TRADE_NOTIFY_TYPE, parse_notification
from channels.alipay_sign import (
    MalformedAnswer,
    open_answer,
    rsa2_sign,
    rsa2_verify,
    signing_string,
)
from channels.base import (
    ChannelEvent,
    CreateOrder,
    CreatePayout,
    CreateRefund,
    HttpRequest,
    HttpResponse,
    PayoutStatus,
    PrepayResult,
    RefundStatus,
    StatementPage,
    TradeStatus,
)
from channels.errors import (
    ChannelError,
    ChannelFatal,
    ChannelRetryable,
    ChannelUnknownOutcome,
)

__all__ = [
    "DEFAULT_GATEWAY_URL",
    "SIGN_TYPE",
    "TRADE_NOTIFY_TYPE",
    "Alipay",
    "AlipayConfig",
    "from_credentials",
    "response_key",
]

CHARSET = "utf-8"
USER_AGENT = "payfront/0.1 (alipay-openapi)"

# payfront method -> (Alipay API, product_code); only precreate is a server call.
METHODS: Mapping[str, tuple[str, str]] = {
    "qr": ("alipay.trade.precreate", "FACE_TO_FACE_PAYMENT"),
    "page": ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
    "wap": ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
}
PRECREATE = "alipay.trade.precreate"
QUERY = "alipay.trade.query"
CLOSE = "alipay.trade.close"
# A bill (对账单) for day D is made on D+1 in the morning; Alipay advises fetching it after
# 10:00 Beijing time. Before that, isp.bill_not_exist may mean "not made yet", not "no trades".
BILL_READY_HOUR = 10
DOWNLOAD_STEP = "download"

_Answer = TypeVar("_Answer", bound=wire.ResponseStatus)


def response_key(api_method: str) -> str:
    """``alipay.trade.query`` answers under ``alipay_trade_query_response``."""
    return api_method.replace(".", "_") + "_response"


class Alipay:
    """Alipay payments for one application (the ``Channel`` protocol)."""

    name = "alipay"

    def __init__(self, config: AlipayConfig, *, cert_mode: payouts.CertMode | None = None) -> None:
        self.config = config
        # Public-key-certificate mode: every request carries the two certificate SNs, and
        # ``config.alipay_public_key`` is the Alipay public key certificate's key.
        self.cert_mode = cert_mode

    # -- requests ----------------------------------------------------------------------------

    def build_create(self, order: CreateOrder, *, now: datetime) -> HttpRequest | PrepayResult:
        try:
            api_method, product_code = METHODS[order.method]
        except KeyError:
            known = ", ".join(sorted(METHODS))
            raise ChannelFatal(
                "METHOD_NOT_SUPPORTED", f"alipay supports {known}, not {order.method!r}"
            ) from None
        if order.currency.upper() != wire.CURRENCY:
            raise ChannelFatal("CURRENCY_NOT_SUPPORTED", f"alipay takes CNY, not {order.currency}")
        try:
            total_amount = wire.to_yuan(order.amount_minor)
        except ValueError as exc:
            raise ChannelFatal("INVALID_AMOUNT", str(exc)) from exc
        biz_content = wire.TradeBizContent(
            out_trade_no=order.out_trade_no,
            total_amount=total_amount,
            subject=order.description,
            product_code=product_code,
            seller_id=self.config.seller_id,
            # Absolute, so a repeated create carries identical parameters (timeout_express
            # would be relative to each call).
            time_expire=wire.format_time(order.expires_at) if order.expires_at else None,
            # Alipay documents passback_params as URL-encoded by the merchant.
            passback_params=quote(order.attach, safe="") if order.attach else None,
        )
        if api_method != PRECREATE:
            # page/wap: the shopper's browser opens this signed GET; nothing is sent from here.
            params = self.common_params(
                api_method, wire.to_json(biz_content), now, notify_url=order.notify_url
            )
            params["sign"] = self.sign(params)
            return PrepayResult(
                credential={"pay_url": f"{self.config.gateway_url}?{urlencode(params)}"}
            )
        return self._server_call(api_method, wire.to_json(biz_content), now, order.notify_url)

    def build_query(
        self, out_trade_no: str, *, channel_trade_no: str | None = None, now: datetime
    ) -> HttpRequest:
        biz_content = wire.TradeReference(out_trade_no=out_trade_no, trade_no=channel_trade_no)
        return self._server_call(QUERY, wire.to_json(biz_content), now)

    def build_close(
        self, out_trade_no: str, *, channel_trade_no: str | None = None, now: datetime
    ) -> HttpRequest:
        biz_content = wire.TradeReference(out_trade_no=out_trade_no, trade_no=channel_trade_no)
        return self._server_call(CLOSE, wire.to_json(biz_content), now)

    def build_refund(self, refund: CreateRefund, *, now: datetime) -> HttpRequest:
        # No notify_url: Alipay reports refunds to the trade's own notify_url.
        biz_content = refunds.refund_biz_content(refund)
        return self._server_call(refunds.REFUND, wire.to_json(biz_content), now)

    def build_refund_query(
        self,
        out_refund_no: str,
        *,
        out_trade_no: str,
        channel_trade_no: str | None = None,
        channel_refund_no: str | None = None,
        now: datetime,
    ) -> HttpRequest:
        # Alipay finds a refund by the trade and out_request_no; it has no refund id of its own.
        biz_content = refunds.refund_query_biz_content(out_refund_no, out_trade_no)
        return self._server_call(refunds.REFUND_QUERY, wire.to_json(biz_content), now)

    def build_statement(self, day: date, *, now: datetime) -> HttpRequest:
        biz_content = orjson.dumps(bills.bill_biz_content(day)).decode("utf-8")
        return self._server_call(bills.BILL_QUERY, biz_content, now)

    def build_payout(self, payout: CreatePayout, *, now: datetime) -> HttpRequest:
        if self.cert_mode is None:
            # Alipay refuses transfers from apps in public-key mode.
            raise ChannelFatal(
                "PAYOUT_NOT_SUPPORTED",
                "alipay transfers need the app in public-key-certificate mode "
                "(app_cert_pem, alipay_cert_pem, alipay_root_cert_pem)",
            )
        biz_content = payouts.transfer_biz_content(payout)
        return self._server_call(payouts.TRANSFER, wire.to_json(biz_content), now)

    def build_payout_query(
        self, out_payout_no: str, *, channel_payout_no: str | None = None, now: datetime
    ) -> HttpRequest:
        biz_content = payouts.transfer_query_biz_content(out_payout_no)
        return self._server_call(payouts.TRANSFER_QUERY, wire.to_json(biz_content), now)

    def common_params(
        self, api_method: str, biz_content: str, now: datetime, *, notify_url: str | None = None
    ) -> dict[str, str]:
        """Every parameter of one call except ``sign``; empty ones are left out."""
        params = {
            "app_id": self.config.app_id,
            "method": api_method,
            "format": "JSON",
            "charset": CHARSET,
            "sign_type": SIGN_TYPE,
            "timestamp": wire.format_time(now),
            "version": "1.0",
            "notify_url": notify_url or "",
            "biz_content": biz_content,
        }
        if self.cert_mode is not None:
            params["app_cert_sn"] = self.cert_mode.app_cert_sn
            params["alipay_root_cert_sn"] = self.cert_mode.alipay_root_cert_sn
        return {key: value for key, value in params.items() if value}

    def sign(self, params: Mapping[str, str]) -> str:
        """RSA2 over every non-empty parameter but ``sign``, sorted, ``k=v&…``, UTF-8."""
        message = signing_string(params.items(), exclude=("sign",), skip_empty=True)
        return rsa2_sign(self.config.app_private_key, message.encode(CHARSET))

    def _server_call(
        self, api_method: str, biz_content: str, now: datetime, notify_url: str | None = None
    ) -> HttpRequest:
        # The official SDKs' transport: common parameters (charset among them, so the gateway
        # knows how to read the rest) in the URL, biz_content in the form body.
        params = self.common_params(api_method, biz_content, now, notify_url=notify_url)
        params["sign"] = self.sign(params)
        body = urlencode({"biz_content": params.pop("biz_content")}).encode("ascii")
        return HttpRequest(
            method="POST",
            url=f"{self.config.gateway_url}?{urlencode(params)}",
            headers={
                "Content-Type": f"application/x-www-form-urlencoded;charset={CHARSET}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            body=body,
        )

    # -- answers -----------------------------------------------------------------------------

    def parse_create(
        self, response: HttpResponse, *, now: datetime, order: CreateOrder | None = None
    ) -> PrepayResult:
        answer = self._answer(response, PRECREATE, wire.PrecreateResponse)
        if not answer.qr_code:
            raise ChannelUnknownOutcome(
                "UNEXPECTED_RESPONSE", "precreate succeeded without a qr_code", http_status=200
            )
        return PrepayResult(credential={"qr_code": answer.qr_code})

    def parse_query(self, response: HttpResponse, *, now: datetime) -> TradeStatus:
        answer = self._answer(response, QUERY, wire.QueryResponse)
        status = wire.query_to_trade_status(answer)
        if status is None:
            raise ChannelUnknownOutcome(
                "UNKNOWN_TRADE_STATE",
                f"query answer without a usable trade (trade_status {answer.trade_status!r}, "
                f"total_amount {answer.total_amount!r})",
                http_status=response.status,
            )
        return status

    def parse_close(self, response: HttpResponse, *, now: datetime) -> None:
        try:
            self._answer(response, CLOSE, wire.CloseResponse)
        except ChannelFatal as exc:
            if exc.code == "ACQ.TRADE_HAS_CLOSE":  # closing a closed trade: it is closed
                return
            if exc.code == "ACQ.TRADE_STATUS_ERROR":
                # alipay.trade.close refuses any trade not waiting for payment with this one
                # code: already closed, or paid. The answer cannot say which; the query can.
                raise ChannelUnknownOutcome(
                    exc.code,
                    "the trade is not waiting for payment (closed or paid): query it",
                    http_status=exc.http_status,
                ) from exc
            raise

    def parse_refund(
        self, response: HttpResponse, *, now: datetime, refund: CreateRefund | None = None
    ) -> RefundStatus:
        """Verify a refund answer (see ``Channel.parse_refund``).

        Alipay's answer names neither the refund nor its amount (``refund_fee`` is the trade's
        total refunded): pass the ``refund`` it answers to have ``out_refund_no`` and
        ``amount_minor`` filled in; without it ``out_refund_no`` is "" (unknown).
        """
        answer = self._answer(
            response, refunds.REFUND, refunds.RefundResponse, refunds.REFUND_SUB_CODE_CLASSES
        )
        return refunds.refund_answer_status(answer, refund, http_status=response.status)

    def parse_refund_query(
        self, response: HttpResponse, *, out_refund_no: str, now: datetime
    ) -> RefundStatus:
        answer = self._answer(
            response,
            refunds.REFUND_QUERY,
            refunds.RefundQueryResponse,
            refunds.REFUND_SUB_CODE_CLASSES,
        )
        return refunds.refund_query_status(answer, out_refund_no, http_status=response.status)

    def parse_payout(
        self, response: HttpResponse, *, payout: CreatePayout, now: datetime
    ) -> PayoutStatus:
        answer = self._answer(
            response,
            payouts.TRANSFER,
            payouts.TransferResponse,
            payouts.PAYOUT_SUB_CODE_CLASSES,
        )
        return payouts.transfer_answer_status(answer, payout, http_status=response.status)

    def parse_payout_query(
        self, response: HttpResponse, *, out_payout_no: str, now: datetime
    ) -> PayoutStatus:
        answer = self._answer(
            response,
            payouts.TRANSFER_QUERY,
            payouts.TransferQueryResponse,
            payouts.PAYOUT_SUB_CODE_CLASSES,
        )
        return payouts.transfer_query_status(answer, out_payout_no, http_status=response.status)

    def parse_statement(
        self, response: HttpResponse, *, cursor: Mapping[str, str], now: datetime
    ) -> StatementPage:
        """Two steps: the download-URL answer gives the request for the file (valid 30 s, so
        send it at once); the file (a zip) gives the day's lines."""
        if cursor.get("step") == DOWNLOAD_STEP:
            if response.status != 200:
                snippet = response.body[:200].decode("utf-8", "replace")
                raise ChannelRetryable("BILL_DOWNLOAD_FAILED", snippet, http_status=response.status)
            return StatementPage(lines=bills.parse_archive(response.body))
        try:
            answer = self._answer(response, bills.BILL_QUERY, bills.BillUrlResponse)
        except ChannelFatal as exc:
            if exc.code != bills.BILL_NOT_EXIST:
                raise
            return self._no_bill(exc, now)
        if not answer.bill_download_url:
            raise ChannelUnknownOutcome(
                "UNEXPECTED_RESPONSE", "bill answer without bill_download_url", http_status=200
            )
        download = HttpRequest(
            method="GET", url=answer.bill_download_url, headers={"User-Agent": USER_AGENT}
        )
        return StatementPage(next_request=download, cursor={"step": DOWNLOAD_STEP})

    def _no_bill(self, exc: ChannelFatal, now: datetime) -> StatementPage:
        # isp.bill_not_exist means "no trades" or "not made yet"; the answer does not say
        # which day was asked for, so the hour of asking tells them apart: before 10:00 the
        # bill (at most yesterday's can exist) may be merely not made yet.
        local = now.astimezone(wire.CHINA_TZ)
        if local.hour < BILL_READY_HOUR:
            raise ChannelRetryable(
                "BILL_NOT_READY", f"{exc.message} (bills are ready after 10:00 Beijing time)"
            )
        return StatementPage()

    def _answer(
        self,
        response: HttpResponse,
        api_method: str,
        model: type[_Answer],
        sub_code_classes: Mapping[str, type[ChannelError]] = wire.SUB_CODE_CLASSES,
    ) -> _Answer:
        """Verify an answer over the exact bytes of its ``…_response`` member and return it
        if its code is 10000; otherwise raise the classified ``ChannelError``."""
        status = response.status
        if status != 200:
            # Alipay answers every call with 200; anything else came from in between.
            error_class = ChannelRetryable if status == 429 else ChannelUnknownOutcome
            snippet = response.body[:200].decode("utf-8", "replace")
            raise error_class(f"HTTP_{status}", snippet, http_status=status)
        try:
            opened = open_answer(response.body, response_key(api_method))
        except MalformedAnswer as exc:
            raise ChannelUnknownOutcome("INVALID_RESPONSE", str(exc), http_status=status) from exc
        if opened.sign is None or not rsa2_verify(
            self.config.alipay_public_key, opened.content, opened.sign
        ):
            unverified = _load(wire.ResponseStatus, opened.content)
            hint = (
                f" (unverified {unverified.code} {unverified.sub_code or ''})".rstrip()
                if unverified
                else ""
            )
            reason = "unsigned" if opened.sign is None else "signature does not verify"
            raise ChannelUnknownOutcome(
                "INVALID_RESPONSE_SIGNATURE", reason + hint, http_status=status
            )
        answer = _load(model, opened.content)
        if answer is None:
            raise ChannelUnknownOutcome(
                "INVALID_RESPONSE", f"{opened.response_key} has no code", http_status=status
            )
        if answer.code != wire.SUCCESS_CODE:
            raise wire.classify_failure(
                answer, http_status=status, sub_code_classes=sub_code_classes
            )
        return answer

    # -- notifications -----------------------------------------------------------------------

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, *, now: datetime
    ) -> ChannelEvent:
        return parse_notification(self.config.alipay_public_key, self.config.app_id, headers, body)

    def ack_success(self) -> HttpResponse:
        # Alipay stops re-sending only on exactly these seven characters.
        return HttpResponse(200, {"Content-Type": "text/plain; charset=utf-8"}, b"success")

    def ack_failure(self, message: str) -> HttpResponse:
        # Anything but "success" is retried; "fail" is what Alipay's own demos print.
        return HttpResponse(200, {"Content-Type": "text/plain; charset=utf-8"}, b"fail")


def _load(model: type[_Answer], content: bytes) -> _Answer | None:
    try:
        return model.model_validate(orjson.loads(content))
    except (orjson.JSONDecodeError, ValidationError):
        return None


def from_credentials(credentials: Mapping[str, str]) -> Alipay:
    """The registry's factory: an adapter from an account's decrypted credentials."""
    cert_mode = payouts.CertMode.from_credentials(credentials)
    if cert_mode is not None:
        # In certificate mode Alipay's key is the one its public key certificate holds.
        pem = cert_mode.alipay_public_key_pem()
        credentials = {**credentials, "alipay_public_key_pem": pem}
    return Alipay(AlipayConfig.from_credentials(credentials), cert_mode=cert_mode)
