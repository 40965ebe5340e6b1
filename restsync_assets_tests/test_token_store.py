"""One refresh token for every worker (issue 18, found 9): rotated OAuth2 refresh tokens are
shared through Redis or a shared folder, and a refresh holds the store's lease, so two
workers never spend one single-use refresh token."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from restsync_assets.runtime.token_store import FileBackend, RefreshTokenStore, fingerprint
from restsync_assets.sandbox.faults import Fault, FaultPlan

from .support import BIN, assert_table_is, table_rows

SPEC, RESOURCE = "ledger", "resource_name"
#: Longest the token endpoint holds the first worker's answer waiting for the second's request.
GATE_SECONDS = 5


def _gate() -> Fault:
    """Hold the answer to the first token request until a second one arrives (at most
    GATE_SECONDS): without a lease both workers would send the token they read first."""
    arrived, lock, gate = [0], threading.Lock(), threading.Event()

    def token_request(request) -> bool:
        with lock:
            arrived[0] += 1
            if arrived[0] >= 2:
                gate.set()
        return True

    return Fault("slow", SPEC, "oauth", nth=1, when=token_request, seconds=GATE_SECONDS, until=gate)


def _two_workers(
    tmp_path: Path, sandbox, commands, monkeypatch, store_url: str, configured: str
) -> None:
    """`restsync run ledger` in two processes at once, each with its own pipelines folder
    and DuckDB file, sharing `store_url`, configured with the single-use refresh token
    `configured`: both succeed, each warehouse holds every row, no spent token was sent
    again, and no output shows the token."""
    for key, value in sandbox.env([SPEC]).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LEDGER_REFRESH_TOKEN", configured)
    monkeypatch.setenv("RESTSYNC_TOKEN_STORE_URL", store_url)
    monkeypatch.delenv("RESTSYNC_RATE_LIMIT_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    sandbox.faults = FaultPlan(_gate())
    workers = []
    for name in ("worker_a", "worker_b"):
        folder = tmp_path / name
        env = [f"RESTSYNC_PIPELINES_DIR={folder / 'pipelines'}"]
        env.append(f"RESTSYNC_DUCKDB_PATH={folder / 'restsync.duckdb'}")
        workers.append(commands(["env", *env, BIN / "restsync", "run", SPEC]))
    for worker in workers:
        assert worker.finish() == 0, worker.text
    for name in ("worker_a", "worker_b"):
        rows = table_rows(SPEC, RESOURCE, tmp_path / name / "restsync.duckdb")
        assert_table_is(rows, sandbox.rows(SPEC, RESOURCE))
    assert sandbox.refresh_token_reuses(SPEC) == 0
    assert configured not in "".join(w.text for w in workers)


def test_two_workers_share_one_single_use_refresh_token_through_redis(
    tmp_path, sandbox, commands, monkeypatch, redis_store
):
    """Two `restsync run` processes on separate pipelines folders, sharing Redis, against a
    token endpoint that spends each refresh token once: both loads succeed (every row of
    the API in each warehouse), the endpoint never saw a spent token again, and Redis holds
    the token the endpoint accepts now (no pipelines folder holds one)."""
    import redis

    from restsync_assets.runtime.token_store_redis import key_of

    url, keys = redis_store
    configured = sandbox.single_use_refresh_tokens(SPEC)  # fresh: a key of this test's own
    keys.append(key_of(SPEC, fingerprint(SPEC, configured)))
    _two_workers(tmp_path, sandbox, commands, monkeypatch, url, configured)
    stored = redis.Redis.from_url(url).hget(keys[0], "refresh_token")
    assert stored.decode() == sandbox.refresh_token(SPEC) != configured
    assert not list(tmp_path.glob("worker_*/pipelines/*.refresh_token"))


def test_two_workers_share_one_single_use_refresh_token_through_a_folder(
    tmp_path, sandbox, commands, monkeypatch
):
    """The same two workers with `RESTSYNC_TOKEN_STORE_URL=file:///<folder both mount>`:
    both load, no spent token is sent again, the folder holds the live token."""
    shared = tmp_path / "shared"
    configured = sandbox.single_use_refresh_tokens(SPEC)
    _two_workers(tmp_path, sandbox, commands, monkeypatch, f"file://{shared}", configured)
    stored = FileBackend(shared / "ledger.refresh_token").read()
    assert stored["refresh_token"] == sandbox.refresh_token(SPEC) != configured


def test_a_store_never_overwrites_a_token_stored_meanwhile(tmp_path):
    """Compare-and-swap: a worker that read token A under its lease, while another stored B
    (its lease had lapsed), does not replace B with its own C."""
    first = RefreshTokenStore(SPEC, "configured", tmp_path)
    other = RefreshTokenStore(SPEC, "configured", tmp_path)
    first.save("token-a")
    with first.refreshing():
        assert first.candidates() == ["token-a", "configured"]
        other.backend.compare_and_set(fingerprint(SPEC, "token-a"), _payload(other, "token-b"))
        first.save("token-c")
    assert first.load() == "token-b"


def _payload(store: RefreshTokenStore, token: str) -> dict:
    return {"source": SPEC, "refresh_token": token, "configured_sha256": store.lineage}


def test_an_unknown_store_scheme_is_one_line(monkeypatch):
    """`RESTSYNC_TOKEN_STORE_URL=s3://...` is refused with one line naming the setting and
    the schemes it takes."""
    from restsync_assets.runtime.token_store import TokenStoreError

    monkeypatch.setenv("RESTSYNC_TOKEN_STORE_URL", "s3://bucket/tokens")
    with pytest.raises(TokenStoreError) as error:
        RefreshTokenStore(SPEC, "configured")
    assert str(error.value) == (
        "RESTSYNC_TOKEN_STORE_URL: unsupported scheme 's3'; use redis://, rediss://, unix://"
        " or file:///<folder every worker mounts>"
    )


def test_a_lease_held_elsewhere_is_waited_for_then_one_line(redis_store, retry_clock):
    """A Redis lease another worker holds (and never gives back): the refresh waits for it
    on restsync's clock, then fails in one line naming the spec and the lease key; the lease
    is then taken once it is free, and a token is stored only in place of the one read."""
    import redis

    from restsync_assets.runtime.token_store import TokenStoreError
    from restsync_assets.runtime.token_store_redis import WAIT_SECONDS, RedisBackend, key_of

    url, keys = redis_store
    configured = f"configured-{uuid.uuid4().hex}"  # a key of this test's own
    key = key_of(SPEC, fingerprint(SPEC, configured))
    keys.append(key)
    client = redis.Redis.from_url(url)
    client.set(f"{key}:lease", "another-worker", px=60_000)
    store = RefreshTokenStore(
        SPEC, configured, backend=RedisBackend(url, SPEC, fingerprint(SPEC, configured))
    )
    with pytest.raises(TokenStoreError) as error, store.refreshing():
        pass
    assert str(error.value) == (
        f"{SPEC}: another worker held the refresh lease {key}:lease for"
        f" {WAIT_SECONDS:.0f} s; check for a stuck run, or delete the key"
    )
    assert sum(retry_clock.sleeps) >= WAIT_SECONDS
    client.delete(f"{key}:lease")
    with store.refreshing():
        assert store.candidates() == [configured]
        store.save("rotated-1")
        assert client.exists(f"{key}:lease")
    assert not client.exists(f"{key}:lease")
    assert store.load() == "rotated-1"
    stale = {"source": SPEC, "refresh_token": "rotated-x", "configured_sha256": store.lineage}
    assert not store.backend.compare_and_set(None, stale)
    assert client.hget(key, "refresh_token") == b"rotated-1"


def test_a_new_shared_store_starts_from_the_token_rotated_into_the_pipelines_folder(
    tmp_path, monkeypatch
):
    """Turning `RESTSYNC_TOKEN_STORE_URL` on after runs rotated the token into the pipelines
    folder: the shared store (empty) is not a dead end, the folder's token is tried first,
    and the next rotation is written to the shared store."""
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines"))
    monkeypatch.delenv("RESTSYNC_RATE_LIMIT_URL", raising=False)
    monkeypatch.delenv("RESTSYNC_TOKEN_STORE_URL", raising=False)
    RefreshTokenStore(SPEC, "configured").save("rotated-before")
    monkeypatch.setenv("RESTSYNC_TOKEN_STORE_URL", f"file://{tmp_path / 'shared'}")
    store = RefreshTokenStore(SPEC, "configured")
    with store.refreshing():
        assert store.candidates() == ["rotated-before", "configured"]
        store.save("rotated-after")
    assert FileBackend(tmp_path / "shared" / "ledger.refresh_token").read()["refresh_token"] == (
        "rotated-after"
    )
    assert RefreshTokenStore(SPEC, "configured").candidates() == ["rotated-after", "configured"]


def test_a_held_lease_is_renewed_until_given_back(redis_store, monkeypatch):
    """A token request may outlast the lease's expiry: its holder renews it, so after four
    renewals (longer than one expiry) the lease is still there, and it is gone once given
    back."""
    import redis

    from restsync_assets.runtime import token_store_redis
    from restsync_assets.runtime.token_store_redis import RedisBackend, key_of

    monkeypatch.setattr(token_store_redis, "LEASE_SECONDS", 0.3)
    url, keys = redis_store
    lineage = fingerprint(SPEC, f"configured-{uuid.uuid4().hex}")
    keys.append(key_of(SPEC, lineage))
    backend = RedisBackend(url, SPEC, lineage)
    renewed, four = [], threading.Event()
    renew = backend._renew

    def counting(**kwargs):
        renewed.append(renew(**kwargs))
        if len(renewed) >= 4:
            four.set()
        return renewed[-1]

    backend._renew = counting
    client = redis.Redis.from_url(url)
    with backend.lease():
        assert four.wait(10), "the lease was not renewed four times within 10 s"
        assert client.exists(f"{keys[0]}:lease")
    assert renewed[:4] == [1, 1, 1, 1]
    assert not client.exists(f"{keys[0]}:lease")


#: (RESTSYNC_TOKEN_STORE_URL, RESTSYNC_RATE_LIMIT_URL) -> where the token is kept
STORES = [
    (None, "redis://127.0.0.1:6379/0", "redis:restsync:refresh_token:ledger:"),
    (
        "redis://127.0.0.1:6379/1",
        "redis://127.0.0.1:6379/0",
        "redis:restsync:refresh_token:ledger:",
    ),
    ("file://{tmp}/shared", "redis://127.0.0.1:6379/0", "file:shared/ledger.refresh_token"),
    ("{tmp}/mounted", None, "file:mounted/ledger.refresh_token"),
]


@pytest.mark.parametrize(("store_url", "rate_limit_url", "where"), STORES)
def test_the_store_setting_picks_where_the_token_is_kept(
    store_url, rate_limit_url, where, tmp_path, monkeypatch
):
    """`RESTSYNC_TOKEN_STORE_URL` wins, else `RESTSYNC_RATE_LIMIT_URL` (a deployment sharing
    budgets across machines shares tokens too); neither: the pipelines folder, as before
    (test_security). Nothing connects before a token is read."""
    monkeypatch.setenv("RESTSYNC_PIPELINES_DIR", str(tmp_path / "pipelines"))
    for name, value in (
        ("RESTSYNC_TOKEN_STORE_URL", store_url),
        ("RESTSYNC_RATE_LIMIT_URL", rate_limit_url),
    ):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value.format(tmp=tmp_path))
    store = RefreshTokenStore(SPEC, "configured")
    kind, _, rest = where.partition(":")
    if kind == "file":
        assert store.path == tmp_path / rest
    else:
        assert store.path is None and store.backend.key.startswith(rest)
