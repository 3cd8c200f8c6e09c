"""All of payfront's configuration, read from ``PAYFRONT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

Mode = Literal["live", "test"]
MODES: tuple[Mode, ...] = ("live", "test")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYFRONT_", env_file=None, extra="ignore")

    # State of record and queues. ``database_url`` holds live data (``sk_live_`` keys);
    # test mode (``sk_test_`` keys) reads and writes only the shadow database,
    # ``test_database_url``: empty means derived from ``database_url`` (SQLite
    # ``payfront.db`` -> ``payfront-shadow.db``, PostgreSQL ``payfront`` -> ``payfront_shadow``).
    # The two may never be the same database (docs/test-mode.md).
    database_url: str = "sqlite+aiosqlite:///./.payfront/payfront.db"
    test_database_url: str = ""
    # DB split (docs/ledger.md#a-database-of-its-own): the ledger's tables may live in a
    # database of their own; empty: with the rest. Test mode's is derived from it as the
    # shadow database is (``…-shadow.db`` / ``…_shadow``).
    ledger_database_url: str = ""
    # Which mode this Settings object serves: set by ``for_mode``, not by configuration.
    mode: Mode = "live"
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
    # Header limits, enforced by the HTTP parser before any handler runs (400 text/plain):
    # the request line and each header line at most this many bytes, at most this many
    # header fields (docs/api.md#limits).
    max_header_line_bytes: int = Field(default=8190, ge=256)
    max_headers: int = Field(default=64, ge=8)
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
    # Settlement (docs/ledger.md#settlement): a day's pending funds become available this
    # many days after it (T+1: at 00:00 Asia/Shanghai the next day); per-merchant terms as
    # "mch_a=2,mch_b=7" override it. The notify pool settles due days every
    # settlement_interval_s.
    settlement_delay_days: int = Field(default=1, ge=1, le=90)
    settlement_delays: str = Field(default="", pattern=r"^(\s*[^=,\s]+\s*=\s*\d+\s*(,|$))*$")
    settlement_interval_s: int = Field(default=300, ge=1, le=3600)

    # Which modes a worker process serves ("live,test", "live" or "test"); each mode has its
    # own queues and pools, so test-mode load never takes a live job slot.
    worker_modes: str = "live,test"

    # Sandbox.
    # Origins (scheme://host:port) where a sandbox answers, comma-separated; empty: the
    # local one (sandbox_host:sandbox_port). Test mode sends channel calls only there, live
    # mode never (checked on every outbound channel request, docs/test-mode.md).
    sandbox_urls: str = ""
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

    @model_validator(mode="after")
    def _shadow_apart(self) -> Settings:
        if self.mode == "live" and _same_database(self.database_url, self.shadow_database_url):
            raise ValueError(
                "test_database_url must name another database than database_url: test-mode "
                "data never goes into the live database"
            )
        if (
            self.mode == "live"
            and self.ledger_database_url
            and _same_database(self.ledger_database_url, self.shadow_database_url)
        ):
            raise ValueError("ledger_database_url must not be the shadow (test-mode) database")
        return self

    @property
    def shadow_database_url(self) -> str:
        """Where test-mode data lives (``test_database_url``, or derived)."""
        return self.test_database_url or shadow_url(self.database_url)

    @property
    def ledger_url(self) -> str:
        """Where this mode's ledger tables live."""
        return self.ledger_database_url or self.database_url

    @property
    def sandbox_origins(self) -> frozenset[str]:
        raw = self.sandbox_urls or f"http://{self.sandbox_host}:{self.sandbox_port}"
        return frozenset(origin_of(url) for url in raw.split(",") if url.strip())

    @property
    def worker_mode_list(self) -> tuple[Mode, ...]:
        names = [name.strip() for name in self.worker_modes.split(",") if name.strip()]
        unknown = [name for name in names if name not in MODES]
        if unknown or not names:
            raise ValueError(f"worker_modes: use live and/or test, not {self.worker_modes!r}")
        return tuple(mode for mode in MODES if mode in names)

    @property
    def callback_path_prefix(self) -> str:
        """Test-mode callbacks arrive under ``/test/callbacks/...``, live ones under
        ``/callbacks/...``: the path, fixed when the notify URL is sent, says the mode."""
        return "/test" if self.mode == "test" else ""

    def for_mode(self, mode: Mode) -> Settings:
        """These settings as one mode sees them: test mode gets the shadow database (and
        queues, job ids and circuit keys of its own."""
        if mode == "live":
            if self.mode == "test":
                raise ValueError("test-mode settings have no live side")
            return self
        if self.mode == "test":
            return self
        ledger = self.ledger_database_url and shadow_url(self.ledger_database_url)
        return self.model_copy(
            update={
                "mode": "test",
                "database_url": self.shadow_database_url,
                "ledger_database_url": ledger,
                "queue_name": f"{self.queue_name}:test",
                "notify_queue_name": f"{self.notify_queue_name}:test",
            }
        )


def shadow_url(url: str) -> str:
    """The shadow database next to ``url``: a sibling SQLite file, or a PostgreSQL database
    of the same name with ``_shadow`` appended, on the same server."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite":
        if not database or database == ":memory:":
            raise ValueError("an in-memory SQLite database has no shadow; set test_database_url")
        path = Path(database)
        return parsed.set(
            database=str(path.with_name(f"{path.stem}-shadow{path.suffix}"))
        ).render_as_string(hide_password=False)
    return parsed.set(database=f"{database or 'postgres'}_shadow").render_as_string(
        hide_password=False
    )


def _same_database(first: str, second: str) -> bool:
    a, b = make_url(first), make_url(second)
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        return Path(a.database or "").resolve() == Path(b.database or "").resolve()
    return (a.host, a.port or 5432, a.database) == (b.host, b.port or 5432, b.database)


def origin_of(url: str) -> str:
    parts = urlsplit(url.strip())
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"
