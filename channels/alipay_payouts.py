"""Alipay payouts: ``alipay.fund.trans.uni.transfer`` (单笔转账, to an Alipay account) and
``alipay.fund.trans.common.query``, their biz_content and answers, the mapping to payfront's
``PayoutStatus`` and classified errors, and the public-key-certificate mode they require.

Facts (opendocs.alipay.com, 单笔转账接口 / 转账业务单据查询接口 / 公钥证书方式):

- the transfer APIs accept only apps in public-key-certificate mode: every request of such an
  app carries ``app_cert_sn`` (the app public key certificate's SN) and ``alipay_root_cert_sn``
  (the SNs of Alipay's root chain, ``_``-joined), both signed like any parameter; answers carry
  ``alipay_cert_sn`` and are verified with the key of the Alipay public key certificate. A
  certificate's SN is MD5(issuer DN + decimal serial), the DN written CN first (RFC 2253);
  the root SN takes the chain's RSA certificates only;
- ``trans_amount`` is yuan with at most two decimals; ``payee_info.name`` is required for an
  ``ALIPAY_LOGON_ID`` payee (and checked against the account when given);
- the answer's ``status``: SUCCESS (to an Alipay account the money has moved), DEALING (bank
  card: processing), FAIL, REFUND (a bank card transfer returned); the query's adds INIT and
  WAIT_PAY (not yet paid) and CLOSED;
- errors: SYSTEM_ERROR asks for a retry with the same parameters (the outcome is unknown),
  PAYER_BALANCE_NOT_ENOUGH is refused before anything moved and Alipay asks to top up and
  re-send the same out_biz_no; payee and limit errors are final for these parameters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.x509.oid import SignatureAlgorithmOID
from pydantic import BaseModel, ConfigDict, StrictStr

from channels.alipay_wire import (
    CURRENCY,
    SUB_CODE_CLASSES,
    ResponseStatus,
    from_yuan,
    parse_time,
    to_yuan,
)
from channels.base import CreatePayout, PayoutState, PayoutStatus
from channels.errors import (
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)

TRANSFER = "alipay.fund.trans.uni.transfer"
TRANSFER_QUERY = "alipay.fund.trans.common.query"
PRODUCT_CODE = "TRANS_ACCOUNT_NO_PWD"
BIZ_SCENE = "DIRECT_TRANSFER"
LOGON_ID = "ALIPAY_LOGON_ID"
USER_ID = "ALIPAY_USER_ID"
PAYEE_TYPES = frozenset({LOGON_ID, USER_ID})
DEFAULT_TITLE = "提现"
MAX_TITLE = 128
MAX_REMARK = 200
_OUT_BIZ_NO = re.compile(r"[A-Za-z0-9_\-]{1,64}")


# -- public-key-certificate mode --------------------------------------------------------------


# Signature algorithms of the root chain's certificates that count for its SN (Alipay's SDKs
# skip the chain's SM2 certificate).
_RSA_SIGNATURES = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_MD5,
        SignatureAlgorithmOID.RSA_WITH_SHA1,
        SignatureAlgorithmOID.RSA_WITH_SHA224,
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
    }
)


def cert_sn(certificate: x509.Certificate) -> str:
    """Alipay's certificate SN: MD5 hex of the issuer DN (CN first) followed by the serial."""
    text = certificate.issuer.rfc4514_string() + str(certificate.serial_number)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def root_cert_sn(chain_pem: str) -> str:
    """The SNs of the RSA certificates of Alipay's root chain (it holds an SM2 one too),
    joined by ``_`` in their order in the file."""
    certificates = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))
    sns = [
        cert_sn(certificate)
        for certificate in certificates
        if certificate.signature_algorithm_oid in _RSA_SIGNATURES
    ]
    if not sns:
        raise ValueError("alipay credentials: the root certificate chain has no RSA certificate")
    return "_".join(sns)


@dataclass(frozen=True)
class CertMode:
    """An app in public-key-certificate mode: the two SNs every request carries and the key of
    the Alipay public key certificate (which verifies answers and notifications)."""

    app_cert_sn: str
    alipay_root_cert_sn: str
    alipay_public_key: RSAPublicKey = field(repr=False)

    def alipay_public_key_pem(self) -> str:
        return self.alipay_public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    @classmethod
    def from_credentials(cls, creds: Mapping[str, str]) -> CertMode | None:
        """From ``app_cert_pem``, ``alipay_cert_pem`` and ``alipay_root_cert_pem``; None when
        the account has none of them (public-key mode), ``ValueError`` when only some."""
        names = ("app_cert_pem", "alipay_cert_pem", "alipay_root_cert_pem")
        given = {name: (creds.get(name) or "").strip() for name in names}
        if not any(given.values()):
            return None
        missing = [name for name, value in given.items() if not value]
        if missing:
            raise ValueError(f"alipay credentials: certificate mode also needs {missing}")
        try:
            app_cert = x509.load_pem_x509_certificate(given["app_cert_pem"].encode("ascii"))
            alipay_cert = x509.load_pem_x509_certificate(given["alipay_cert_pem"].encode("ascii"))
            root_sn = root_cert_sn(given["alipay_root_cert_pem"])
        except ValueError as exc:
            raise ValueError(f"alipay credentials: a certificate does not load ({exc})") from exc
        key = alipay_cert.public_key()
        if not isinstance(key, RSAPublicKey):
            raise ValueError("alipay credentials: the Alipay public key certificate is not RSA")
        return cls(
            app_cert_sn=cert_sn(app_cert), alipay_root_cert_sn=root_sn, alipay_public_key=key
        )


# -- biz_content and answers ------------------------------------------------------------------


class _Biz(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PayeeInfo(_Biz):
    identity: StrictStr
    identity_type: StrictStr
    name: StrictStr | None = None


class TransferBizContent(_Biz):
    """``biz_content`` of ``alipay.fund.trans.uni.transfer``; declaration order is the
    serialised order."""

    out_biz_no: StrictStr
    trans_amount: StrictStr
    product_code: StrictStr
    biz_scene: StrictStr
    order_title: StrictStr
    payee_info: PayeeInfo
    remark: StrictStr | None = None


class TransferQueryBizContent(_Biz):
    product_code: StrictStr
    biz_scene: StrictStr
    out_biz_no: StrictStr


class TransferResponse(ResponseStatus):
    out_biz_no: StrictStr | None = None
    order_id: StrictStr | None = None
    pay_fund_order_id: StrictStr | None = None
    status: StrictStr | None = None
    trans_date: StrictStr | None = None


class TransferQueryResponse(ResponseStatus):
    out_biz_no: StrictStr | None = None
    order_id: StrictStr | None = None
    pay_fund_order_id: StrictStr | None = None
    status: StrictStr | None = None
    trans_amount: StrictStr | None = None
    pay_date: StrictStr | None = None
    fail_reason: StrictStr | None = None
    error_code: StrictStr | None = None


PAYOUT_STATES: Mapping[str, PayoutState] = {
    "SUCCESS": PayoutState.SUCCEEDED,
    "DEALING": PayoutState.PROCESSING,
    "INIT": PayoutState.PROCESSING,
    "WAIT_PAY": PayoutState.PROCESSING,
    "FAIL": PayoutState.FAILED,
    "CLOSED": PayoutState.FAILED,
    # A bank-card transfer the bank sent back: the money returned to the payer's balance.
    "REFUND": PayoutState.FAILED,
}

# What each transfer sub_code means for the next step (单笔转账接口 / 转账查询 业务错误码).
PAYOUT_SUB_CODE_CLASSES: Mapping[str, type[ChannelError]] = {
    **SUB_CODE_CLASSES,
    # "系统繁忙": the transfer may have been made; the same out_biz_no again (or a query).
    "SYSTEM_ERROR": ChannelUnknownOutcome,
    # Refused before any money moved, and Alipay asks to top up and send the same request
    # again (same out_biz_no): retryable with backoff, not fatal, so the payout keeps its
    # number and cannot be paid twice.
    "PAYER_BALANCE_NOT_ENOUGH": ChannelRetryable,
    # The payee cannot receive these parameters: final.
    "PAYEE_NOT_EXIST": ChannelFatal,
    "PAYEE_USER_INFO_ERROR": ChannelFatal,
    "PAYEE_ACCOUNT_STATUS_ERROR": ChannelFatal,
    "PAYER_PAYEE_CANNOT_SAME": ChannelFatal,
    "EXCEED_LIMIT_SM_AMOUNT": ChannelFatal,
    "EXCEED_LIMIT_DM_AMOUNT": ChannelFatal,
    "EXCEED_LIMIT_SM_MIN_AMOUNT": ChannelFatal,
    "EXCEED_LIMIT_PERSONAL_SM_AMOUNT": ChannelFatal,
    "EXCEED_LIMIT_ENT_SM_AMOUNT": ChannelFatal,
    "EXCEED_LIMIT_UNRN_DM_AMOUNT": ChannelFatal,
    "INVALID_PARAMETER": ChannelFatal,
    "PERMIT_CHECK_PERM_LIMITED": ChannelFatal,
    # Only on the query: Alipay has no transfer under this out_biz_no.
    "ORDER_NOT_EXIST": ChannelOrderNotFound,
}


def transfer_biz_content(payout: CreatePayout) -> TransferBizContent:
    """The transfer's ``biz_content``: identical for every retry of the same payout."""
    if payout.currency.upper() != CURRENCY:
        raise ChannelFatal("CURRENCY_NOT_SUPPORTED", f"alipay pays out CNY, not {payout.currency}")
    if not _OUT_BIZ_NO.fullmatch(payout.out_payout_no):
        raise ChannelFatal(
            "INVALID_PAYOUT_NO", "out_biz_no must be 1 to 64 letters, digits, '_' or '-'"
        )
    identity_type = (payout.payee_type or LOGON_ID).upper()
    if identity_type not in PAYEE_TYPES:
        raise ChannelFatal("INVALID_PAYEE_TYPE", f"payee_type must be one of {sorted(PAYEE_TYPES)}")
    if identity_type == LOGON_ID and not payout.payee_name:
        raise ChannelFatal(
            "PAYEE_NAME_REQUIRED", "an ALIPAY_LOGON_ID payee needs the account holder's name"
        )
    try:
        trans_amount = to_yuan(payout.amount_minor)
    except ValueError as exc:
        raise ChannelFatal("INVALID_AMOUNT", str(exc)) from exc
    return TransferBizContent(
        out_biz_no=payout.out_payout_no,
        trans_amount=trans_amount,
        product_code=PRODUCT_CODE,
        biz_scene=BIZ_SCENE,
        order_title=(payout.remark or DEFAULT_TITLE)[:MAX_TITLE],
        payee_info=PayeeInfo(
            identity=payout.payee_id, identity_type=identity_type, name=payout.payee_name
        ),
        remark=payout.remark[:MAX_REMARK] if payout.remark else None,
    )


def transfer_query_biz_content(out_payout_no: str) -> TransferQueryBizContent:
    return TransferQueryBizContent(
        product_code=PRODUCT_CODE, biz_scene=BIZ_SCENE, out_biz_no=out_payout_no
    )


def transfer_answer_status(
    answer: TransferResponse, payout: CreatePayout, *, http_status: int
) -> PayoutStatus:
    """An accepted (code 10000) transfer answer."""
    if answer.out_biz_no and answer.out_biz_no != payout.out_payout_no:
        raise ChannelUnknownOutcome(
            "PAYOUT_NUMBER_MISMATCH",
            f"answer is about {answer.out_biz_no!r}, not {payout.out_payout_no!r}",
            http_status=http_status,
        )
    return _status(
        payout.out_payout_no,
        answer.status,
        amount_minor=payout.amount_minor,
        order_id=answer.order_id,
        moved_at=answer.trans_date,
        fail_reason=None,
        http_status=http_status,
    )


def transfer_query_status(
    answer: TransferQueryResponse, out_payout_no: str, *, http_status: int
) -> PayoutStatus:
    """An accepted (code 10000) transfer query answer."""
    if answer.out_biz_no and answer.out_biz_no != out_payout_no:
        raise ChannelUnknownOutcome(
            "PAYOUT_MISMATCH",
            f"asked for payout {out_payout_no!r}, got {answer.out_biz_no!r}",
            http_status=http_status,
        )
    amount_minor = None
    if answer.trans_amount:
        try:
            amount_minor = from_yuan(answer.trans_amount)
        except ValueError:
            raise ChannelUnknownOutcome(
                "UNEXPECTED_RESPONSE",
                f"trans_amount {answer.trans_amount!r} is not an amount",
                http_status=http_status,
            ) from None
    return _status(
        out_payout_no,
        answer.status,
        amount_minor=amount_minor,
        order_id=answer.order_id,
        moved_at=answer.pay_date,
        fail_reason=answer.fail_reason or answer.error_code,
        http_status=http_status,
    )


def _status(
    out_payout_no: str,
    channel_state: str | None,
    *,
    amount_minor: int | None,
    order_id: str | None,
    moved_at: str | None,
    fail_reason: str | None,
    http_status: int,
) -> PayoutStatus:
    state = PAYOUT_STATES.get(channel_state or "")
    if state is None or channel_state is None:
        raise ChannelUnknownOutcome(
            "UNKNOWN_PAYOUT_STATE", f"transfer status {channel_state!r}", http_status=http_status
        )
    return PayoutStatus(
        out_payout_no=out_payout_no,
        state=state,
        channel_state=channel_state,
        amount_minor=amount_minor,
        channel_payout_no=order_id or None,
        succeeded_at=parse_time(moved_at) if state is PayoutState.SUCCEEDED else None,
        failure_reason=(fail_reason or channel_state) if state is PayoutState.FAILED else None,
    )
