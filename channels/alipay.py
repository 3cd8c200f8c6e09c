"""Alipay OpenAPI adapter (RSA2, public-key mode) for QR (``alipay.trade.precreate``), desktop
page (``alipay.trade.page.pay``) and mobile web (``alipay.trade.wap.pay``) payments.

Builds signed requests and verifies/parses answers and notifications as pure functions of data;
the signatures live in ``channels.alipay_sign``, the wire messages in ``channels.alipay_wire``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote, urlencode, urlsplit

import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import (
    load_der_private_key,
    load_der_public_key,
    load_pem_private_key,
    load_pem_public_key,
)
from pydantic import ValidationError

from channels import alipay_wire as wire
from channels.alipay_sign import (
    MalformedAnswer,
    MalformedForm,
    open_answer,
    parse_notify_form,
    rsa2_sign,
    rsa2_verify,
    signing_string,
)
from channels.base import (
    ChannelEvent,
    CreateOrder,
    HttpRequest,
    HttpResponse,
    PrepayResult,
    TradeStatus,
)
from channels.errors import (
    CallbackRejected,
    ChannelFatal,
    ChannelRetryable,
    ChannelUnknownOutcome,
)

DEFAULT_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
SIGN_TYPE = "RSA2"
CHARSET = "utf-8"
USER_AGENT = "payfront/0.1 (alipay-openapi)"
TRADE_NOTIFY_TYPE = "trade_status_sync"

# payfront method -> (Alipay API, product_code); only precreate is a server call.
METHODS: Mapping[str, tuple[str, str]] = {
    "qr": ("alipay.trade.precreate", "FACE_TO_FACE_PAYMENT"),
    "page": ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
    "wap": ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
}
PRECREATE = "alipay.trade.precreate"
QUERY = "alipay.trade.query"
CLOSE = "alipay.trade.close"

_Answer = TypeVar("_Answer", bound=wire.ResponseStatus)


@dataclass(frozen=True)
class AlipayConfig:
    """One Alipay application in public-key mode; keys are parsed objects."""

    app_id: str
    app_private_key: RSAPrivateKey = field(repr=False)
    alipay_public_key: RSAPublicKey = field(repr=False)
    gateway_url: str = DEFAULT_GATEWAY_URL
    seller_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.app_id, str) or not self.app_id or not self.app_id.isprintable():
            raise ValueError("alipay config: app_id must be a non-empty printable string")
        if self.seller_id is not None and (not self.seller_id or not self.seller_id.isprintable()):
            raise ValueError("alipay config: seller_id must be a non-empty printable string")
        if not isinstance(self.app_private_key, RSAPrivateKey):
            raise ValueError("alipay config: app_private_key must be an RSA private key")
        if not isinstance(self.alipay_public_key, RSAPublicKey):
            raise ValueError("alipay config: alipay_public_key must be an RSA public key")
        parts = urlsplit(self.gateway_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("alipay config: gateway_url must be http(s)://host/path, no query")

    @classmethod
    def from_credentials(cls, creds: Mapping[str, str]) -> AlipayConfig:
        """Parse string credentials: PEM keys (or the bare base64 DER Alipay's key tool gives)."""

        def required(key: str) -> str:
            value = creds.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"alipay credentials: {key!r} is missing or empty")
            return value.strip()

        seller_id = creds.get("seller_id")
        return cls(
            app_id=required("app_id"),
            app_private_key=_load_private_key(required("app_private_key_pem")),
            alipay_public_key=_load_public_key(required("alipay_public_key_pem")),
            gateway_url=(creds.get("gateway_url") or DEFAULT_GATEWAY_URL).strip(),
            seller_id=seller_id.strip() if isinstance(seller_id, str) and seller_id else None,
        )


def _key_bytes(text: str) -> tuple[bytes, bool]:
    """``(data, is_pem)``: PEM as is, otherwise the base64 body of a DER key."""
    if "-----BEGIN" in text:
        return text.encode("ascii", "replace"), True
    try:
        return base64.b64decode("".join(text.split()), validate=True), False
    except (binascii.Error, ValueError) as exc:
        raise ValueError("alipay credentials: a key is neither PEM nor base64 DER") from exc


def _load_private_key(text: str) -> RSAPrivateKey:
    data, is_pem = _key_bytes(text)
    try:
        key = load_pem_private_key(data, None) if is_pem else load_der_private_key(data, None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError("alipay credentials: app_private_key_pem is not a private key") from exc
    if not isinstance(key, RSAPrivateKey) or key.key_size < 2048:
        raise ValueError("alipay credentials: the app private key must be RSA (2048+ bits)")
    return key


def _load_public_key(text: str) -> RSAPublicKey:
    data, is_pem = _key_bytes(text)
    try:
        key = load_pem_public_key(data) if is_pem else load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError("alipay credentials: alipay_public_key_pem is not a public key") from exc
    if not isinstance(key, RSAPublicKey) or key.key_size < 2048:
        raise ValueError("alipay credentials: the Alipay public key must be RSA (2048+ bits)")
    return key


def response_key(api_method: str) -> str:
    """``alipay.trade.query`` answers under ``alipay_trade_query_response``."""
    return api_method.replace(".", "_") + "_response"


class Alipay:
    """Alipay payments for one application (the ``Channel`` protocol)."""

    name = "alipay"

    def __init__(self, config: AlipayConfig) -> None:
        self.config = config

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

    def parse_create(self, response: HttpResponse, *, now: datetime) -> PrepayResult:
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
            if exc.code != "ACQ.TRADE_HAS_CLOSE":  # closing a closed trade: it is closed
                raise

    def _answer(self, response: HttpResponse, api_method: str, model: type[_Answer]) -> _Answer:
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
            raise wire.classify_failure(answer, http_status=status)
        return answer

    # -- notifications -----------------------------------------------------------------------

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, *, now: datetime
    ) -> ChannelEvent:
        content_type = next(
            (value for name, value in headers.items() if name.lower() == "content-type"), None
        )
        if content_type is not None and not content_type.lower().lstrip().startswith(
            "application/x-www-form-urlencoded"
        ):
            raise CallbackRejected("malformed", f"Content-Type {content_type!r} is not a form")
        try:
            form = parse_notify_form(body)
        except MalformedForm as exc:
            raise CallbackRejected("malformed", f"not an Alipay notification form: {exc}") from exc
        self._verify_notification(form.fields, form.codec)
        values = dict(form.fields)
        try:
            notification = wire.TradeNotification.model_validate(values)
        except ValidationError as exc:
            raise CallbackRejected("malformed", "not a trade notification") from exc
        if notification.notify_type not in (None, TRADE_NOTIFY_TYPE):
            raise CallbackRejected(
                "unsupported_notification", f"notify_type {notification.notify_type!r}"
            )
        trade = wire.notification_to_trade_status(notification)
        if trade is None:
            raise CallbackRejected(
                "malformed",
                f"trade_status {notification.trade_status!r} / "
                f"total_amount {notification.total_amount!r}",
            )
        raw = {key: value for key, value in values.items() if key != "sign"}
        return ChannelEvent(
            event_id=notification.notify_id,
            event_type=notification.trade_status,
            trade=trade,
            raw=raw,
        )

    def _verify_notification(self, fields: tuple[tuple[str, str], ...], codec: str) -> None:
        values = dict(fields)
        signature = values.get("sign")
        if not signature:
            raise CallbackRejected("missing_signature", "the notification has no sign")
        if values.get("sign_type") != SIGN_TYPE:
            raise CallbackRejected(
                "bad_signature_type", f"sign_type {values.get('sign_type')!r} is not RSA2"
            )
        # base64 has no spaces: a raw "+" in the body was read as one.
        signature = signature.replace(" ", "+")
        # Trade notifications sign every received field but sign and sign_type (opendocs
        # "异步通知验签"); some SDKs drop empty ones, so that form is accepted as well.
        variants = [False]
        if any(not value for _, value in fields):
            variants.append(True)
        for skip_empty in variants:
            message = signing_string(fields, exclude=("sign", "sign_type"), skip_empty=skip_empty)
            try:
                encoded = message.encode(codec)
            except UnicodeEncodeError as exc:
                raise CallbackRejected("malformed", "fields not encodable in charset") from exc
            if rsa2_verify(self.config.alipay_public_key, encoded, signature):
                return
        raise CallbackRejected("bad_signature", "signature does not verify")

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
    return Alipay(AlipayConfig.from_credentials(credentials))
