"""WeChat Pay API v3 adapter: Native (QR), JSAPI, App and H5 payments, domestic refunds, trade
bills, and payment and refund callbacks, for one merchant account.

Builds signed requests and verifies/parses answers and callbacks as pure functions of data. The
wire messages live in ``channels.wechatpay_wire`` (payments), ``channels.wechatpay_refunds`` and
``channels.wechatpay_bills``; keys and signatures in ``channels.wechatpay_auth``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import TypeVar
from urllib.parse import quote, urlsplit

import orjson
from pydantic import BaseModel, ValidationError

from channels import wechatpay_bills as bills
from channels import wechatpay_payouts as payouts
from channels import wechatpay_prepay as prepay
from channels import wechatpay_refunds as refunds
from channels import wechatpay_wire as wire
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
    CallbackRejected,
    ChannelFatal,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from channels.wechatpay_auth import (
    AUTH_SCHEME,
    CHINA_TZ,
    DEFAULT_BASE_URL,
    MAX_CLOCK_SKEW_SECONDS,
    SIGNATURE_TYPE,
    SIGNTEST_PREFIX,
    USER_AGENT,
    SignatureRejected,
    WechatPayConfig,
    decrypt_resource,
    format_time_expire,
    random_nonce,
    sign_request,
    verify_response_signature,
)
from channels.wechatpay_prepay import METHODS

__all__ = [
    "AUTH_SCHEME",
    "CHINA_TZ",
    "DEFAULT_BASE_URL",
    "MAX_CLOCK_SKEW_SECONDS",
    "METHODS",
    "SIGNATURE_TYPE",
    "SIGNTEST_PREFIX",
    "SignatureRejected",
    "WechatPay",
    "WechatPayConfig",
    "format_time_expire",
    "from_credentials",
    "random_nonce",
    "sign_request",
    "verify_response_signature",
]


_Model = TypeVar("_Model", bound=BaseModel)


class WechatPay:
    """WeChat Pay v3 for one merchant account (the ``Channel`` protocol)."""

    name = "wechatpay"

    def __init__(
        self,
        config: WechatPayConfig,
        *,
        nonce_factory: Callable[[], str] | None = None,
        payout_settings: payouts.PayoutSettings | None = None,
    ) -> None:
        self.config = config
        self._nonce_factory = nonce_factory or random_nonce
        # The merchant's transfer scene; without one the account cannot pay out.
        self.payout_settings = payout_settings

    # -- payments ----------------------------------------------------------------------------

    def build_create(self, order: CreateOrder, *, now: datetime) -> HttpRequest:
        path, payload = prepay.prepay_request(self.config, order)
        return self._signed("POST", path, wire.to_json(payload), now)

    def parse_create(
        self,
        response: HttpResponse,
        *,
        now: datetime,
        order: CreateOrder | None = None,
        method: str | None = None,
    ) -> PrepayResult:
        """The credential for the shopper.

        JSAPI and App answers are the same ``{"prepay_id"}``: the method comes from ``order``
        (or ``method``). Without either, a prepay id gets the
        parameters of both front-ends (JSAPI's ``appId``/``timeStamp``/``nonceStr``/``package``/
        ``signType``/``paySign`` and App's ``appid``/``partnerid``/``prepayid``/``noncestr``/
        ``timestamp``/``sign``, whose fixed ``package`` is ``Sign=WXPay``).
        """
        self._verify(response, now)
        if method is None and order is not None:
            method = order.method
        if response.status == 200:
            found = prepay.credential(
                self.config,
                response.body,
                method=method,
                timestamp=str(int(now.timestamp())),
                nonce=self._nonce_factory(),
            )
            if found is not None:
                return PrepayResult(credential=found)
        raise wire.classify_failure(response)

    def build_query(
        self, out_trade_no: str, *, channel_trade_no: str | None = None, now: datetime
    ) -> HttpRequest:
        path = f"{_order_path(out_trade_no)}?mchid={quote(self.config.mchid, safe='')}"
        return self._signed("GET", path, b"", now)

    def parse_query(self, response: HttpResponse, *, now: datetime) -> TradeStatus:
        self._verify(response, now)
        if response.status == 200:
            transaction = wire.load(wire.Transaction, response.body)
            if transaction is not None:
                status = wire.to_trade_status(transaction)
                if status is None:
                    raise ChannelUnknownOutcome(
                        "UNKNOWN_TRADE_STATE",
                        f"unknown trade_state {transaction.trade_state!r}",
                        http_status=response.status,
                    )
                return status
        raise wire.classify_failure(response)

    def build_close(
        self, out_trade_no: str, *, channel_trade_no: str | None = None, now: datetime
    ) -> HttpRequest:
        body = wire.to_json(wire.CloseRequest(mchid=self.config.mchid))
        return self._signed("POST", f"{_order_path(out_trade_no)}/close", body, now)

    def parse_close(self, response: HttpResponse, *, now: datetime) -> None:
        self._verify(response, now)
        if response.status == 204:
            return
        failure = wire.classify_failure(response)
        if failure.code == "ORDER_CLOSED":  # closing a closed order: it is closed
            return
        raise failure

    # -- refunds -----------------------------------------------------------------------------

    def build_refund(self, refund: CreateRefund, *, now: datetime) -> HttpRequest:
        # By out_trade_no always: it is what payfront knows for sure, and sending the same
        # number every time keeps a repeated refund identical (WeChat's refund idempotency).
        payload = refunds.RefundRequest(
            out_trade_no=refund.out_trade_no,
            out_refund_no=refund.out_refund_no,
            reason=refund.reason or None,
            notify_url=refund.notify_url,
            amount=refunds.RefundRequestAmount(
                refund=refund.refund_minor,
                total=refund.total_minor,
                currency=refund.currency.upper(),
            ),
        )
        return self._signed("POST", refunds.REFUNDS_PATH, wire.to_json(payload), now)

    def parse_refund(
        self, response: HttpResponse, *, now: datetime, refund: CreateRefund | None = None
    ) -> RefundStatus:
        status = self._refund_answer(response, now)
        if refund is not None and status.out_refund_no != refund.out_refund_no:
            raise ChannelUnknownOutcome(
                "REFUND_NUMBER_MISMATCH",
                f"answer is about {status.out_refund_no!r}, not {refund.out_refund_no!r}",
                http_status=response.status,
            )
        return status

    def build_refund_query(
        self,
        out_refund_no: str,
        *,
        out_trade_no: str,
        channel_trade_no: str | None = None,
        channel_refund_no: str | None = None,
        now: datetime,
    ) -> HttpRequest:
        path = f"{refunds.REFUNDS_PATH}/{quote(out_refund_no, safe='*@|')}"
        return self._signed("GET", path, b"", now)

    def parse_refund_query(
        self, response: HttpResponse, *, out_refund_no: str, now: datetime
    ) -> RefundStatus:
        status = self._refund_answer(response, now)
        if status.out_refund_no != out_refund_no:
            raise ChannelUnknownOutcome(
                "REFUND_MISMATCH",
                f"asked for refund {out_refund_no!r}, got {status.out_refund_no!r}",
                http_status=response.status,
            )
        return status

    def _refund_answer(self, response: HttpResponse, now: datetime) -> RefundStatus:
        self._verify(response, now)
        if response.status == 200:
            refund = wire.load(refunds.Refund, response.body)
            if refund is not None:
                status = refunds.to_refund_status(refund)
                if status is None:
                    raise ChannelUnknownOutcome(
                        "UNKNOWN_REFUND_STATE",
                        f"unknown refund status {refund.state!r}",
                        http_status=response.status,
                    )
                return status
        raise refunds.classify_refund_failure(response)

    # -- payouts (merchant transfers) --------------------------------------------------------

    def build_payout(self, payout: CreatePayout, *, now: datetime) -> HttpRequest:
        if self.payout_settings is None:
            raise ChannelFatal(
                "PAYOUT_NOT_SUPPORTED", "no transfer_scene_id is configured for this merchant"
            )
        body = payouts.transfer_request(
            self.config.appid,
            self.payout_settings,
            payout,
            encrypt=lambda text: payouts.encrypt_sensitive(self.config.platform_public_key, text),
        )
        # Wechatpay-Serial (always sent) names the platform key the user_name is sealed with.
        return self._signed("POST", payouts.TRANSFER_BILLS_PATH, wire.to_json(body), now)

    def parse_payout(
        self, response: HttpResponse, *, payout: CreatePayout, now: datetime
    ) -> PayoutStatus:
        status = self._payout_answer(response, now)
        if status.out_payout_no != payout.out_payout_no:
            raise ChannelUnknownOutcome(
                "PAYOUT_NUMBER_MISMATCH",
                f"answer is about {status.out_payout_no!r}, not {payout.out_payout_no!r}",
                http_status=response.status,
            )
        # The create answer carries no amount; it is the one asked for.
        return replace(status, amount_minor=status.amount_minor or payout.amount_minor)

    def build_payout_query(
        self, out_payout_no: str, *, channel_payout_no: str | None = None, now: datetime
    ) -> HttpRequest:
        return self._signed("GET", payouts.QUERY_PATH + quote(out_payout_no, safe=""), b"", now)

    def parse_payout_query(
        self, response: HttpResponse, *, out_payout_no: str, now: datetime
    ) -> PayoutStatus:
        status = self._payout_answer(response, now)
        if status.out_payout_no != out_payout_no:
            raise ChannelUnknownOutcome(
                "PAYOUT_MISMATCH",
                f"asked for payout {out_payout_no!r}, got {status.out_payout_no!r}",
                http_status=response.status,
            )
        return status

    def _payout_answer(self, response: HttpResponse, now: datetime) -> PayoutStatus:
        self._verify(response, now)
        if response.status == 200:
            bill = wire.load(payouts.TransferBill, response.body)
            if bill is not None:
                status = payouts.to_payout_status(bill)
                if status is None:
                    raise ChannelUnknownOutcome(
                        "UNKNOWN_PAYOUT_STATE",
                        f"unknown transfer bill state {bill.state!r}",
                        http_status=response.status,
                    )
                return status
        raise payouts.classify_payout_failure(response)

    # -- statements --------------------------------------------------------------------------

    def build_statement(self, day: date, *, now: datetime) -> HttpRequest:
        # GZIP: a busy day's bill is large and compresses ~6x; hash_value is over the inflated
        # file either way.
        query = f"bill_date={day.isoformat()}&bill_type=ALL&tar_type=GZIP"
        return self._signed("GET", f"{bills.TRADEBILL_PATH}?{query}", b"", now)

    def parse_statement(
        self, response: HttpResponse, *, cursor: Mapping[str, str], now: datetime
    ) -> StatementPage:
        """Step 1 (empty cursor): the signed tradebill answer → the signed download request.
        Step 2: the (unsigned) file, checked against the answer's SHA1, parsed into lines."""
        if "hash_value" in cursor:
            return bills.parse_download(response, cursor)
        self._verify(response, now)
        if response.status == 200:
            answer = wire.load(bills.TradebillAnswer, response.body)
            if answer is not None:
                origin, path = bills.download_target(self.config.base_url, answer.download_url)
                return StatementPage(
                    next_request=self._signed("GET", path, b"", now, origin=origin),
                    cursor={"hash_type": answer.hash_type, "hash_value": answer.hash_value},
                )
        failure = wire.classify_failure(response)
        if failure.code == "NO_STATEMENT_EXIST":
            # WeChat makes no bill for a day without payments or refunds: an empty statement.
            return StatementPage()
        if failure.code == "STATEMENT_CREATING":  # the bill is made after 9:00 the next day
            raise ChannelRetryable(failure.code, failure.message, http_status=failure.http_status)
        raise failure

    # -- signing and verification ------------------------------------------------------------

    def _signed(
        self, method: str, path: str, body: bytes, now: datetime, *, origin: str | None = None
    ) -> HttpRequest:
        url = (origin or self.config.base_url) + path
        split = urlsplit(url)
        signed_path = split.path + (f"?{split.query}" if split.query else "")
        timestamp = int(now.timestamp())
        nonce = self._nonce_factory()
        signature = sign_request(
            self.config.merchant_private_key, method, signed_path, timestamp, nonce, body
        )
        authorization = (
            f'{AUTH_SCHEME} mchid="{self.config.mchid}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{timestamp}",'
            f'serial_no="{self.config.merchant_serial_no}"'
        )
        headers = {
            "Authorization": authorization,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            # Tells WeChat which platform key to answer with (public-key mode).
            "Wechatpay-Serial": self.config.platform_public_key_id,
        }
        if method != "GET":
            headers["Content-Type"] = "application/json"
        return HttpRequest(method=method, url=url, headers=headers, body=body)

    def _verify(self, response: HttpResponse, now: datetime) -> None:
        try:
            verify_response_signature(response.headers, response.body, now, config=self.config)
        except SignatureRejected as exc:
            # The unverified code is only a hint for whoever reads the logs.
            unverified = wire.load(wire.ErrorBody, response.body)
            hint = f" (unverified code {unverified.code})" if unverified else ""
            raise ChannelUnknownOutcome(
                "INVALID_RESPONSE_SIGNATURE",
                f"{exc.reason}: {exc.message}{hint}",
                http_status=response.status,
            ) from exc

    # -- callbacks ---------------------------------------------------------------------------

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, *, now: datetime
    ) -> ChannelEvent:
        verify_response_signature(headers, body, now, config=self.config)
        envelope = wire.load(wire.CallbackEnvelope, body)
        if envelope is None:
            raise CallbackRejected("malformed", "body is not a WeChat Pay notification")
        resource = envelope.resource
        if envelope.resource_type != "encrypt-resource":
            raise CallbackRejected("malformed", f"resource_type {envelope.resource_type!r}")
        if resource.algorithm != "AEAD_AES_256_GCM":
            raise CallbackRejected("unsupported_algorithm", f"algorithm {resource.algorithm!r}")
        if envelope.event_type == payouts.EVENT_TYPE:
            return self._payout_event(envelope, decrypt_resource(self.config.apiv3_key, resource))
        kind = resource.original_type
        if kind is None:
            kind = "refund" if envelope.event_type.startswith("REFUND.") else "transaction"
        if kind not in ("transaction", "refund"):
            raise CallbackRejected("unsupported_resource", f"{resource.original_type!r}")
        if (kind == "refund") != envelope.event_type.startswith("REFUND."):
            raise CallbackRejected("malformed", f"{envelope.event_type} about a {kind}")
        plaintext = decrypt_resource(self.config.apiv3_key, resource)
        if kind == "refund":
            raw, refund = _decoded(plaintext, refunds.Refund, "refund")
            status = refunds.to_refund_status(refund)
            if status is None or refund.refund_status is None:
                raise CallbackRejected("malformed", f"refund_status {refund.refund_status!r}")
            if refund.mchid is not None and refund.mchid != self.config.mchid:
                raise CallbackRejected("wrong_account", f"refund of mchid {refund.mchid!r}")
            return ChannelEvent(
                event_id=envelope.id,
                event_type=envelope.event_type,
                trade=None,
                raw=raw,
                refund=status,
            )
        raw, transaction = _decoded(plaintext, wire.Transaction, "transaction")
        trade = wire.to_trade_status(transaction)
        if trade is None:
            raise CallbackRejected("malformed", f"trade_state {transaction.trade_state!r}")
        return ChannelEvent(
            event_id=envelope.id, event_type=envelope.event_type, trade=trade, raw=raw
        )

    def _payout_event(self, envelope: wire.CallbackEnvelope, plaintext: bytes) -> ChannelEvent:
        if envelope.resource.original_type not in (None, payouts.ORIGINAL_TYPE):
            raise CallbackRejected(
                "malformed", f"{envelope.event_type} about a {envelope.resource.original_type}"
            )
        raw, bill = _decoded(plaintext, payouts.TransferBill, "transfer bill")
        status = payouts.to_payout_status(bill)
        if status is None:
            raise CallbackRejected("malformed", f"transfer bill state {bill.state!r}")
        if bill.merchant is not None and bill.merchant != self.config.mchid:
            raise CallbackRejected("wrong_account", f"transfer of mchid {bill.merchant!r}")
        return ChannelEvent(
            event_id=envelope.id,
            event_type=envelope.event_type,
            trade=None,
            raw=raw,
            payout=status,
        )

    def ack_success(self) -> HttpResponse:
        return HttpResponse(204, {}, b"")

    def ack_failure(self, message: str) -> HttpResponse:
        text = message.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
        body = orjson.dumps({"code": "FAIL", "message": text})
        return HttpResponse(500, {"Content-Type": "application/json"}, body)


def _decoded(plaintext: bytes, model: type[_Model], kind: str) -> tuple[dict[str, object], _Model]:
    try:
        raw = orjson.loads(plaintext)
        return raw, model.model_validate(raw)
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise CallbackRejected("malformed", f"decrypted resource is not a {kind}") from exc


def _order_path(out_trade_no: str) -> str:
    # Percent-encode so the path we sign is the path the HTTP client sends.
    return f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='*')}"


def from_credentials(credentials: Mapping[str, str]) -> WechatPay:
    """The registry's factory: an adapter from an account's decrypted credentials."""
    return WechatPay(
        WechatPayConfig.from_credentials(credentials),
        payout_settings=payouts.PayoutSettings.from_credentials(credentials),
    )
