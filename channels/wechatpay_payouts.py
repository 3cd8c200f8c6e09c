"""WeChat Pay merchant transfers (商家转账, user-confirmation mode) as payfront's payouts: the
wire messages of ``POST /v3/fund-app/mch-transfer/transfer-bills`` and of its query by
``out_bill_no``, the ``MCHTRANSFER.BILL.FINISHED`` callback resource, and their mapping to
``PayoutStatus`` and to classified errors.

Facts (pay.weixin.qq.com/doc/v3/merchant/4012716434 发起转账, 4012716437 商户单号查询转账单,
4012712115 回调通知):

- ``transfer_scene_id`` and its ``transfer_scene_report_infos`` are fixed per merchant by the
  scene WeChat granted it (e.g. 1000 现金营销 reports 活动名称 and 奖励说明): account settings;
- ``user_name`` is optional, required from 2,000 yuan, and sent encrypted with the platform
  public key (RSA-OAEP with SHA-1, base64), with ``Wechatpay-Serial`` naming that key;
- bill states: ACCEPTED (accepted; the same call may be sent again), PROCESSING (locking
  funds; stays there while the balance is short), WAIT_USER_CONFIRM (the payee must confirm
  in WeChat: ``package_info`` opens the confirmation page), TRANSFERING (confirmed, result not
  known yet; the page may be opened again), SUCCESS, FAIL, CANCELING, CANCELLED. Only SUCCESS,
  FAIL and CANCELLED are final, and only they are called back;
- any non-200 answer: do not change the out_bill_no; query, and only a FAIL/CANCELLED bill
  allows a new number. 403 NOT_ENOUGH ("商户运营账户资金不足，充值后可以原单号发起重试") and 429
  FREQUENCY_LIMITED ("该笔请求未受理") were not acted on; 500 SYSTEM_ERROR may have been.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.hashes import SHA1
from pydantic import AwareDatetime, StrictInt, StrictStr

from channels.base import CreatePayout, HttpResponse, PayoutState, PayoutStatus
from channels.errors import (
    ChannelError,
    ChannelFatal,
    ChannelOrderNotFound,
    ChannelRetryable,
    ChannelUnknownOutcome,
)
from channels.wechatpay_wire import WireModel, classify_failure

TRANSFER_BILLS_PATH = "/v3/fund-app/mch-transfer/transfer-bills"
QUERY_PATH = TRANSFER_BILLS_PATH + "/out-bill-no/"
EVENT_TYPE = "MCHTRANSFER.BILL.FINISHED"
ORIGINAL_TYPE = "mch_payment"
# 转账金额 >= 2,000元时，user_name 必填.
NAME_REQUIRED_FROM_FEN = 200_000
DEFAULT_REMARK = "提现"
MAX_REMARK = 32  # characters
_OUT_BILL_NO_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class PayoutSettings:
    """The merchant's transfer scene: its id and the report each transfer carries for it."""

    transfer_scene_id: str
    report_infos: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_credentials(cls, creds: Mapping[str, str]) -> PayoutSettings | None:
        """From ``transfer_scene_id`` and ``transfer_scene_report_infos`` (a JSON list of
        ``{"info_type", "info_content"}``); None when the account has no transfer scene."""
        scene = (creds.get("transfer_scene_id") or "").strip()
        if not scene:
            return None
        try:
            raw = json.loads(creds.get("transfer_scene_report_infos") or "[]")
            infos = tuple((str(i["info_type"]), str(i["info_content"])) for i in raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(
                "wechatpay credentials: transfer_scene_report_infos must be a JSON list of "
                '{"info_type", "info_content"}'
            ) from exc
        return cls(transfer_scene_id=scene, report_infos=infos)


# -- requests -------------------------------------------------------------------------------


class SceneReportInfo(WireModel):
    info_type: StrictStr
    info_content: StrictStr


class TransferBillRequest(WireModel):
    """Body of ``POST /v3/fund-app/mch-transfer/transfer-bills``; declaration order is the
    serialised order."""

    appid: StrictStr
    out_bill_no: StrictStr
    transfer_scene_id: StrictStr
    openid: StrictStr
    user_name: StrictStr | None = None
    transfer_amount: StrictInt
    transfer_remark: StrictStr
    notify_url: StrictStr | None = None
    transfer_scene_report_infos: list[SceneReportInfo]


# -- answers and callbacks ------------------------------------------------------------------


class TransferBill(WireModel):
    """A bill as the create answer, the query answer and the decrypted callback show it (the
    create answer has no amount; the query names the merchant ``mch_id``, the callback
    ``mchid``)."""

    mch_id: StrictStr | None = None
    mchid: StrictStr | None = None
    out_bill_no: StrictStr
    transfer_bill_no: StrictStr | None = None
    state: StrictStr
    transfer_amount: StrictInt | None = None
    fail_reason: StrictStr | None = None
    package_info: StrictStr | None = None
    create_time: AwareDatetime | None = None
    update_time: AwareDatetime | None = None

    @property
    def merchant(self) -> str | None:
        return self.mchid or self.mch_id


PAYOUT_STATES: Mapping[str, PayoutState] = {
    "ACCEPTED": PayoutState.PROCESSING,
    "PROCESSING": PayoutState.PROCESSING,
    "WAIT_USER_CONFIRM": PayoutState.PROCESSING,
    "TRANSFERING": PayoutState.PROCESSING,
    "CANCELING": PayoutState.PROCESSING,
    "SUCCESS": PayoutState.SUCCEEDED,
    "FAIL": PayoutState.FAILED,
    "CANCELLED": PayoutState.FAILED,
}

# The transfer API's errors where the HTTP status alone would mislead. Every other 4xx code
# is treated as an unknown outcome (WeChat: "如果发起转账接口遇到新的错误码，请务必不要换单重试"):
# only the codes below are known to have changed nothing.
PAYOUT_ERROR_CLASSES: Mapping[str, type[ChannelError]] = {
    # Not acted on; the same out_bill_no succeeds once the operating account is topped up.
    "NOT_ENOUGH": ChannelRetryable,
    # "该笔请求未受理，请降低频率后原单重试".
    "FREQUENCY_LIMITED": ChannelRetryable,
    "SYSTEM_ERROR": ChannelUnknownOutcome,
    # Refused for good: bad parameters, no permission or scene, over a limit, same
    # out_bill_no with other parameters.
    "PARAM_ERROR": ChannelFatal,
    "INVALID_REQUEST": ChannelFatal,
    "NO_AUTH": ChannelFatal,
    "SIGN_ERROR": ChannelFatal,
    "APPID_MCHID_NOT_MATCH": ChannelFatal,
    "ACCOUNT_ERROR": ChannelFatal,
    # Only on the query: no bill under this number.
    "NOT_FOUND": ChannelOrderNotFound,
    "RESOURCE_NOT_EXISTS": ChannelOrderNotFound,
}


def encrypt_sensitive(public_key: RSAPublicKey, text: str) -> str:
    """WeChat's sensitive-field encryption: RSA-OAEP (SHA-1, MGF1-SHA-1), base64."""
    sealed = public_key.encrypt(
        text.encode("utf-8"),
        # SHA-1 is WeChat's choice for this padding, not ours.
        OAEP(mgf=MGF1(algorithm=SHA1()), algorithm=SHA1(), label=None),  # noqa: S303
    )
    return base64.b64encode(sealed).decode("ascii")


def transfer_request(
    appid: str,
    settings: PayoutSettings,
    payout: CreatePayout,
    *,
    encrypt: Callable[[str], str],
) -> TransferBillRequest:
    """The body for ``payout``. ``encrypt`` turns the payee's name into its ciphertext; the
    name is the only part that differs between two sends of the same payout (OAEP is
    randomised), which WeChat compares decrypted."""
    if payout.currency.upper() != "CNY":
        raise ChannelFatal(
            "CURRENCY_NOT_SUPPORTED", f"wechatpay pays out CNY, not {payout.currency}"
        )
    if (
        not 1 <= len(payout.out_payout_no) <= 32
        or not set(payout.out_payout_no) <= _OUT_BILL_NO_CHARS
    ):
        raise ChannelFatal(
            "INVALID_PAYOUT_NO", "out_bill_no must be 1 to 32 letters and digits only"
        )
    if payout.amount_minor < 1:
        raise ChannelFatal("INVALID_AMOUNT", f"amount {payout.amount_minor} must be positive")
    if payout.amount_minor >= NAME_REQUIRED_FROM_FEN and not payout.payee_name:
        raise ChannelFatal(
            "PAYEE_NAME_REQUIRED", "WeChat requires the payee's name from 2,000 yuan"
        )
    user_name = None
    if payout.payee_name:
        user_name = encrypt(payout.payee_name)
    return TransferBillRequest(
        appid=appid,
        out_bill_no=payout.out_payout_no,
        transfer_scene_id=settings.transfer_scene_id,
        openid=payout.payee_id,
        user_name=user_name,
        transfer_amount=payout.amount_minor,
        transfer_remark=(payout.remark or DEFAULT_REMARK)[:MAX_REMARK],
        notify_url=payout.notify_url or None,
        transfer_scene_report_infos=[
            SceneReportInfo(info_type=kind, info_content=content)
            for kind, content in settings.report_infos
        ],
    )


def classify_payout_failure(response: HttpResponse) -> ChannelError:
    """A verified transfer (or transfer query) answer that is not a bill, as a ``ChannelError``."""
    failure = classify_failure(response)
    status = response.status
    if status >= 500:
        return ChannelUnknownOutcome(failure.code, failure.message, http_status=status)
    error_class = PAYOUT_ERROR_CLASSES.get(failure.code)
    if error_class is None:
        if status == 404:
            error_class = ChannelOrderNotFound
        elif 200 <= status < 300:
            return failure
        else:
            error_class = ChannelUnknownOutcome
    if type(failure) is error_class:
        return failure
    return error_class(failure.code, failure.message, http_status=status)


def to_payout_status(bill: TransferBill) -> PayoutStatus | None:
    """The bill as payfront's ``PayoutStatus``; None if its state is unknown."""
    state = PAYOUT_STATES.get(bill.state)
    if state is None:
        return None
    action = {"package_info": bill.package_info} if bill.package_info else {}
    return PayoutStatus(
        out_payout_no=bill.out_bill_no,
        state=state,
        channel_state=bill.state,
        amount_minor=bill.transfer_amount,
        channel_payout_no=bill.transfer_bill_no or None,
        succeeded_at=(bill.update_time or bill.create_time)
        if state is PayoutState.SUCCEEDED
        else None,
        failure_reason=(bill.fail_reason or bill.state) if state is PayoutState.FAILED else None,
        payee_action=action,
    )
