"""All of payfront's configuration, read from ``PAYFRONT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYFRONT_", env_file=None, extra="ignore")

    # State of record and queues.
    database_url: str = "sqlite+aiosqlite:///./.payfront/payfront.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # The core link (prepay, order checks) and merchant notifications: separate queues with
    # separate worker pools, so a webhook flood never delays a payment.
    queue_name: str = "payfront:core"
    notify_queue_name: str = "payfront:notify"
    # base64 of 32 random bytes; encrypts channel credentials and webhook secrets at rest.
    master_key: str = ""

    # Gateway.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    # Where channels reach our callback endpoints (what goes into notify_url).
    public_base_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = 64 * 1024
    # Requests per second per merchant across all gateways (0: no limit).
    rate_limit_per_s: int = 500
    token_max_wait_s: float = 30.0
    auth_cache_ttl_s: float = 30.0

    # Worker.
    worker_max_jobs: int = Field(default=500, ge=1)
    notify_max_jobs: int = Field(default=200, ge=1)
    worker_poll_delay_s: float = 0.05
    job_timeout_s: float = 60.0
    # Prometheus endpoint of a worker (0: none; give each worker on a host its own port).
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 9108
    channel_timeout_s: float = 10.0
    channel_connect_timeout_s: float = 3.0
    channel_max_connections: int = 200
    prepay_max_tries: int = 8
    prepay_retry_base_s: float = 1.0
    # Outbox rows older than this with no result are re-enqueued by the sweeper.
    sweep_interval_s: int = 5
    sweep_grace_s: float = 10.0
    # Orders awaiting payment with no callback for this long are queried (a lost callback),
    # then every check_every_s; expired ones are closed at the channel, then here.
    check_after_s: float = 60.0
    check_every_s: float = 300.0
    webhook_timeout_s: float = 10.0
    # Channel protection (docs/routing.md): per channel account and worker process, at most
    # this many calls in flight, a bounded wait for a slot (then: retry later, nothing sent);
    # a circuit breaker shared through Redis, read by gateways every breaker_refresh_s.
    channel_max_in_flight: int = Field(default=64, ge=1)
    channel_slot_wait_s: float = 2.0
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = 30.0
    breaker_half_open_probes: int = Field(default=1, ge=1)
    breaker_refresh_s: float = 1.0
    # A callback whose signature fails but that names an order we hold may trigger a query
    # of that order: at most once per order per interval, at most this many per account a
    # minute (0: never).
    unverified_check_interval_s: float = 60.0
    unverified_checks_per_minute: int = 30
    # Multiplies the webhook retry schedule (tests shrink it; production keeps 1).
    webhook_retry_scale: float = 1.0

    # Sandbox.
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = 8090
    sandbox_state_dir: Path = Path(".payfront/sandbox")
    sandbox_time_scale: float = 1.0

    # Development.
    data_dir: Path = Path(".payfront")
    log_format: str = "console"  # or "json"
    log_level: str = "INFO"

    # `payfront dev` only: a test-mode key it creates for its local merchant.
    dev_api_key: str = "sk_test_dev_local_only_do_not_use_in_production"
