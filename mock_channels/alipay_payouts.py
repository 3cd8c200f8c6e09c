"""Transfers in the Alipay emulator: ``alipay.fund.trans.uni.transfer`` and
``alipay.fund.trans.common.query``, the public-key-certificate mode they require, and the
account balance they draw on.

- Certificate mode: ``POST /sandbox/alipay/apps/{app_id}/cert-mode`` issues, from the sandbox's
  own root CA, the app public key certificate (over the app's registered key), the Alipay public
  key certificate (over the sandbox's Alipay key) and the root certificate file, and records the
  app's SNs (MD5 of the issuer DN written CN first plus the decimal serial; the root SN joins
  the RSA certificates' SNs with ``_``). A transfer call must carry ``app_cert_sn`` and
  ``alipay_root_cert_sn`` (signed like every parameter) matching them; answers of a
  certificate-mode app carry ``alipay_cert_sn``. The CA and the issued certificates live in
  memory: a restarted sandbox forgets them (the apps stay in public-key mode).
- Balance: per app, the paid trades' amounts less their refunds, plus admin top-ups
  (``POST /sandbox/alipay/apps/{app_id}/balance``), less the transfers made.
- Rules: ``product_code`` TRANS_ACCOUNT_NO_PWD and ``biz_scene`` DIRECT_TRANSFER; at least 0.1
  yuan (EXCEED_LIMIT_SM_MIN_AMOUNT) and, in the sandbox, at most 100,000 yuan a transfer
  (EXCEED_LIMIT_SM_AMOUNT); ``payee_info.name`` required for ALIPAY_LOGON_ID; over the balance
  PAYER_BALANCE_NOT_ENOUGH (nothing made); the same out_biz_no with the same biz_content answers
  the same transfer, with another one INVALID_PARAMETER (the sandbox's choice: the code Alipay
  gives there is not documented). Payees: an identity starting with ``notexist`` is
  PAYEE_NOT_EXIST, the name ``姓名不符`` PAYEE_USER_INFO_ERROR; every other payee is an Alipay
  account, and a transfer to it is SUCCESS at once. The query of an unknown out_biz_no answers
  ORDER_NOT_EXIST.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mock_channels import alipay_errors as errors
from mock_channels.alipay_crypto import random_digits
from mock_channels.alipay_errors import GatewayError
from mock_channels.alipay_models import (
    BEIJING,
    fen_to_yuan,
    first_issue,
    load_biz_content,
    yuan_to_fen,
)
from mock_channels.alipay_state import App

TRANSFER = "alipay.fund.trans.uni.transfer"
TRANSFER_QUERY = "alipay.fund.trans.common.query"
METHODS = frozenset({TRANSFER, TRANSFER_QUERY})
MIN_FEN = 10
MAX_FEN = 100_000_00
NOT_EXIST_PREFIX = "notexist"
WRONG_NAME = "姓名不符"


# -- certificates ---------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ant Financial"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Certification Authority"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def certificate_sn(certificate: x509.Certificate) -> str:
    """MD5 of the issuer DN (``CN=…,OU=…,O=…,C=…``) followed by the decimal serial number."""
    issuer = {attribute.oid: str(attribute.value) for attribute in certificate.issuer}
    text = (
        f"CN={issuer.get(NameOID.COMMON_NAME)},OU={issuer.get(NameOID.ORGANIZATIONAL_UNIT_NAME)},"
        f"O={issuer.get(NameOID.ORGANIZATION_NAME)},C={issuer.get(NameOID.COUNTRY_NAME)}"
        f"{certificate.serial_number}"
    )
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


class CertificateAuthority:
    """The sandbox's stand-in for Alipay's root CA: one RSA root that issues both the app
    public key certificates and the Alipay public key certificate."""

    # Common names are at most 64 characters.
    ROOT_NAME = "Ant Financial Certification Authority R1 (sandbox)"

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.root = self._issue(_name(self.ROOT_NAME), self._key.public_key(), 1)

    def _issue(self, subject: x509.Name, key: rsa.RSAPublicKey, serial: int) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(_name(self.ROOT_NAME))
            .public_key(key)
            .serial_number(serial)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=5 * 365))
            .sign(self._key, hashes.SHA256())
        )

    def issue(self, common_name: str, key: rsa.RSAPublicKey) -> x509.Certificate:
        return self._issue(_name(common_name), key, x509.random_serial_number())

    @property
    def root_pem(self) -> str:
        return _pem(self.root)

    @property
    def root_sn(self) -> str:
        return certificate_sn(self.root)


@dataclass(frozen=True)
class CertModeApp:
    app_cert_sn: str
    alipay_cert_sn: str
    alipay_root_cert_sn: str


# -- biz_content ----------------------------------------------------------------------------


class _Biz(BaseModel):
    model_config = ConfigDict(extra="allow")


class PayeeInfo(_Biz):
    identity: str = Field(min_length=1, max_length=100)
    identity_type: Literal["ALIPAY_USER_ID", "ALIPAY_LOGON_ID", "ALIPAY_OPEN_ID"]
    name: str | None = Field(default=None, max_length=128)


class TransferBiz(_Biz):
    out_biz_no: str = Field(min_length=1, max_length=64)
    trans_amount: int
    product_code: Literal["TRANS_ACCOUNT_NO_PWD"]
    biz_scene: Literal["DIRECT_TRANSFER"]
    order_title: str | None = Field(default=None, max_length=128)
    payee_info: PayeeInfo
    remark: str | None = Field(default=None, max_length=200)

    @field_validator("trans_amount", mode="before")
    @classmethod
    def _yuan(cls, value: Any) -> int:
        return yuan_to_fen(value)


class TransferQueryBiz(_Biz):
    product_code: str | None = None
    biz_scene: str | None = None
    out_biz_no: str | None = Field(default=None, max_length=64)
    order_id: str | None = None


class TopUp(BaseModel):
    """Body of ``POST /sandbox/alipay/apps/{app_id}/balance``: fen to add to the account."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(ge=1, le=10**12)


def _parse(model: type[_Biz], params: dict[str, str]) -> Any:
    text = params.get("biz_content")
    if not text:
        raise errors.business("INVALID_PARAMETER", "缺少 biz_content")
    try:
        return model.model_validate(load_biz_content(text))
    except (ValueError, ValidationError) as exc:
        raise errors.business("INVALID_PARAMETER", first_issue(exc)) from None


# -- transfers ------------------------------------------------------------------------------


@dataclass
class Transfer:
    app_id: str
    out_biz_no: str
    order_id: str
    pay_fund_order_id: str
    amount_fen: int
    biz: dict[str, Any]
    made_at: dt.datetime

    def answer(self) -> dict[str, Any]:
        return {
            "code": "10000",
            "msg": "Success",
            "out_biz_no": self.out_biz_no,
            "order_id": self.order_id,
            "pay_fund_order_id": self.pay_fund_order_id,
            "status": "SUCCESS",
            "trans_date": _beijing(self.made_at),
        }

    def query_content(self) -> dict[str, Any]:
        return {
            "code": "10000",
            "msg": "Success",
            "order_id": self.order_id,
            "pay_fund_order_id": self.pay_fund_order_id,
            "out_biz_no": self.out_biz_no,
            "trans_amount": fen_to_yuan(self.amount_fen),
            "status": "SUCCESS",
            "pay_date": _beijing(self.made_at),
            "arrival_time_end": _beijing(self.made_at),
            "order_fee": "0.00",
        }


def _beijing(moment: dt.datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _order_id(now: dt.datetime) -> str:
    return now.astimezone(BEIJING).strftime("%Y%m%d") + "110070000006" + random_digits(12)


@dataclass
class TransferDesk:
    """Every transfer, certificate-mode app and top-up of one sandbox, in memory.
    ``trades_net`` gives an app's paid trades less their refunds, in fen."""

    trades_net: Callable[[str], int]
    transfers: dict[tuple[str, str], Transfer] = field(default_factory=dict)
    top_ups: dict[str, int] = field(default_factory=dict)
    cert_apps: dict[str, CertModeApp] = field(default_factory=dict)
    _authority: CertificateAuthority | None = None

    def balance(self, app_id: str) -> int:
        spent = sum(t.amount_fen for (a, _), t in self.transfers.items() if a == app_id)
        return self.trades_net(app_id) + self.top_ups.get(app_id, 0) - spent

    # -- certificate mode

    def cert_mode(self, app: App, alipay_key: rsa.RSAPublicKey) -> dict[str, str]:
        """Put ``app`` in certificate mode: its three certificates and its SNs."""
        if self._authority is None:
            self._authority = CertificateAuthority()
        authority = self._authority
        app_cert = authority.issue(f"app {app.app_id}"[:64], app.public_key)
        alipay_cert = authority.issue(f"alipay for {app.app_id}"[:64], alipay_key)
        mode = CertModeApp(
            app_cert_sn=certificate_sn(app_cert),
            alipay_cert_sn=certificate_sn(alipay_cert),
            alipay_root_cert_sn=authority.root_sn,
        )
        self.cert_apps[app.app_id] = mode
        return {
            "app_id": app.app_id,
            "app_cert_pem": _pem(app_cert),
            "alipay_cert_pem": _pem(alipay_cert),
            "alipay_root_cert_pem": authority.root_pem,
            "app_cert_sn": mode.app_cert_sn,
            "alipay_cert_sn": mode.alipay_cert_sn,
            "alipay_root_cert_sn": mode.alipay_root_cert_sn,
        }

    def alipay_cert_sn(self, app_id: str) -> str | None:
        mode = self.cert_apps.get(app_id)
        return mode.alipay_cert_sn if mode is not None else None

    def _check_cert_mode(self, app: App, params: dict[str, str]) -> None:
        mode = self.cert_apps.get(app.app_id)
        if mode is None:
            # Alipay takes transfers from certificate-mode apps only (sub_code: the sandbox's).
            raise errors.invalid("isv.app-not-in-cert-mode", "该接口仅支持公钥证书方式调用")
        for name, expected in (
            ("app_cert_sn", mode.app_cert_sn),
            ("alipay_root_cert_sn", mode.alipay_root_cert_sn),
        ):
            sent = params.get(name)
            if not sent:
                raise GatewayError("40001", f"isv.missing-{name.replace('_', '-')}", f"缺少{name}")
            if sent != expected:
                raise errors.invalid(f"isv.invalid-{name.replace('_', '-')}", f"{name}不匹配")

    # -- the OpenAPI

    def call(
        self, app: App, api_method: str, params: dict[str, str], now: dt.datetime
    ) -> dict[str, Any]:
        self._check_cert_mode(app, params)
        if api_method == TRANSFER_QUERY:
            return self._query(app, _parse(TransferQueryBiz, params))
        return self._transfer(app, _parse(TransferBiz, params), now)

    def _transfer(self, app: App, request: TransferBiz, now: dt.datetime) -> dict[str, Any]:
        biz = request.model_dump(mode="json")
        existing = self.transfers.get((app.app_id, request.out_biz_no))
        if existing is not None:
            if existing.biz != biz:
                raise errors.business("INVALID_PARAMETER", "商户订单号重复，且与原转账参数不一致")
            return existing.answer()
        payee = request.payee_info
        if payee.identity_type == "ALIPAY_LOGON_ID" and not payee.name:
            raise errors.business("INVALID_PARAMETER", "收款方为支付宝登录号时，姓名必填")
        if request.trans_amount < MIN_FEN:
            raise errors.business("EXCEED_LIMIT_SM_MIN_AMOUNT", "单笔最低转账金额0.1元")
        if request.trans_amount > MAX_FEN:
            raise errors.business("EXCEED_LIMIT_SM_AMOUNT", "单笔额度超限")
        if payee.identity.startswith(NOT_EXIST_PREFIX):
            raise errors.business("PAYEE_NOT_EXIST", "收款账号不存在")
        if payee.name == WRONG_NAME:
            raise errors.business(
                "PAYEE_USER_INFO_ERROR", "支付宝账号和姓名不匹配，请确认姓名是否正确"
            )
        if request.trans_amount > self.balance(app.app_id):
            raise errors.business("PAYER_BALANCE_NOT_ENOUGH", "付款方余额不足")
        transfer = Transfer(
            app_id=app.app_id,
            out_biz_no=request.out_biz_no,
            order_id=_order_id(now),
            pay_fund_order_id=_order_id(now),
            amount_fen=request.trans_amount,
            biz=biz,
            made_at=now,
        )
        self.transfers[(app.app_id, transfer.out_biz_no)] = transfer
        return transfer.answer()

    def _query(self, app: App, request: TransferQueryBiz) -> dict[str, Any]:
        if request.out_biz_no:
            if not request.product_code or not request.biz_scene:
                raise errors.business(
                    "INVALID_PARAMETER", "传入out_biz_no时，product_code和biz_scene必填"
                )
            found = self.transfers.get((app.app_id, request.out_biz_no))
        else:
            found = next(
                (
                    t
                    for (a, _), t in self.transfers.items()
                    if a == app.app_id and t.order_id == request.order_id
                ),
                None,
            )
        if found is None:
            raise errors.business("ORDER_NOT_EXIST", "转账订单不存在")
        return found.query_content()
