"""Merchant transfers (商家转账, user-confirmation mode) in the WeChat Pay emulator:
``POST /v3/fund-app/mch-transfer/transfer-bills`` and its query by out_bill_no, the merchant's
operating-account balance they draw on, the bill's life and its MCHTRANSFER.BILL.FINISHED
callback.

Rules (pay.weixin.qq.com/doc/v3/merchant/4012716434 and its error table):

- the money comes from the merchant's operating account (运营账户), apart from the account
  payments land in: the sandbox keeps it per merchant, set through the admin API (0 at first);
  a transfer above it is refused with 403 NOT_ENOUGH and nothing is created, so the same
  out_bill_no succeeds after a top-up;
- an accepted bill locks its amount and answers WAIT_USER_CONFIRM with a ``package_info``; the
  payee then confirms in WeChat (admin ``confirm``), or — per merchant ``transfer-mode``
  ``auto`` — the sandbox confirms after a time-scaled delay; confirmation ends it SUCCESS, a
  refusal (admin ``confirm`` with ``fail``) FAIL with the amount given back. Final bills are
  called back (``MCHTRANSFER.BILL.FINISHED``, resource ``mch_payment``);
- the same out_bill_no with the same parameters answers the bill as it is now; with other
  parameters 400 INVALID_REQUEST (the sandbox's wording: WeChat's table has no code of its own
  for this); ``user_name`` must decrypt with the platform private key (RSA-OAEP SHA-1) and is
  required from 2,000 yuan; ``Wechatpay-Serial`` must name the platform key when it is sent;
- the query answers 404 NOT_FOUND for an unknown bill. Cancelling (``…/cancel``) is not
  emulated.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA1
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mock_channels.wechatpay_crypto import random_digits
from mock_channels.wechatpay_errors import ApiError, param_error, parse_json_object
from mock_channels.wechatpay_models import FieldIssue, first_issue
from mock_channels.wechatpay_notify import notification_body
from mock_channels.wechatpay_state import BEIJING, Merchant, rfc3339

EVENT_TYPE = "MCHTRANSFER.BILL.FINISHED"
ORIGINAL_TYPE = "mch_payment"
NAME_REQUIRED_FROM_FEN = 200_000
# How long an ``auto`` payee takes to confirm, in seconds times the sandbox's time scale.
AUTO_CONFIRM_S = 10.0


class BillState(enum.StrEnum):
    WAIT_USER_CONFIRM = "WAIT_USER_CONFIRM"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


FINAL_STATES = frozenset({BillState.SUCCESS, BillState.FAIL})


class _Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class SceneReportInfo(_Wire):
    info_type: str = Field(min_length=1, max_length=15)
    info_content: str = Field(min_length=1, max_length=32)


class TransferBody(_Wire):
    """Body of ``POST /v3/fund-app/mch-transfer/transfer-bills``."""

    appid: str = Field(min_length=1, max_length=32)
    out_bill_no: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,32}$")]
    transfer_scene_id: str = Field(min_length=1, max_length=36)
    openid: str = Field(min_length=1, max_length=64)
    user_name: str | None = Field(default=None, min_length=1, max_length=1024)
    transfer_amount: int = Field(gt=0)
    transfer_remark: str = Field(min_length=1, max_length=32)
    notify_url: str | None = Field(default=None, min_length=1, max_length=256)
    user_recv_perception: str | None = None
    transfer_scene_report_infos: list[SceneReportInfo] = Field(min_length=1)

    @field_validator("notify_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http or https URL")
        return value


class ConfirmTransfer(BaseModel):
    """Body of ``POST /sandbox/wechatpay/transfers/{out_bill_no}/confirm``: the payee's move."""

    model_config = ConfigDict(extra="forbid")

    mchid: str | None = Field(default=None, min_length=1)
    outcome: Literal["success", "fail"] = "success"
    fail_reason: str = "PAYEE_ACCOUNT_ABNORMAL"


class OperatingBalance(BaseModel):
    """Body of ``PUT /sandbox/wechatpay/balance/{mchid}``: the operating account's available
    amount, in fen."""

    model_config = ConfigDict(extra="forbid")

    available: int = Field(ge=0, le=10**13)


class TransferMode(BaseModel):
    """Body of ``PUT /sandbox/wechatpay/transfer-mode/{mchid}``: ``confirm`` keeps new bills
    WAIT_USER_CONFIRM until the admin ``confirm``; ``auto`` confirms them after a delay."""

    model_config = ConfigDict(extra="forbid")

    payee: Literal["confirm", "auto"] = "confirm"


def _bill_no(now: dt.datetime) -> str:
    """Shaped like WeChat's ``1330000071100999991182020050700019480001``."""
    return "1330" + now.astimezone(BEIJING).strftime("%Y%m%d") + random_digits(28)


def decrypt_name(platform_key: rsa.RSAPrivateKey, sealed: str) -> str:
    try:
        plain = platform_key.decrypt(
            base64.b64decode(sealed, validate=True),
            padding.OAEP(mgf=padding.MGF1(algorithm=SHA1()), algorithm=SHA1(), label=None),  # noqa: S303
        )
        return plain.decode("utf-8")
    except (ValueError, binascii.Error):
        raise param_error(
            FieldIssue(field="/user_name", issue="解密失败，请使用微信支付公钥加密")
        ) from None


@dataclass
class Transfer:
    """One transfer bill, keyed by (mchid, out_bill_no)."""

    mchid: str
    appid: str
    out_bill_no: str
    transfer_bill_no: str
    openid: str
    amount: int
    remark: str
    # The request as compared for idempotency (user_name decrypted).
    params: dict[str, Any]
    notify_url: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    package_info: str
    state: BillState = BillState.WAIT_USER_CONFIRM
    fail_reason: str | None = None
    notification_id: str | None = None
    callback_attempts: list[dict[str, Any]] = field(default_factory=list)
    callbacks_lost: int = 0

    def answer(self) -> dict[str, Any]:
        """What the create answers."""
        content: dict[str, Any] = {
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "create_time": rfc3339(self.created_at),
            "state": self.state.value,
        }
        if self.state is BillState.WAIT_USER_CONFIRM:
            content["package_info"] = self.package_info
        if self.fail_reason:
            content["fail_reason"] = self.fail_reason
        return content

    def query_resource(self) -> dict[str, Any]:
        content: dict[str, Any] = {
            "mch_id": self.mchid,
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "appid": self.appid,
            "state": self.state.value,
            "transfer_amount": self.amount,
            "transfer_remark": self.remark,
            "openid": self.openid,
            "create_time": rfc3339(self.created_at, millis=True),
            "update_time": rfc3339(self.updated_at, millis=True),
        }
        if self.fail_reason:
            content["fail_reason"] = self.fail_reason
        return content

    def notification_resource(self) -> dict[str, Any]:
        content: dict[str, Any] = {
            "mchid": self.mchid,
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "state": self.state.value,
            "transfer_amount": self.amount,
            "openid": self.openid,
            "create_time": rfc3339(self.created_at, millis=True),
            "update_time": rfc3339(self.updated_at, millis=True),
        }
        if self.fail_reason:
            content["fail_reason"] = self.fail_reason
        return content

    def admin_view(self) -> dict[str, Any]:
        return {
            "bill": self.query_resource(),
            "package_info": self.package_info,
            "notify_url": self.notify_url,
            "notification_id": self.notification_id,
            "callback_attempts": list(self.callback_attempts),
            "callbacks_lost": self.callbacks_lost,
        }


def transfer_notification_body(merchant: Merchant, transfer: Transfer, now: dt.datetime) -> bytes:
    return notification_body(
        merchant,
        notification_id=transfer.notification_id or str(uuid.uuid4()),
        event_type=EVENT_TYPE,
        summary="商家转账单据终态通知",
        original_type=ORIGINAL_TYPE,
        resource=transfer.notification_resource(),
        now=now,
    )


# Called when a bill ends: sends its callback.
Notify = Callable[[Merchant, Transfer, dt.datetime], None]


@dataclass
class TransferDesk:
    """Every transfer bill and operating-account balance of one sandbox, in memory."""

    time_scale: float
    notify: Notify
    by_key: dict[tuple[str, str], Transfer] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)

    def get(self, mchid: str, out_bill_no: str) -> Transfer | None:
        return self.by_key.get((mchid, out_bill_no))

    def find(self, out_bill_no: str) -> list[Transfer]:
        return [t for (_, number), t in self.by_key.items() if number == out_bill_no]

    def create(
        self,
        merchant: Merchant,
        body: bytes,
        serial: str | None,
        platform: tuple[rsa.RSAPrivateKey, frozenset[str]],
        now: dt.datetime,
    ) -> tuple[Transfer, bool]:
        """The bill for this request and whether it is new. ``platform`` is the platform key
        and the serials (public key id, certificate serial) that name it."""
        try:
            request = TransferBody.model_validate(parse_json_object(body))
        except ValidationError as exc:
            raise param_error(first_issue(exc)) from None
        if request.appid != merchant.appid:
            raise ApiError(400, "INVALID_REQUEST", "APPID不存在或与商户号不匹配")
        key, serials = platform
        name = None
        if request.user_name is not None:
            if serial is None or serial not in serials:
                raise ApiError(
                    400, "PARAM_ERROR", "Wechatpay-Serial 不是微信支付公钥ID或平台证书序列号"
                )
            name = decrypt_name(key, request.user_name)
        if request.transfer_amount >= NAME_REQUIRED_FROM_FEN and name is None:
            raise param_error(FieldIssue(field="/user_name", issue="转账金额>=2000元时必填"))
        params = request.model_dump(mode="json", exclude_none=True)
        params["user_name"] = name
        existing = self.get(merchant.mchid, request.out_bill_no)
        if existing is not None:
            if existing.params != params:
                raise ApiError(400, "INVALID_REQUEST", "商户单号重复，且与原单参数不一致")
            return existing, False
        available = self.balances.get(merchant.mchid, 0)
        if request.transfer_amount > available:
            raise ApiError(
                403,
                "NOT_ENOUGH",
                "商户运营账户资金不足，充值后可以原单号发起重试，请勿更换商户单号",
            )
        self.balances[merchant.mchid] = available - request.transfer_amount
        transfer = Transfer(
            mchid=merchant.mchid,
            appid=request.appid,
            out_bill_no=request.out_bill_no,
            transfer_bill_no=_bill_no(now),
            openid=request.openid,
            amount=request.transfer_amount,
            remark=request.transfer_remark,
            params=params,
            notify_url=request.notify_url,
            created_at=now,
            updated_at=now,
            package_info=base64.b64encode(secrets.token_bytes(48)).decode("ascii"),
        )
        self.by_key[(merchant.mchid, transfer.out_bill_no)] = transfer
        return transfer, True

    def auto_confirm_at(self, merchant: Merchant, transfer: Transfer) -> dt.datetime | None:
        """When an ``auto`` merchant's payee confirms a new bill; None for ``confirm``."""
        if self.modes.get(merchant.mchid, "confirm") != "auto":
            return None
        return transfer.created_at + dt.timedelta(seconds=AUTO_CONFIRM_S * self.time_scale)

    def settle(
        self,
        merchant: Merchant,
        transfer: Transfer,
        outcome: BillState,
        at: dt.datetime,
        fail_reason: str | None = None,
    ) -> None:
        """End a waiting bill (the payee confirmed or refused) and call it back; a final bill
        is refused (409)."""
        if transfer.state in FINAL_STATES:
            raise ApiError(409, "BILL_FINAL", f"the bill is already {transfer.state.value}")
        transfer.state = outcome
        transfer.updated_at = at
        if outcome is BillState.FAIL:
            transfer.fail_reason = fail_reason or "PAYEE_ACCOUNT_ABNORMAL"
            self.balances[merchant.mchid] = self.balances.get(merchant.mchid, 0) + transfer.amount
        transfer.notification_id = str(uuid.uuid4())
        self.notify(merchant, transfer, at)
