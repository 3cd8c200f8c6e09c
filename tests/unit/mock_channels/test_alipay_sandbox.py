"""The Alipay OpenAPI emulator: both transports, authentication, signed answers, the trade life
cycle (no trade before the scan), idempotency, the cashier, notifications and their retries,
fault injection, persistence.

Requests are signed and answers verified by a small signer written here, independently of both
the sandbox and payfront's adapter (plus one round trip through the adapter at the end)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import json
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mock_channels.alipay_sandbox import ALIPAY_SANDBOX
from mock_channels.alipay_store import AlipayStore
from mock_channels.app import SandboxConfig, create_app

APP_ID = "2021000122600001"
BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def rsa2(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa2_ok(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def alipay_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory holding an Alipay key made once: an RSA key generation per test
    would dominate the run."""
    state_dir = tmp_path_factory.mktemp("alipay") / "state"
    AlipayStore(state_dir).load_or_create_key()
    return state_dir


@pytest.fixture
def state_dir(tmp_path: Path, alipay_state: Path) -> Path:
    shutil.copytree(alipay_state, tmp_path / "state")
    return tmp_path / "state"


@dataclass
class Answer:
    status: int
    body: bytes
    key: str
    content: dict[str, Any]
    signed_text: bytes
    sign: str | None


@dataclass
class Receiver:
    """A merchant's notify_url: records every delivery; answers from ``answers`` in turn."""

    url: str = ""
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.deliveries.append((dict(request.headers), await request.read()))
        self.arrived.set()
        return web.Response(text=self.answers.pop(0) if self.answers else "success")

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.deliveries) < count:
                self.arrived.clear()
                await self.arrived.wait()


@dataclass
class Box:
    client: TestClient[web.Request, web.Application]
    key: rsa.RSAPrivateKey
    alipay_public: rsa.RSAPublicKey
    registration: dict[str, Any]
    receiver: Receiver

    def params(self, method: str, biz: dict[str, Any] | None, **common: str) -> dict[str, str]:
        params = {
            "app_id": APP_ID,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
        }
        if biz is not None:
            params["biz_content"] = json.dumps(biz, ensure_ascii=False, separators=(",", ":"))
        params.update(common)
        return params

    def sign(self, params: dict[str, str], key: rsa.RSAPrivateKey | None = None) -> None:
        content = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k])
        params["sign"] = rsa2(key or self.key, content.encode(params.get("charset", "utf-8")))

    async def call(
        self,
        method: str,
        biz: dict[str, Any] | None,
        *,
        transport: str = "post",
        key: rsa.RSAPrivateKey | None = None,
        change: dict[str, str] | None = None,
        **common: str,
    ) -> Answer:
        params = self.params(method, biz, **common)
        self.sign(params, key)
        codec = params.get("charset", "utf-8")
        params.update(change or {})
        if transport == "get":  # python-alipay-sdk: everything in the query string
            response = await self.client.get("/gateway.do?" + urlencode(params, encoding=codec))
        else:  # the official SDKs: common parameters in the URL, biz_content in the form
            body = {"biz_content": params.pop("biz_content")} if "biz_content" in params else {}
            response = await self.client.post(
                "/gateway.do?" + urlencode(params, encoding=codec),
                data=urlencode(body, encoding=codec),
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
            )
        async with response:
            return parse_answer(response.status, await response.read())

    async def admin(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        async with self.client.request(method, "/sandbox/alipay" + path, json=payload) as answer:
            text = await answer.text()
            return answer.status, (json.loads(text) if text else None)

    async def pay(self, out_trade_no: str, **body: Any) -> tuple[int, Any]:
        return await self.admin("POST", f"/orders/{out_trade_no}/pay", body)

    async def precreate(self, out_trade_no: str, **changes: Any) -> Answer:
        biz = {"out_trade_no": out_trade_no, "total_amount": "19.99", "subject": "深圳腾大-QQ公仔"}
        biz |= changes
        return await self.call("alipay.trade.precreate", biz, notify_url=self.receiver.url)

    async def query(self, out_trade_no: str, **ref: str) -> Answer:
        return await self.call("alipay.trade.query", {"out_trade_no": out_trade_no, **ref})

    def verified(self, answer: Answer) -> bool:
        return answer.sign is not None and rsa2_ok(
            self.alipay_public, answer.signed_text, answer.sign
        )


def parse_answer(status: int, body: bytes) -> Answer:
    """Locate the member the way the official SDKs do: after ``"…_response":``, up to the
    last ``,"sign":"`` (the sandbox must put sign last)."""
    data = json.loads(body)
    key = next(iter(data))
    prefix = b'{"' + key.encode() + b'":'
    assert body.startswith(prefix)
    if "sign" in data:
        assert list(data)[-1] == "sign"
        signed_text = body[len(prefix) : body.rindex(b',"sign":"')]
    else:
        signed_text = body[len(prefix) : -1]
    return Answer(status, body, key, data[key], signed_text, data.get("sign"))


async def start(state_dir: Path, key: rsa.RSAPrivateKey, **config: Any) -> Box:
    settings = SandboxConfig(
        state_dir=state_dir,
        time_scale=config.pop("time_scale", 0.0001),
        callback_timeout_s=config.pop("callback_timeout_s", 1.0),
        seed=config.pop("seed", 1),
        **config,
    )
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    answer = await client.post(
        "/sandbox/alipay/apps", json={"app_id": APP_ID, "app_public_key_pem": public_pem(key)}
    )
    assert answer.status == 200, await answer.text()
    registration = await answer.json()
    alipay_public = serialization.load_pem_public_key(
        registration["alipay_public_key_pem"].encode()
    )
    assert isinstance(alipay_public, rsa.RSAPublicKey)
    return Box(client, key, alipay_public, registration, Receiver())


@pytest.fixture
async def box(state_dir: Path, app_key: rsa.RSAPrivateKey) -> AsyncIterator[Box]:
    sandbox = await start(state_dir, app_key)
    receiver_app = web.Application()
    receiver_app.router.add_post("/notify", sandbox.receiver.handle)
    server = TestServer(receiver_app)
    await server.start_server()
    sandbox.receiver.url = str(server.make_url("/notify"))
    yield sandbox
    await sandbox.client.close()
    await server.close()


# -- registration and authentication --------------------------------------------------------


async def test_registration(box: Box, app_key: rsa.RSAPrivateKey) -> None:
    assert box.registration["app_id"] == APP_ID
    assert box.registration["seller_id"].startswith("2088")
    assert len(box.registration["seller_id"]) == 16
    assert box.alipay_public.key_size == 2048
    # Registering again (a new key) keeps the seller and the Alipay key.
    again = {"app_id": APP_ID, "app_public_key_pem": public_pem(app_key)}
    assert await box.admin("POST", "/apps", again) == (200, box.registration)
    for bad in [
        {"app_id": APP_ID, "app_public_key_pem": "not a key"},
        {"app_id": "", "app_public_key_pem": public_pem(app_key)},
        {"app_id": APP_ID, "app_public_key_pem": public_pem(app_key), "seller_id": "123"},
    ]:
        status, body = await box.admin("POST", "/apps", bad)
        assert (status, body["code"]) == (400, "INVALID_PARAMETER")


@pytest.mark.parametrize("transport", ["get", "post"])
async def test_precreate_answers_signed_with_sign_last(box: Box, transport: str) -> None:
    biz = {"out_trade_no": "T_" + transport, "total_amount": "0.01", "subject": "测试\u00e9"}
    answer = await box.call("alipay.trade.precreate", biz, transport=transport)
    assert answer.status == 200
    assert answer.key == "alipay_trade_precreate_response"
    assert answer.content["code"] == "10000" and answer.content["msg"] == "Success"
    assert answer.content["qr_code"].startswith("https://qr.alipay.com/bax")
    assert box.verified(answer)
    assert not rsa2_ok(box.alipay_public, answer.signed_text + b" ", answer.sign or "")


async def test_biz_content_escaped_the_python_alipay_sdk_way(box: Box) -> None:
    # json.dumps' default ensure_ascii: the signature covers the \u escapes as sent.
    params = box.params("alipay.trade.precreate", None)
    params["biz_content"] = json.dumps(
        {"out_trade_no": "T_ESC", "total_amount": 0.01, "subject": "大乐透"}, separators=(",", ":")
    )
    assert "\\u" in params["biz_content"]
    box.sign(params)
    async with box.client.get("/gateway.do?" + urlencode(params)) as response:
        answer = parse_answer(response.status, await response.read())
    assert answer.content["code"] == "10000", answer.content
    _status, view = await box.admin("GET", "/orders/T_ESC")
    assert view["subject"] == "大乐透" and view["total_amount"] == "0.01"


async def test_gbk_request(box: Box) -> None:
    biz = {"out_trade_no": "T_GBK", "total_amount": "1", "subject": "中文标题"}
    answer = await box.call("alipay.trade.precreate", biz, transport="get", charset="GBK")
    assert answer.content["code"] == "10000", answer.content
    assert (await box.admin("GET", "/orders/T_GBK"))[1]["subject"] == "中文标题"


@pytest.mark.parametrize(
    ("change", "code", "sub_code", "signed"),
    [
        ({"sign": ""}, "40001", "isv.missing-signature", True),
        ({"sign_type": "RSA"}, "40002", "isv.invalid-signature-type", True),
        ({"timestamp": "2026/11/25 12:00"}, "40002", "isv.invalid-timestamp", True),
        ({"format": "xml"}, "40002", "isv.invalid-format", True),
        ({"subject": "x"}, "40002", "isv.invalid-signature", True),
        ({"version": ""}, "40001", "isv.missing-version", True),
        ({"app_id": "2021999999999999"}, "40002", "isv.invalid-app-id", False),
        ({"app_id": ""}, "40001", "isv.missing-app-id", False),
        ({"charset": "latin-9"}, "40002", "isv.invalid-charset", False),
    ],
)
async def test_refused_requests(
    box: Box, change: dict[str, str], code: str, sub_code: str, signed: bool
) -> None:
    biz = {"out_trade_no": "T_REFUSED", "total_amount": "1.00", "subject": "x"}
    answer = await box.call("alipay.trade.precreate", biz, change=change)
    assert (answer.content["code"], answer.content["sub_code"]) == (code, sub_code)
    assert (answer.sign is not None) is signed
    if signed:
        assert box.verified(answer)
    assert (await box.admin("GET", "/orders/T_REFUSED"))[0] == 404


async def test_bad_timestamp_is_reported_when_signed(box: Box) -> None:
    biz = {"out_trade_no": "T_TS", "total_amount": "1.00", "subject": "x"}
    answer = await box.call("alipay.trade.precreate", biz, timestamp="2026/11/25 12:00")
    assert answer.content["sub_code"] == "isv.invalid-timestamp"


async def test_invalid_signature_shows_the_string_verified(
    box: Box, other_key: rsa.RSAPrivateKey
) -> None:
    biz = {"out_trade_no": "T_SIG", "total_amount": "1.00", "subject": "x"}
    answer = await box.call("alipay.trade.precreate", biz, key=other_key)
    assert answer.content["code"] == "40002"
    assert answer.content["sub_code"] == "isv.invalid-signature"
    assert "app_id=" + APP_ID + "&amp;biz_content={&quot;" in answer.content["sub_msg"]
    assert box.verified(answer)
    # Signed over other values than those sent.
    tampered = await box.call("alipay.trade.precreate", biz, change={"notify_url": "http://x/y"})
    assert tampered.content["sub_code"] == "isv.invalid-signature"


async def test_unknown_or_missing_method(box: Box) -> None:
    unknown = await box.call("alipay.trade.pay.unknown", {"out_trade_no": "x"})
    assert unknown.key == "error_response" and unknown.sign is None
    assert unknown.content["sub_code"] == "isv.invalid-method"
    async with box.client.get("/gateway.do?app_id=" + APP_ID) as response:
        missing = parse_answer(response.status, await response.read())
    assert (missing.key, missing.content["sub_code"]) == ("error_response", "isv.missing-method")


@pytest.mark.parametrize(
    "biz",
    [
        {"total_amount": "1.00", "subject": "x"},
        {"out_trade_no": "T_BIZ", "total_amount": "1.001", "subject": "x"},
        {"out_trade_no": "T_BIZ", "total_amount": "0", "subject": "x"},
        {"out_trade_no": "T_BIZ", "total_amount": "1e2", "subject": "x"},
        {"out_trade_no": "T_BIZ", "total_amount": "100000000.01", "subject": "x"},
        {"out_trade_no": "T_BIZ", "total_amount": "1.00", "subject": ""},
        {"out_trade_no": "T_BIZ", "total_amount": "1.00", "subject": "x", "time_expire": "soon"},
        {"out_trade_no": "T_BIZ", "total_amount": "1.00", "subject": "x", "product_code": "X"},
        {"out_trade_no": "T_BIZ", "total_amount": "1.00", "subject": "x", "seller_id": "2088"},
        {
            "out_trade_no": "T_BIZ",
            "total_amount": "1.00",
            "subject": "x",
            "time_expire": "2020-01-01 00:00:00",
        },
    ],
)
async def test_biz_content_is_validated(box: Box, biz: dict[str, Any]) -> None:
    answer = await box.call("alipay.trade.precreate", biz)
    assert (answer.content["code"], answer.content["sub_code"]) == (
        "40004",
        "ACQ.INVALID_PARAMETER",
    )
    assert box.verified(answer)


# -- the trade life cycle -------------------------------------------------------------------


async def test_no_trade_before_the_scan(box: Box) -> None:
    assert (await box.precreate("T_LIFE")).content["code"] == "10000"
    for method in ("alipay.trade.query", "alipay.trade.close"):
        answer = await box.call(method, {"out_trade_no": "T_LIFE"})
        assert answer.content["sub_code"] == "ACQ.TRADE_NOT_EXIST"
        assert box.verified(answer)

    status, view = await box.pay("T_LIFE", outcome="scan")
    assert (status, view["status"], view["exists_at_alipay"]) == (200, "WAIT_BUYER_PAY", True)
    queried = await box.query("T_LIFE")
    assert queried.content["trade_status"] == "WAIT_BUYER_PAY"
    assert queried.content["total_amount"] == "19.99"
    assert queried.content["buyer_pay_amount"] == "0.00"
    assert queried.content["trade_no"] == view["trade_no"]
    assert box.verified(queried)

    closed = await box.call("alipay.trade.close", {"out_trade_no": "T_LIFE"})
    assert closed.content == {
        "code": "10000",
        "msg": "Success",
        "trade_no": view["trade_no"],
        "out_trade_no": "T_LIFE",
    }
    by_trade_no = await box.call("alipay.trade.query", {"trade_no": view["trade_no"]})
    assert by_trade_no.content["trade_status"] == "TRADE_CLOSED"
    again = await box.call("alipay.trade.close", {"out_trade_no": "T_LIFE"})
    assert again.content["sub_code"] == "ACQ.TRADE_STATUS_ERROR"
    assert (await box.precreate("T_LIFE")).content["sub_code"] == "ACQ.TRADE_HAS_CLOSE"
    assert (await box.pay("T_LIFE"))[0] == 409
    assert box.receiver.deliveries == []


async def test_same_out_trade_no(box: Box) -> None:
    first = await box.precreate("T_IDEM")
    again = await box.precreate("T_IDEM")
    assert first.content["qr_code"] == again.content["qr_code"]
    changed = await box.precreate("T_IDEM", total_amount="20.00")
    assert changed.content["sub_code"] == "ACQ.CONTEXT_INCONSISTENT"
    same = {"out_trade_no": "T_IDEM", "total_amount": "19.99", "subject": "深圳腾大-QQ公仔"}
    cashier = box.params("alipay.trade.page.pay", same)
    box.sign(cashier)
    async with box.client.get(
        "/gateway.do?" + urlencode(cashier), headers={"Accept": "application/json"}
    ) as response:
        assert (await response.json())["sub_code"] == "ACQ.CONTEXT_INCONSISTENT"


async def test_pay_notifies_until_success(box: Box) -> None:
    assert (await box.precreate("T_PAID", passback_params="a%3D1")).content["code"] == "10000"
    box.receiver.answers = ["fail", "", " success \n"]
    status, view = await box.pay("T_PAID")
    assert (status, view["status"]) == (200, "TRADE_SUCCESS")
    await box.receiver.wait_for(3)
    await asyncio.sleep(0.05)
    assert len(box.receiver.deliveries) == 3  # acknowledged on the third: no fourth

    headers, body = box.receiver.deliveries[0]
    assert headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
    signature = fields.pop("sign")
    content = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "sign_type")
    assert rsa2_ok(box.alipay_public, content.encode(), signature)
    assert fields["sign_type"] == "RSA2" and fields["notify_type"] == "trade_status_sync"
    assert fields["trade_status"] == "TRADE_SUCCESS"
    assert fields["total_amount"] == "19.99" and fields["app_id"] == APP_ID
    assert fields["seller_id"] == box.registration["seller_id"]
    assert fields["passback_params"] == "a%3D1"
    assert fields["notify_id"] == view["notify_id"]
    ids = {dict(parse_qsl(b.decode()))["notify_id"] for _, b in box.receiver.deliveries}
    assert ids == {view["notify_id"]}

    _, view = await box.admin("GET", f"/orders/T_PAID?app_id={APP_ID}")
    attempts = view["notify_attempts"]
    assert [a["acknowledged"] for a in attempts] == [False, False, True]
    assert attempts[0]["answer"] == "fail"

    queried = await box.query("T_PAID")
    assert queried.content["trade_status"] == "TRADE_SUCCESS"
    assert queried.content["buyer_pay_amount"] == "19.99"
    assert queried.content["send_pay_date"]
    assert queried.content["fund_bill_list"] == [
        {"amount": "19.99", "fund_channel": "ALIPAYACCOUNT"}
    ]
    assert (await box.precreate("T_PAID")).content["sub_code"] == "ACQ.TRADE_HAS_SUCCESS"
    close = await box.call("alipay.trade.close", {"out_trade_no": "T_PAID"})
    assert close.content["sub_code"] == "ACQ.TRADE_STATUS_ERROR"

    assert (await box.pay("T_PAID"))[0] == 409
    assert (await box.pay("T_PAID", again=True))[0] == 200
    await box.receiver.wait_for(4)


async def test_retry_schedule_is_alipays(state_dir: Path, app_key: rsa.RSAPrivateKey) -> None:
    box = await start(state_dir, app_key, time_scale=0.00001)
    try:
        stamps: list[float] = []

        async def never_success(request: web.Request) -> web.Response:
            stamps.append(time.monotonic())
            return web.Response(text="ok")  # a 200 that is not "success" is no ack

        receiver = web.Application()
        receiver.router.add_post("/notify", never_success)
        server = TestServer(receiver)
        await server.start_server()
        box.receiver.url = str(server.make_url("/notify"))
        await box.precreate("T_SCHEDULE")
        await box.pay("T_SCHEDULE")
        async with asyncio.timeout(10):
            while len(stamps) < 8:
                await asyncio.sleep(0.05)
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        # 4m,10m,10m,1h,2h,6h,15h × 0.00001 = 2.4ms … 0.54s: the 15h gap is the longest.
        assert gaps[-1] == max(gaps) and gaps[-1] > 0.5 and gaps[-2] > 0.2
        await asyncio.sleep(0.1)
        assert len(stamps) == 8
        await server.close()
    finally:
        await box.client.close()


async def test_expiry(box: Box) -> None:
    await box.precreate("T_EXP_SCANNED")
    await box.pay("T_EXP_SCANNED", outcome="fail")
    await box.precreate("T_EXP_UNSCANNED")
    sandbox = box.client.app[ALIPAY_SANDBOX]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    for number in ("T_EXP_SCANNED", "T_EXP_UNSCANNED"):
        trade = sandbox.trades.get(APP_ID, number)
        assert trade is not None
        trade.expire_at = past
    assert (await box.query("T_EXP_SCANNED")).content["trade_status"] == "TRADE_CLOSED"
    unscanned = await box.query("T_EXP_UNSCANNED")
    assert unscanned.content["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    assert (await box.pay("T_EXP_UNSCANNED"))[0] == 409
    assert (await box.precreate("T_EXP_UNSCANNED")).content["sub_code"] == "ACQ.TRADE_HAS_CLOSE"


async def test_paid_amount_override_and_admin_lookups(box: Box) -> None:
    await box.precreate("T_AMOUNT")
    status, _view = await box.pay("T_AMOUNT", paid_amount=1, app_id=APP_ID)
    assert status == 200
    await box.receiver.wait_for(1)
    assert dict(parse_qsl(box.receiver.deliveries[0][1].decode()))["total_amount"] == "0.01"
    assert (await box.query("T_AMOUNT")).content["total_amount"] == "0.01"
    assert (await box.pay("NOPE"))[0] == 404
    assert (await box.admin("GET", "/orders/T_AMOUNT?app_id=other"))[0] == 404
    assert (await box.pay("T_AMOUNT", outcome="maybe"))[0] == 400


# -- the cashier ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["alipay.trade.page.pay", "alipay.trade.wap.pay"])
async def test_cashier(box: Box, method: str, other_key: rsa.RSAPrivateKey) -> None:
    biz = {"out_trade_no": "T_CASHIER", "total_amount": "5.00", "subject": "网页支付"}
    params = box.params(method, biz, notify_url=box.receiver.url)
    box.sign(params)
    url = "/gateway.do?" + urlencode(params)
    async with box.client.get(url) as page:
        assert page.status == 200 and "5.00" in await page.text()
    async with box.client.get(url, headers={"Accept": "application/json"}) as opened:
        view = await opened.json()
    assert view["verified"] is True and view["status"] == "PENDING"
    # Not a trade until the buyer logs in and pays.
    assert (await box.query("T_CASHIER")).content["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    await box.pay("T_CASHIER")
    assert (await box.query("T_CASHIER")).content["trade_status"] == "TRADE_SUCCESS"
    await box.receiver.wait_for(1)

    box.sign(params, other_key)
    async with box.client.get("/gateway.do?" + urlencode(params)) as refused:
        assert "invalid-signature" in await refused.text()


# -- faults and persistence -----------------------------------------------------------------


async def test_faults(state_dir: Path, app_key: rsa.RSAPrivateKey) -> None:
    box = await start(state_dir, app_key, hang_s=5.0)
    try:
        assert (await box.admin("PUT", f"/faults/{APP_ID}", {"error_rate": 1.0}))[0] == 200
        failed = await box.precreate("T_FAULT")
        assert failed.content["sub_code"] == "ACQ.SYSTEM_ERROR" and box.verified(failed)
        assert (await box.admin("GET", "/orders/T_FAULT"))[0] == 404  # not acted on
        await box.admin("PUT", f"/faults/{APP_ID}", {"frequency_limit_rate": 1.0})
        limited = await box.precreate("T_FAULT")
        assert (limited.content["code"], limited.content["sub_code"]) == (
            "20000",
            "isp.unknow-error",
        )
        await box.admin("PUT", f"/faults/{APP_ID}", {"timeout_rate": 1.0})
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await box.precreate("T_FAULT")
        assert (await box.admin("GET", "/orders/T_FAULT"))[0] == 200  # acted on
        assert (await box.admin("DELETE", f"/faults/{APP_ID}"))[0] == 204
        assert (await box.admin("GET", f"/faults/{APP_ID}"))[1]["timeout_rate"] == 0.0
        assert (await box.precreate("T_FAULT")).content["code"] == "10000"
    finally:
        await box.client.close()


async def test_lost_and_duplicated_notifications(box: Box) -> None:
    await box.admin("PUT", f"/faults/{APP_ID}", {"lose_callbacks": 1.0})
    await box.precreate("T_LOST")
    await box.pay("T_LOST")
    assert (await box.admin("GET", "/orders/T_LOST"))[1]["notifies_lost"] == 1
    await box.admin("PUT", f"/faults/{APP_ID}", {"duplicate_callbacks": True})
    await box.precreate("T_DUP")
    await box.pay("T_DUP")
    await box.receiver.wait_for(2)
    bodies = [dict(parse_qsl(body.decode())) for _, body in box.receiver.deliveries]
    assert bodies[0]["notify_id"] == bodies[1]["notify_id"]


async def test_state_survives_a_restart(state_dir: Path, app_key: rsa.RSAPrivateKey) -> None:
    first = await start(state_dir, app_key)
    await first.client.close()
    settings = SandboxConfig(state_dir=state_dir, time_scale=0.001)
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        second = Box(client, app_key, first.alipay_public, first.registration, Receiver())
        answer = await second.precreate("T_RESTART")  # the app is still registered
        assert answer.content["code"] == "10000"
        assert second.verified(answer)  # and answers carry the same Alipay key
    finally:
        await client.close()


async def test_unused_sandbox_makes_no_alipay_key(tmp_path: Path) -> None:
    client = TestClient(TestServer(create_app(SandboxConfig(state_dir=tmp_path))))
    await client.start_server()
    await client.close()
    assert not (tmp_path / "alipay" / "alipay_key.pem").exists()


# -- payfront's adapter against the sandbox -------------------------------------------------


async def test_adapter_round_trip(box: Box) -> None:
    from channels.alipay import Alipay, AlipayConfig
    from channels.base import CreateOrder, HttpRequest, HttpResponse, TradeState

    adapter = Alipay(
        AlipayConfig.from_credentials(
            {
                "app_id": APP_ID,
                "app_private_key_pem": box.key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode(),
                "alipay_public_key_pem": box.registration["alipay_public_key_pem"],
                "gateway_url": str(box.client.make_url("/gateway.do")),
                "seller_id": box.registration["seller_id"],
            }
        )
    )

    async def send(request: HttpRequest) -> HttpResponse:
        async with box.client.session.request(
            request.method, request.url, data=request.body, headers=dict(request.headers)
        ) as response:
            return HttpResponse(response.status, dict(response.headers), await response.read())

    now = dt.datetime.now(dt.UTC)
    order = CreateOrder(
        out_trade_no="T_ADAPTER",
        amount_minor=1234,
        currency="CNY",
        description="往返",
        notify_url=box.receiver.url,
        method="qr",
        expires_at=now + dt.timedelta(minutes=15),
    )
    request = adapter.build_create(order, now=now)
    assert isinstance(request, HttpRequest)
    assert adapter.parse_create(await send(request), now=now).credential["qr_code"]
    assert adapter.parse_create(await send(adapter.build_create(order, now=now)), now=now)
    await box.pay("T_ADAPTER")
    status = adapter.parse_query(await send(adapter.build_query("T_ADAPTER", now=now)), now=now)
    assert status.state is TradeState.PAID and status.amount_minor == 1234
    await box.receiver.wait_for(1)
    headers, body = box.receiver.deliveries[0]
    event = adapter.parse_callback(headers, body, now=now)
    assert event.trade.channel_trade_no == status.channel_trade_no
    assert event.trade.app_id == APP_ID
