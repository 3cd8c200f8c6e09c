"""Per-merchant request rate limit: a fixed one-second window counted in Redis, so the
limit holds across all gateway processes."""

from __future__ import annotations

import time

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import PayfrontError

log = structlog.get_logger(__name__)


class RateLimited(PayfrontError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"


async def check_rate(redis: Redis, merchant_id: str, limit_per_s: int) -> None:
    """Raise ``RateLimited`` when the merchant has used its requests for this second.

    One pipelined round trip (INCR + EXPIRE). If Redis does not answer, the request is let
    through: the limit protects payfront, and refusing payments because the limiter is down
    would turn a Redis outage into a payment outage.
    """
    if limit_per_s <= 0:
        return
    window = int(time.time())
    key = f"payfront:rate:{merchant_id}:{window}"
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, 2)
            count, _ = await pipe.execute()
    except RedisError:
        log.warning("rate_limit.unavailable")
        return
    if int(count) > limit_per_s:
        raise RateLimited(f"more than {limit_per_s} requests in one second; retry shortly")
