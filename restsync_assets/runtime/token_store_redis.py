"""A spec's rotated refresh token in Redis (`RESTSYNC_TOKEN_STORE_URL` or
`RESTSYNC_RATE_LIMIT_URL`), seen by every worker of a deployment.

Keys: `restsync:refresh_token:<spec>:<first 16 hex of the configured token's fingerprint>`,
a hash with `refresh_token`, `token_sha256`, `configured_sha256`, `saved_at`; a
re-authorised app (another configured token) starts a new key, and two deployments sharing
one Redis with the same spec names never read each other's token. `<key>:lease` is the
lease: set with NX and an expiry (`LEASE_SECONDS`, so a killed worker's lease lapses) to a
random owner id, renewed by its owner every third of that while it holds it (a token request
with its retries may take minutes), deleted only by its owner. The write is a Lua
compare-and-swap on `token_sha256`.

The URL may hold a password: it is registered with the masking and never shown unmasked.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from .http.masking import mask, mask_url, register_secret
from .http.retry import current_clock
from .token_backend import TokenStoreError, fingerprint

__all__ = ["KEY_PREFIX", "LEASE_SECONDS", "RedisBackend", "key_of"]

logger = logging.getLogger(__name__)

KEY_PREFIX = "restsync:refresh_token:"
#: How long a lease lasts unless its owner renews it (every third of it, while its token
#: request runs): a killed worker's lease lapses this soon.
LEASE_SECONDS = 15.0
#: How long a worker waits for another's lease before giving up with one line: longer than
#: a token request with its retries takes (the default error_handler: 4 x 60 s + 3 x 60 s).
WAIT_SECONDS = 600.0
INSTALL = (
    "RESTSYNC_TOKEN_STORE_URL (or RESTSYNC_RATE_LIMIT_URL) is a Redis URL but the redis"
    ' package is missing: pip install "restsync[redis]"'
)

# KEYS: the token hash. ARGV: expected token_sha256 ('' = none stored), then field, value pairs
COMPARE_AND_SET = """
local current = redis.call('HGET', KEYS[1], 'token_sha256') or ''
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""
# KEYS: the lease. ARGV: owner id
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: the lease. ARGV: owner id, milliseconds
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def key_of(source: str, lineage: str) -> str:
    """The hash holding `source`'s token rotated from the configured token `lineage`."""
    return f"{KEY_PREFIX}{source}:{lineage[:16]}"


class RedisBackend:
    """`source`'s refresh token (of configured-token fingerprint `lineage`) at `url`."""

    def __init__(self, url: str, source: str, lineage: str) -> None:
        try:
            import redis
        except ImportError:
            raise TokenStoreError(INSTALL) from None
        password = urlsplit(url).password
        register_secret(password)
        self._secrets = [password]
        self.source = source
        self.key = key_of(source, lineage)
        self.where = f"token store {mask_url(url, [password])} ({self.key})"
        try:
            self._client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        except ValueError as error:
            raise self._error(error) from None
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        self._cas = self._client.register_script(COMPARE_AND_SET)
        self._release = self._client.register_script(RELEASE)
        self._renew = self._client.register_script(RENEW)

    def read(self) -> dict[str, Any] | None:
        data = self._call(self._client.hgetall, self.key)
        if not data:
            return None
        return {k.decode(): v.decode() for k, v in data.items()}

    def compare_and_set(self, expected: str | None, payload: dict[str, Any]) -> bool:
        fields = {**payload, "token_sha256": fingerprint(self.source, payload["refresh_token"])}
        args = [expected or ""] + [str(x) for item in fields.items() for x in item]
        return bool(self._call(self._cas, keys=[self.key], args=args))

    @contextlib.contextmanager
    def lease(self) -> Iterator[None]:
        owner = uuid.uuid4().hex
        lease_key = f"{self.key}:lease"
        clock = current_clock()  # looked up now: tests swap it and never really wait
        deadline = clock.time() + WAIT_SECONDS
        pause = 0.02
        while not self._call(
            self._client.set, lease_key, owner, nx=True, px=int(LEASE_SECONDS * 1000)
        ):
            if clock.time() >= deadline:
                raise TokenStoreError(
                    f"{self.source}: another worker held the refresh lease {lease_key} for"
                    f" {WAIT_SECONDS:.0f} s; check for a stuck run, or delete the key"
                )
            clock.sleep(pause)  # another worker is refreshing: wait, then read its token
            pause = min(pause * 2, 0.5)
        done = threading.Event()
        renewing = threading.Thread(
            target=self._keep, args=(lease_key, owner, done), name="restsync-token-lease"
        )
        renewing.daemon = True
        renewing.start()
        try:
            yield
        finally:
            done.set()
            renewing.join()
            self._call(self._release, keys=[lease_key], args=[owner])

    def _keep(self, lease_key: str, owner: str, done: threading.Event) -> None:
        """Renew the lease every third of `LEASE_SECONDS` until `done` (or it is lost)."""
        while not done.wait(LEASE_SECONDS / 3):
            try:
                kept = self._renew(keys=[lease_key], args=[owner, int(LEASE_SECONDS * 1000)])
            except self._errors as error:
                kept = False
                logger.warning("%s", self._error(error))
            if not kept:
                logger.warning(
                    "%s: lost the refresh lease %s; another worker may refresh meanwhile",
                    self.source,
                    lease_key,
                )
                return

    def clear(self) -> None:
        self._call(self._client.delete, self.key)

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except self._errors as error:
            raise self._error(error) from None

    def _error(self, error: BaseException) -> TokenStoreError:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return TokenStoreError(
            f"{self.where}: {type(error).__name__}: {mask(first, self._secrets)}"
        )
