"""A spec's rate budget in Redis (`RESTSYNC_RATE_LIMIT_URL=redis://...`), for many machines.

The bookkeeping of `rate_limit.take` / `give_back`, as two atomic Lua scripts over two sorted
sets per spec: `restsync:rate_limit:<spec>:sent` (ticket -> lease end) and `...:answered`
(ticket -> answer time). Times are Redis' own clock (`TIME`), so machines whose clocks differ
still share one window; each key expires once nothing in it can count any more.

The URL may hold a password: it is registered with the masking and never shown unmasked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from restsync_assets.specs.model import RateLimitSpec

from .masking import mask, mask_url, register_secret
from .rate_budget import MIN_WAIT, RateLimitError

__all__ = ["KEY_PREFIX", "RedisBudget", "keys_of"]

#: Every key of a spec's budget starts with `<KEY_PREFIX><spec>:`.
KEY_PREFIX = "restsync:rate_limit:"
INSTALL = (
    'RESTSYNC_RATE_LIMIT_URL is set but the redis package is missing: pip install "restsync[redis]"'
)

# ARGV: now ('' = Redis' clock), window, ticket, then per script: requests, lease, shortest
# wait. Times are written at full precision ('%.17g'): at '%.6f' a window's cutoff and a wait
# under a microsecond rounded, granting a slot early or answering a wait with '0' (taken)
_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local window = tonumber(ARGV[2])
local function keep_for(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
"""
TAKE = (
    _NOW
    + """
local sent, answered = KEYS[1], KEYS[2]
local cutoff = string.format('%.17g', now - window)
redis.call('ZREMRANGEBYSCORE', sent, '-inf', cutoff)
redis.call('ZREMRANGEBYSCORE', answered, '-inf', cutoff)
if redis.call('ZCARD', sent) + redis.call('ZCARD', answered) < tonumber(ARGV[4]) then
  local lease = tonumber(ARGV[5])
  redis.call('ZADD', sent, string.format('%.17g', now + lease), ARGV[3])
  keep_for(sent, math.ceil((lease + window) * 1000) + 1000)
  return '0'
end
local first = now
for _, key in ipairs({sent, answered}) do
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if oldest[2] then first = math.min(first, tonumber(oldest[2])) end
end
return string.format('%.17g', math.max(first + window - now, tonumber(ARGV[6])))
"""
)
GIVE_BACK = (
    _NOW
    + """
redis.call('ZREM', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], string.format('%.17g', now), ARGV[3])
keep_for(KEYS[2], math.ceil(window * 1000) + 1000)
return '0'
"""
)


def keys_of(spec: str) -> list[str]:
    """The two keys of `spec`'s budget: in flight, answered."""
    return [f"{KEY_PREFIX}{spec}:sent", f"{KEY_PREFIX}{spec}:answered"]


class RedisBudget:
    """`spec`'s budget in the Redis at `url`. `server_time=False` dates slots with the times
    the limiter passes (its clock) instead of Redis' `TIME` (tests with a fake clock)."""

    def __init__(
        self, url: str, spec: str, limit: RateLimitSpec, *, server_time: bool = True
    ) -> None:
        try:
            import redis
        except ImportError:
            raise RateLimitError(INSTALL) from None
        self.limit = limit
        self.keys = keys_of(spec)
        self._server_time = server_time
        password = urlsplit(url).password
        register_secret(password)
        self._where = f"rate limit store {mask_url(url, [password])}"
        self._secrets = [password]
        try:
            self._client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        except ValueError as error:
            raise self._error(error) from None
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        self._take = self._client.register_script(TAKE)
        self._give_back = self._client.register_script(GIVE_BACK)

    def take(self, ticket: str, now: float, lease: float) -> float:
        args = [*self._base(now, ticket), self.limit.requests, repr(lease), repr(MIN_WAIT)]
        return float(self._run(self._take, args))

    def give_back(self, ticket: str, now: float) -> None:
        self._run(self._give_back, self._base(now, ticket))

    def _base(self, now: float, ticket: str) -> list[Any]:
        return ["" if self._server_time else repr(now), repr(self.limit.window), ticket]

    def _run(self, script: Any, args: list[Any]) -> Any:
        try:
            return script(keys=self.keys, args=args)
        except self._errors as error:
            raise self._error(error) from None

    def _error(self, error: BaseException) -> RateLimitError:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return RateLimitError(
            f"{self._where}: {type(error).__name__}: {mask(first, self._secrets)}"
        )
