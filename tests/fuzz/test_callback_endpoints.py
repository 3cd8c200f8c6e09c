"""Forged and malformed callbacks against the three channels' endpoints on the real stack:
random bytes, plausible notifications with random or foreign signatures, odd headers. None is
acknowledged as received (each channel's own success answer), none crashes the gateway, and
the database is left as it was.

What "refused" looks like is each channel's own protocol: WeChat Pay `500 {"code": "FAIL"}`
(its protocol's "send again"), Alipay `200 fail` (anything but `success`), Stripe
`400 {"received": false}`. A 500 that is not WeChat's FAIL answer is a crash."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from payfront.devsetup_alipay import AlipaySandboxAccount, provision_alipay_sandbox_account
from payfront.devsetup_stripe import StripeSandboxAccount, provision_stripe_sandbox_account
from tests import wechat_forge
from tests.conftest import Stack
from tests.fuzz.conftest import FUZZ_SETTINGS, LoopBridge, db_snapshot, in_thread
from tests.fuzz.strategies import dumps, header_values, json_values, not_json, weird_text

Answer = Callable[[httpx.Response], str]

# Hypothesis warns when it prints a 40 kB example; that is the point of some examples here.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@dataclass(frozen=True)
class Target:
    """One channel account's callback endpoint, with orders it could name."""

    channel: str
    url: str
    pay_no: str
    ids: dict[str, str]  # the account's own identifiers (mchid, app_id, intent id, …)


async def _awaiting(stack: Stack, **fields: Any) -> dict[str, Any]:
    payment = (await stack.create_payment(**fields)).json()
    token = await stack.token(payment["token"], wait=5)
    assert token["status"] == "awaiting_payment", token
    return token


# Each fixture leaves one awaiting order at its channel, then stops the worker, so that nothing
# but the callbacks may change the database.


@pytest.fixture
async def wechat(stack: Stack) -> Target:
    token = await _awaiting(stack)
    await stack.stop_worker()
    _, serial = wechat_forge.sandbox_platform_key(stack.sandbox_state_dir)
    keys = stack.account.keys
    return Target(
        "wechatpay",
        f"{stack.gateway_url}/test/callbacks/wechatpay/{stack.account.account_id}",
        token["pay_no"],
        {"mchid": keys.mchid, "appid": keys.appid, "serial": serial, "apiv3": keys.apiv3_key},
    )


@pytest.fixture
async def alipay(stack: Stack) -> Target:
    account: AlipaySandboxAccount = await provision_alipay_sandbox_account(
        stack.db, stack.vault, sandbox_url=stack.sandbox_url, merchant_id="mch_test",
        account_id="ali_test",
    )  # fmt: skip
    token = await _awaiting(stack, channel="alipay", method="qr")
    await stack.stop_worker()
    return Target(
        "alipay",
        f"{stack.gateway_url}/test/callbacks/alipay/ali_test",
        token["pay_no"],
        {"app_id": account.app_id},
    )


@pytest.fixture
async def stripe(stack: Stack) -> Target:
    account: StripeSandboxAccount = await provision_stripe_sandbox_account(
        stack.db,
        stack.vault,
        sandbox_url=stack.sandbox_url,
        merchant_id="mch_test",
        account_id="stripe_test",
        webhook_url=f"{stack.gateway_url}/test/callbacks/stripe/stripe_test",
    )
    token = await _awaiting(stack, channel="stripe", method="payment_intent", currency="USD")
    await stack.stop_worker()
    return Target(
        "stripe",
        f"{stack.gateway_url}/test/callbacks/stripe/stripe_test",
        token["pay_no"],
        {
            "intent": token["credential"]["payment_intent_id"],
            "account": account.stripe_account_id,
        },
    )


# -- strategies, one per channel --------------------------------------------------------------


def _now_plus(seconds: int) -> str:
    return str(int(time.time()) + seconds)


timestamps = st.one_of(
    st.integers(-400, 400).map(_now_plus), header_values, st.sampled_from(["0", "-1", "9" * 30])
)
signatures = st.one_of(
    st.binary(min_size=0, max_size=300).map(lambda raw: base64.b64encode(raw).decode()),
    header_values,
)


def optional_headers(**fields: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional=fields)


def wechat_requests(target: Target) -> st.SearchStrategy[tuple[dict[str, str], bytes]]:
    ids = target.ids
    headers = optional_headers(
        **{
            "Wechatpay-Timestamp": timestamps,
            "Wechatpay-Nonce": st.one_of(
                st.just("593BEC0C930BF1AFEB40B4A08C8FB242"), header_values
            ),
            "Wechatpay-Signature": signatures,
            "Wechatpay-Serial": st.one_of(st.just(ids["serial"]), header_values),
            "Wechatpay-Signature-Type": st.sampled_from(["WECHATPAY2-SHA256-RSA2048", "HMAC", ""]),
            "Content-Type": st.sampled_from(["application/json", "text/plain", ""]),
        }
    )
    resource = st.fixed_dictionaries(
        {},
        optional={
            "original_type": st.sampled_from(["transaction", "refund"]) | weird_text,
            "algorithm": st.sampled_from(["AEAD_AES_256_GCM"]) | weird_text,
            "ciphertext": st.binary(max_size=400).map(lambda raw: base64.b64encode(raw).decode())
            | json_values,
            "associated_data": st.sampled_from(["transaction", "refund", ""]) | json_values,
            "nonce": st.sampled_from(["abcdefghijkl"]) | json_values,
        },
    )
    notification = st.fixed_dictionaries(
        {},
        optional={
            "id": weird_text | json_values,
            "create_time": st.sampled_from(["2026-11-25T20:00:01+08:00"]) | json_values,
            "resource_type": st.sampled_from(["encrypt-resource"]) | json_values,
            "event_type": st.sampled_from(["TRANSACTION.SUCCESS", "REFUND.SUCCESS"]) | json_values,
            "summary": weird_text,
            "resource": resource | json_values,
        },
    )
    # Encrypted with the account's real APIv3 key (what an attacker does not have, but the
    # gateway must not decrypt before it verifies), signed by a stranger.
    stranger = wechat_forge.stranger_key()

    def forged(total: int, state: str, use_real_serial: bool) -> tuple[dict[str, str], bytes]:
        transaction = wechat_forge.transaction(
            mchid=ids["mchid"], appid=ids["appid"], out_trade_no=target.pay_no, total=total
        )
        transaction["trade_state"] = state
        return wechat_forge.callback(
            transaction,
            apiv3_key=ids["apiv3"],
            signing_key=stranger,
            serial=ids["serial"] if use_real_serial else "PUB_KEY_ID_0000",
        )

    return st.one_of(
        st.tuples(headers, st.one_of(notification.map(dumps), json_values.map(dumps), not_json())),
        st.builds(
            forged,
            st.sampled_from([100, 1, 0, -1, 2**40]),
            st.sampled_from(["SUCCESS", "NOTPAY", "x"]),
            st.booleans(),
        ),
    )


def alipay_requests(target: Target) -> st.SearchStrategy[tuple[dict[str, str], bytes]]:
    fields = st.fixed_dictionaries(
        {},
        optional={
            "notify_id": st.just("2026112500222120531000000000") | weird_text,
            "notify_type": st.sampled_from(["trade_status_sync", "refund_sync"]) | weird_text,
            "notify_time": st.just("2026-11-25 12:05:32") | weird_text,
            "out_trade_no": st.just(target.pay_no) | weird_text,
            "trade_no": st.just("2026112522001404070200176844") | weird_text,
            "trade_status": st.sampled_from(
                ["TRADE_SUCCESS", "TRADE_FINISHED", "WAIT_BUYER_PAY", "TRADE_CLOSED"]
            )
            | weird_text,
            "total_amount": st.sampled_from(["1.00", "0.01", "-1", "1e9", "NaN"]) | weird_text,
            "app_id": st.just(target.ids["app_id"]) | weird_text,
            "auth_app_id": st.just(target.ids["app_id"]) | weird_text,
            "charset": st.sampled_from(["utf-8", "GBK", "gb2312", "utf-16", "x-junk", ""])
            | weird_text,
            "sign_type": st.sampled_from(["RSA2", "RSA", ""]) | weird_text,
            "sign": signatures,
            "gmt_payment": st.just("2026-11-25 12:05:31") | weird_text,
            "refund_fee": st.just("1.00") | weird_text,
            "out_biz_no": weird_text,
        },
    )
    form = fields.map(
        lambda values: urlencode(values, errors="surrogatepass").encode("ascii", "replace")
    )
    headers = optional_headers(
        **{
            "Content-Type": st.sampled_from(
                [
                    "application/x-www-form-urlencoded; charset=utf-8",
                    "application/x-www-form-urlencoded; charset=GBK",
                    "application/json",
                ]
            )
            | header_values
        }
    )
    return st.tuples(headers, st.one_of(form, not_json(), json_values.map(dumps)))


def stripe_requests(target: Target) -> st.SearchStrategy[tuple[dict[str, str], bytes]]:
    hexes = st.binary(min_size=32, max_size=32).map(bytes.hex)
    signature_header = st.one_of(
        st.builds(lambda t, v1: f"t={t},v1={v1}", st.integers(-400, 400).map(_now_plus), hexes),
        st.builds(lambda t, v1, v0: f"t={t},v1={v1},v0={v0}", timestamps, hexes, hexes),
        header_values,
    )
    intent = st.fixed_dictionaries(
        {},
        optional={
            "id": st.just(target.ids["intent"]) | weird_text,
            "object": st.sampled_from(["payment_intent", "charge", "refund"]),
            "amount": st.sampled_from([250, 0, -1, 2**63]) | json_values,
            "amount_received": st.sampled_from([250, 0]) | json_values,
            "currency": st.sampled_from(["usd", "cny", "USD"]) | json_values,
            "status": st.sampled_from(["succeeded", "canceled", "processing"]) | json_values,
            "metadata": st.just({"pay_no": target.pay_no}) | json_values,
            "latest_charge": weird_text,
        },
    )
    event = st.fixed_dictionaries(
        {
            "id": st.just("evt_fuzz") | weird_text,
            "object": st.just("event"),
            "type": st.sampled_from(
                [
                    "payment_intent.succeeded",
                    "payment_intent.payment_failed",
                    "payment_intent.canceled",
                    "charge.refunded",
                    "charge.succeeded",
                ]
            )
            | weird_text,
            "created": st.integers(-(2**40), 2**40),
            "livemode": st.booleans(),
            "data": st.fixed_dictionaries({"object": intent}) | json_values,
        },
        optional={"account": st.just(target.ids["account"]) | weird_text},
    )
    headers = optional_headers(
        **{
            "Stripe-Signature": signature_header,
            "Content-Type": st.sampled_from(["application/json; charset=utf-8", "text/plain"]),
        }
    )
    return st.tuples(headers, st.one_of(event.map(dumps), json_values.map(dumps), not_json()))


# -- what a refusal looks like ------------------------------------------------------------------


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _gateway_error(answer: httpx.Response) -> str | None:
    """The code of the gateway's own error object (not a channel's answer), if it is one."""
    body = _json(answer)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code"))
    return None


def _refused_before_the_channel(answer: httpx.Response) -> str | None:
    """A body over PAYFRONT_MAX_BODY_BYTES is refused (413) before the adapter sees it; any
    other gateway error object (500 internal_error above all) is a failure."""
    code = _gateway_error(answer)
    if code is None:
        return None
    assert (answer.status_code, code) == (413, "body_too_large"), answer.text
    return "413 body_too_large"


def wechat_refusal(answer: httpx.Response) -> str:
    if early := _refused_before_the_channel(answer):
        return early
    assert answer.status_code == 500, "WeChat's callback answer must be FAIL (500)"
    assert _json(answer)["code"] == "FAIL", answer.text
    return "500 FAIL"


def alipay_refusal(answer: httpx.Response) -> str:
    if early := _refused_before_the_channel(answer):
        return early
    assert answer.status_code == 200, answer.text
    assert answer.content != b"success", "acknowledged"
    return f"200 {answer.text[:10]}"


def stripe_refusal(answer: httpx.Response) -> str:
    if early := _refused_before_the_channel(answer):
        return early
    assert answer.status_code == 400, answer.text
    assert _json(answer)["received"] is False, answer.text
    return "400 received=false"


def fuzz_callbacks(
    target: Target,
    requests: st.SearchStrategy[tuple[dict[str, str], bytes]],
    refusal: Answer,
    stack: Stack,
) -> Callable[[LoopBridge], None]:
    def run(bridge: LoopBridge) -> None:
        before = bridge.run(lambda: db_snapshot(stack))
        seen: Counter[str] = Counter()
        with httpx.Client(timeout=30) as client:

            @FUZZ_SETTINGS
            @given(request=requests)
            def one(request: tuple[dict[str, str], bytes]) -> None:
                headers, body = request
                note(f"headers {headers!r}\nbody {body[:600]!r} ({len(body)} bytes)")
                wire = [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]
                answer = client.post(target.url, content=body, headers=wire)
                note(f"answer {answer.status_code} {answer.text[:300]}")
                seen[refusal(answer)] += 1
                assert bridge.run(lambda: db_snapshot(stack)) == before, "the database changed"

            one()
        print(f"{target.channel}: {dict(seen)}")  # pytest -s

    return run


async def test_forged_wechatpay_callbacks_are_refused_and_change_nothing(
    stack: Stack, wechat: Target
) -> None:
    await in_thread(fuzz_callbacks(wechat, wechat_requests(wechat), wechat_refusal, stack))


async def test_forged_alipay_notifications_are_refused_and_change_nothing(
    stack: Stack, alipay: Target
) -> None:
    await in_thread(fuzz_callbacks(alipay, alipay_requests(alipay), alipay_refusal, stack))


async def test_forged_stripe_events_are_refused_and_change_nothing(
    stack: Stack, stripe: Target
) -> None:
    await in_thread(fuzz_callbacks(stripe, stripe_requests(stripe), stripe_refusal, stack))


async def test_unknown_callback_paths_are_404_error_objects(stack: Stack) -> None:
    await stack.stop_worker()
    # Short segments: a request line over 8190 bytes is refused by aiohttp's HTTP parser
    # (a plain-text 400) before payfront sees it.
    segments = st.one_of(
        st.sampled_from(["wechatpay", "alipay", "stripe", stack.account.account_id, "..", "%"]),
        weird_text.filter(lambda text: len(text) <= 200),
    ).filter(bool)

    def run(bridge: LoopBridge) -> None:
        before = bridge.run(lambda: db_snapshot(stack))
        with httpx.Client(timeout=30) as client:

            @FUZZ_SETTINGS
            @given(channel=segments, account=segments, body=st.binary(max_size=200))
            def one(channel: str, account: str, body: bytes) -> None:
                if (channel, account) == ("wechatpay", stack.account.account_id):
                    return  # the one real endpoint: the test above
                path = "/test/callbacks/{}/{}".format(
                    quote(channel, safe="", errors="surrogatepass"),
                    quote(account, safe="", errors="surrogatepass"),
                )
                answer = client.post(stack.gateway_url + path, content=body)
                note(f"{path} → {answer.status_code} {answer.text[:300]}")
                assert answer.status_code in (404, 405), answer.text
                assert answer.json()["error"]["type"] in (
                    "not_found_error",
                    "invalid_request_error",
                )
                assert bridge.run(lambda: db_snapshot(stack)) == before

            one()

    await in_thread(run)


async def test_a_nul_in_the_account_is_a_404(stack: Stack) -> None:
    await stack.stop_worker()
    before = await db_snapshot(stack)
    answer = await stack.http.post(
        f"{stack.gateway_url}/test/callbacks/wechatpay/%00", content=b"{}"
    )
    # Found by the fuzz above: PostgreSQL refused a NUL in the account lookup's text parameter
    # (a 500); account ids are now checked before any lookup.
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "route_not_found"
    assert await db_snapshot(stack) == before
