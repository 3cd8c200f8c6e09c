"""Prometheus metrics of payfront's processes (one registry per process; the gateway serves
it at /metrics, a worker on PAYFRONT_WORKER_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "payfront_http_requests_total", "Gateway requests answered", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "payfront_http_request_duration_seconds",
    "Gateway request latency",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS,
)
JOBS = Counter("payfront_jobs_total", "Jobs run, by outcome", ["function", "outcome"])
JOB_LATENCY = Histogram(
    "payfront_job_duration_seconds", "Job run time", ["function"], buckets=_LATENCY_BUCKETS
)
JOB_PICKUP = Histogram(
    "payfront_job_pickup_seconds",
    "From enqueue (or due time) to start",
    ["function"],
    buckets=_LATENCY_BUCKETS,
)
CHANNEL_LATENCY = Histogram(
    "payfront_channel_request_duration_seconds",
    "Channel call latency",
    ["channel", "account", "operation"],
    buckets=_LATENCY_BUCKETS,
)
CHANNEL_ERRORS = Counter(
    "payfront_channel_errors_total",
    "Channel calls that failed, by class (retryable, unknown_outcome, fatal, not_found)",
    ["channel", "account", "operation", "kind"],
)
QUEUE_DEPTH = Gauge("payfront_queue_depth", "Jobs waiting in the arq queue", ["queue"])
# Per mode (live, test): each mode's sweeper reads its own database.
OUTBOX_LAG = Gauge(
    "payfront_outbox_lag_seconds",
    "Age of the oldest outbox row still pending (0 if none)",
    ["mode"],
)
WEBHOOK_BACKLOG = Gauge(
    "payfront_webhook_backlog",
    "Webhook deliveries pending (due now or scheduled for retry)",
    ["mode"],
)
CIRCUIT_STATE = Gauge(
    "payfront_circuit_state",
    "Circuit of a channel account as this process last saw it: 0 closed, 1 half-open, 2 open",
    ["account"],
)
CIRCUIT_TRANSITIONS = Counter(
    "payfront_circuit_transitions_total",
    "Circuit changes this process made, by channel account",
    ["account", "from_state", "to_state"],
)
CHANNEL_IN_FLIGHT = Gauge(
    "payfront_channel_in_flight", "Channel calls in flight in this process", ["account"]
)
CHANNEL_REFUSED = Counter(
    "payfront_channel_calls_refused_total",
    "Channel calls not sent: circuit_open, or busy (no slot within the bounded wait)",
    ["account", "reason"],
)
UNVERIFIED_CALLBACKS = Counter(
    "payfront_unverified_callbacks_total",
    "Callbacks that failed verification, by what followed (check_enqueued, throttled, ...)",
    ["channel", "outcome"],
)
