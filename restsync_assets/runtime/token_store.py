"""Rotated OAuth2 refresh tokens, kept between runs and shared by every worker, outside the
spec, the logs and the warehouse.

Some authorization servers rotate the refresh token on every use: the answer to a
refresh-token grant carries a new one and the old one stops working (single-use refresh
tokens). The configured `<NAME>_REFRESH_TOKEN` (env var or `.dlt/secrets.toml`) is then dead
after the first refresh, so restsync stores the new token the moment it arrives, and every
later refresh, in this run or another, starts from the stored one.

Where (`settings.token_store_url()`):

- `RESTSYNC_TOKEN_STORE_URL=redis://...` (else `RESTSYNC_RATE_LIMIT_URL` when set): one Redis
  key per spec and configured token, seen by every worker of a Celery or Kubernetes
  deployment (`token_store_redis`);
- `RESTSYNC_TOKEN_STORE_URL=file:///shared/folder` (or a plain path): `<folder>/<spec>.refresh_token`
  in a folder every worker mounts (its file system must honour `flock`);
- neither: `<pipelines dir>/<spec>.refresh_token`, one machine.

Two workers never spend one single-use token: a refresh holds the store's lease (a Redis key
set with NX and an expiry, or an `flock` on `<file>.lock`) while it re-reads the stored
token, asks the token endpoint and stores the rotated one; a worker that waited for the lease
re-reads and refreshes with the new token instead of the one it read earlier. The write is
a compare-and-swap on the token read under the lease, so a worker whose lease ran out never
overwrites a newer token.

Which token wins: the stored one is used only while it descends from the configured one.
The store records a fingerprint (salted SHA-256) of the configured token it was rotated from;
when an operator configures a different refresh token (re-authorised the app), the
configured one is newer and wins, and the stale entry is ignored (replaced on the next
rotation). Both are tried in that order: a stored token the server rejects with
`invalid_grant` falls back to the configured one (see `http.oauth.rotation`).

Files are mode 0600 and written atomically. Never copy a stored token into a spec or commit
it; delete the entry to go back to the configured token.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from restsync_assets import settings
from restsync_assets.runtime.token_backend import Backend, TokenStoreError, fingerprint

__all__ = [
    "FileBackend",
    "RefreshTokenStore",
    "TokenStoreError",
    "backend_for",
    "fingerprint",
    "store_path",
]

logger = logging.getLogger(__name__)

FILE_MODE = 0o600
REDIS_SCHEMES = ("redis", "rediss", "unix")


def store_path(source: str, directory: Path | None = None) -> Path:
    """`<directory, default the pipelines dir>/<source>.refresh_token`."""
    return (directory or settings.pipelines_dir()) / f"{source}.refresh_token"


class RefreshTokenStore:
    """The rotated refresh token of one source, descended from its `configured` token.

    `directory` keeps the token in a file there (tests, previews); else the configured
    store (`backend_for`). A shared store that holds no token yet falls back, for reading, to
    the file a run wrote to the pipelines folder before the store was configured, so turning
    the shared store on never strands a token rotated before.
    """

    def __init__(
        self,
        source: str,
        configured: str,
        directory: Path | None = None,
        *,
        backend: Backend | None = None,
    ) -> None:
        self.source = source
        self.configured = configured
        self.lineage = fingerprint(source, configured)
        if backend is None:
            backend = (
                FileBackend(store_path(source, directory))
                if directory is not None
                else backend_for(source, self.lineage)
            )
        self.backend = backend
        local = store_path(source) if directory is None else None
        self._legacy = (
            FileBackend(local) if local and getattr(backend, "path", None) != local else None
        )
        self._seen: str | None = None  # fingerprint of the token stored when last read
        self._depth = 0
        self._local = threading.RLock()

    @property
    def path(self) -> Path | None:
        """The token's file (None: the token is in Redis)."""
        return getattr(self.backend, "path", None)

    def load(self) -> str | None:
        """The stored token when it was rotated from the configured one, else None."""
        data = self.backend.read()
        token = data.get("refresh_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            self._seen = None
            return self._legacy_token()
        self._seen = fingerprint(self.source, token)
        if data.get("configured_sha256") != self.lineage:
            logger.info(
                "%s: the configured refresh token changed since %s was written; using the"
                " configured one",
                self.source,
                self.backend.where,
            )
            return None
        return token

    def _legacy_token(self) -> str | None:
        """The pipelines folder's token of this lineage, when a shared store has none."""
        data = self._legacy.read() if self._legacy is not None else None
        token = data.get("refresh_token") if data else None
        if not isinstance(token, str) or not token:
            return None
        if data.get("configured_sha256") != self.lineage:
            return None
        logger.info(
            "%s: %s holds no refresh token yet; using the one rotated into %s",
            self.source,
            self.backend.where,
            self._legacy.where,
        )
        return token

    def candidates(self) -> list[str]:
        """Refresh tokens to try, best first: the stored rotation, then the configured one."""
        stored = self.load()
        return [t for t in (stored, self.configured) if t]

    @contextlib.contextmanager
    def refreshing(self) -> Iterator[None]:
        """Hold the store's lease (re-entrant): call `candidates()`, the token request and
        `save()` inside it, so no other worker refreshes with the same token meanwhile."""
        with self._local:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with self.backend.lease():
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0

    def save(self, token: str) -> None:
        """Store a newly rotated `token` in place of the one read last (compare-and-swap)."""
        with self.refreshing():
            expected = self._seen if self._depth > 1 else self._current()
            payload = {
                "source": self.source,
                "refresh_token": token,
                "configured_sha256": self.lineage,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            if not self.backend.compare_and_set(expected, payload):
                logger.warning(
                    "%s: another worker stored a refresh token in %s meanwhile; keeping"
                    " theirs (this run goes on with its own)",
                    self.source,
                    self.backend.where,
                )
                return
            self._seen = fingerprint(self.source, token)
        logger.info("%s: stored the rotated refresh token in %s", self.source, self.backend.where)

    def clear(self) -> None:
        self.backend.clear()

    def _current(self) -> str | None:
        data = self.backend.read()
        token = data.get("refresh_token") if isinstance(data, dict) else None
        return fingerprint(self.source, token) if isinstance(token, str) and token else None


class FileBackend:
    """`path` (0600, replaced atomically); the lease is an `flock` on `<path>.lock`, which
    the OS drops when the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            logger.warning("ignoring unreadable refresh token file %s", self.path)
            return None
        return data if isinstance(data, dict) else None

    def compare_and_set(self, expected: str | None, payload: dict[str, Any]) -> bool:
        current = self.read()
        token = current.get("refresh_token") if current else None
        source = payload["source"]
        found = fingerprint(source, token) if isinstance(token, str) and token else None
        if found != expected:
            return False
        self._write(json.dumps(payload).encode())
        return True

    @contextlib.contextmanager
    def lease(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _write(self, payload: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(temp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def backend_for(source: str, lineage: str) -> Backend:
    """The store `settings.token_store_url()` names: Redis, a shared folder, else the
    pipelines folder."""
    url = settings.token_store_url()
    if not url:
        return FileBackend(store_path(source))
    parts = urlsplit(url)
    if parts.scheme in REDIS_SCHEMES:
        from restsync_assets.runtime.token_store_redis import RedisBackend

        return RedisBackend(url, source, lineage)
    if parts.scheme not in ("", "file"):
        raise TokenStoreError(
            f"RESTSYNC_TOKEN_STORE_URL: unsupported scheme {parts.scheme!r}; use redis://,"
            " rediss://, unix:// or file:///<folder every worker mounts>"
        )
    folder = Path(unquote(parts.path)) if parts.scheme == "file" else Path(url)
    return FileBackend(store_path(source, folder.expanduser()))
