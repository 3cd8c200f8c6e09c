"""The Prometheus endpoint counts what happened: requests by route, jobs, channel calls."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack


async def _samples(stack: Stack) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = await stack.http.get(f"{stack.gateway_url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_a_payment_shows_up_in_the_metrics(stack: Stack) -> None:
    before = await _samples(stack)
    payment = (await stack.create_payment()).json()
    await stack.token(payment["token"], wait=5)
    after = await _samples(stack)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert (
        delta("payfront_http_requests_total", route="/v1/payments", method="POST", status="201")
        == 1
    )
    # Routes are labelled by pattern, never by token or pay number.
    assert (
        delta(
            "payfront_http_requests_total", route="/v1/tokens/{token}", method="GET", status="200"
        )
        == 1
    )
    assert delta("payfront_jobs_total", function="prepay", outcome="ok") == 1
    labels = {"channel": "wechatpay", "account": "wx_test", "operation": "create"}
    assert delta("payfront_channel_request_duration_seconds_count", **labels) == 1
    assert not any(payment["token"] in name or payment["token"] in str(lbl) for name, lbl in after)


async def test_channel_failures_are_counted_by_class(stack: Stack) -> None:
    await stack.set_faults(error_rate=1.0)
    before = await _samples(stack)
    payment = (await stack.create_payment()).json()
    await stack.wait_status(payment["pay_no"], "prepaying")
    labels = {"channel": "wechatpay", "account": "wx_test", "operation": "create"}
    for _ in range(200):
        after = await _samples(stack)
        failed = _value(
            after, "payfront_channel_errors_total", kind="unknown_outcome", **labels
        ) - _value(before, "payfront_channel_errors_total", kind="unknown_outcome", **labels)
        if failed >= 1:
            break
    assert failed >= 1
    retried = _value(after, "payfront_jobs_total", function="prepay", outcome="retry") - _value(
        before, "payfront_jobs_total", function="prepay", outcome="retry"
    )
    assert retried >= 1
    await stack.set_faults()
