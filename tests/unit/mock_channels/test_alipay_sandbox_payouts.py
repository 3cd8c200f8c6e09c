"""The Alipay emulator's transfers: certificate mode (issued certificates, SNs checked, answers
naming ``alipay_cert_sn``), the balance (paid trades less refunds plus top-ups), Alipay's
transfer rules and error codes, idempotency by out_biz_no and the transfer query.

Requests are signed and answers verified by the independent signer of ``test_alipay_sandbox``;
the SNs are computed here with python-alipay-sdk's own functions."""

from __future__ import annotations

from typing import Any

import pytest
from alipay import DCAliPay
from cryptography import x509

from tests.unit.mock_channels.test_alipay_sandbox import (
    APP_ID,
    Answer,
    Box,
    alipay_state,
    app_key,
    box,
    rsa2_ok,
    state_dir,
)

__all__ = ["alipay_state", "app_key", "box", "state_dir"]  # fixtures used here

TRANSFER = "alipay.fund.trans.uni.transfer"
QUERY = "alipay.fund.trans.common.query"
pytestmark = pytest.mark.filterwarnings("ignore:X509:DeprecationWarning")


def verified(box: Box, answer: Answer) -> bool:
    """The signature over the response member alone: a certificate-mode answer puts
    ``alipay_cert_sn`` between the member and ``sign``."""
    signed = answer.signed_text
    if b',"alipay_cert_sn":"' in signed:
        signed = signed[: signed.rindex(b',"alipay_cert_sn":"')]
    return answer.sign is not None and rsa2_ok(box.alipay_public, signed, answer.sign)


async def cert_mode(box: Box) -> dict[str, str]:
    status, issued = await box.admin("POST", f"/apps/{APP_ID}/cert-mode")
    assert status == 200, issued
    return dict(issued)


def sns(issued: dict[str, str]) -> dict[str, str]:
    return {
        "app_cert_sn": DCAliPay.get_cert_sn(issued["app_cert_pem"]),
        "alipay_root_cert_sn": DCAliPay.get_root_cert_sn(issued["alipay_root_cert_pem"]),
    }


def biz(out_biz_no: str, amount: str = "1.00", **changes: Any) -> dict[str, Any]:
    content: dict[str, Any] = {
        "out_biz_no": out_biz_no,
        "trans_amount": amount,
        "product_code": "TRANS_ACCOUNT_NO_PWD",
        "biz_scene": "DIRECT_TRANSFER",
        "order_title": "提现",
        "payee_info": {"identity": "2088101117955611", "identity_type": "ALIPAY_USER_ID"},
    }
    content.update(changes)
    return content


async def transfer(box: Box, issued: dict[str, str], content: dict[str, Any]) -> Answer:
    return await box.call(TRANSFER, content, **sns(issued))


async def test_certificates_and_sns(box: Box) -> None:
    issued = await cert_mode(box)
    assert issued["app_cert_sn"] == DCAliPay.get_cert_sn(issued["app_cert_pem"])
    assert issued["alipay_root_cert_sn"] == DCAliPay.get_root_cert_sn(
        issued["alipay_root_cert_pem"]
    )
    alipay_cert = x509.load_pem_x509_certificate(issued["alipay_cert_pem"].encode())
    assert alipay_cert.public_key() == box.alipay_public
    answer = await box.call(QUERY, {"out_biz_no": "X", **biz("X")}, **sns(issued))
    assert verified(box, answer)
    assert b'"alipay_cert_sn":"' + issued["alipay_cert_sn"].encode() in answer.body


async def test_transfers_need_certificate_mode(box: Box) -> None:
    refused = await box.call(TRANSFER, biz("T0"))
    assert refused.content["sub_code"] == "isv.app-not-in-cert-mode"
    issued = await cert_mode(box)
    missing = await box.call(TRANSFER, biz("T0"))
    assert (missing.content["code"], missing.content["sub_code"]) == (
        "40001",
        "isv.missing-app-cert-sn",
    )
    wrong = await box.call(TRANSFER, biz("T0"), **(sns(issued) | {"app_cert_sn": "0" * 32}))
    assert wrong.content["sub_code"] == "isv.invalid-app-cert-sn"


async def test_balance_idempotency_and_query(box: Box) -> None:
    issued = await cert_mode(box)
    short = await transfer(box, issued, biz("T1", "1.00"))
    assert verified(box, short)
    assert short.content["sub_code"] == "PAYER_BALANCE_NOT_ENOUGH"
    created = await box.precreate("PAID_1", total_amount="5.00")
    assert created.content["code"] == "10000"
    status, _ = await box.pay("PAID_1")
    assert status == 200
    status, balance = await box.admin("GET", f"/apps/{APP_ID}/balance")
    assert balance["balance"] == 500
    made = await transfer(box, issued, biz("T1", "1.00"))
    assert made.content["code"] == "10000" and made.content["status"] == "SUCCESS"
    again = await transfer(box, issued, biz("T1", "1.00"))
    assert again.content["order_id"] == made.content["order_id"]
    changed = await transfer(box, issued, biz("T1", "1.01"))
    assert changed.content["sub_code"] == "INVALID_PARAMETER"
    status, balance = await box.admin("GET", f"/apps/{APP_ID}/balance")
    assert balance["balance"] == 400

    queried = await box.call(
        QUERY,
        {
            "product_code": "TRANS_ACCOUNT_NO_PWD",
            "biz_scene": "DIRECT_TRANSFER",
            "out_biz_no": "T1",
        },
        **sns(issued),
    )
    assert queried.content["status"] == "SUCCESS" and queried.content["trans_amount"] == "1.00"
    unknown = await box.call(
        QUERY,
        {
            "product_code": "TRANS_ACCOUNT_NO_PWD",
            "biz_scene": "DIRECT_TRANSFER",
            "out_biz_no": "T9",
        },
        **sns(issued),
    )
    assert unknown.content["sub_code"] == "ORDER_NOT_EXIST"


@pytest.mark.parametrize(
    ("changes", "sub_code"),
    [
        ({"trans_amount": "0.09"}, "EXCEED_LIMIT_SM_MIN_AMOUNT"),
        ({"trans_amount": "100000.01"}, "EXCEED_LIMIT_SM_AMOUNT"),
        (
            {
                "payee_info": {
                    "identity": "notexist@x.com",
                    "identity_type": "ALIPAY_LOGON_ID",
                    "name": "张三",
                }
            },
            "PAYEE_NOT_EXIST",
        ),
        (
            {
                "payee_info": {
                    "identity": "a@x.com",
                    "identity_type": "ALIPAY_LOGON_ID",
                    "name": "姓名不符",
                }
            },
            "PAYEE_USER_INFO_ERROR",
        ),
        (
            {"payee_info": {"identity": "a@x.com", "identity_type": "ALIPAY_LOGON_ID"}},
            "INVALID_PARAMETER",
        ),
        ({"product_code": "STD_RED_PACKET"}, "INVALID_PARAMETER"),
    ],
)
async def test_transfer_rules(box: Box, changes: dict[str, Any], sub_code: str) -> None:
    issued = await cert_mode(box)
    status, _ = await box.admin("POST", f"/apps/{APP_ID}/balance", {"amount": 10**9})
    assert status == 200
    refused = await transfer(box, issued, biz("TR", **changes))
    assert verified(box, refused)
    assert refused.content["sub_code"] == sub_code
