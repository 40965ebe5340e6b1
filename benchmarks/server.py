"""The benchmark's local API: deterministic data, offset pages, a slow fan-out, an incremental feed.

Routes (all `GET`, JSON envelopes):

* `/records/<n>?offset=&limit=`: `{"data": [...], "total": n, "offset", "limit"}`, the `n`
  records of `benchmarks.data.record` (pages are cached once built, up to a memory budget);
* `/fanout/<parents>/parents`: `{"data": [{"id", "name"}, ...]}` in one page;
* `/fanout/<parents>/parents/<id>/children?per=50`: `{"data": [...]}` after a fixed delay
  (default 20 ms), a non-blocking wait in the handler thread simulating a slow API;
* `/inc/<n>/events?updated_since=&offset=&limit=`: events with `updated_at > updated_since`,
  with `total`; `/inc/<n>/events_nototal` is the same without `total`;
* `/fresh/records/<n>`: the same pages, built for every request (never cached);
* `/slow/<ms>/<route>`: any route above, answered after `<ms>` milliseconds (P7's latency);
* `/stats`: requests served per path, and `max_inflight_children` (the most child calls
  served at once); `/stats/reset` clears them.

Run it in its own process (`python -m benchmarks.server --seed 7`, prints `PORT <n>`) so the
client being measured never shares a GIL with it; `BenchServer` also runs in a thread.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

try:
    import orjson

    def dumps(value: object) -> bytes:
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - orjson is a dependency of dlt
    import json

    def dumps(value: object) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


from benchmarks import data
from restsync_assets_tests.fake_servers import FakeServer

DEFAULT_DELAY = 0.02
REPO_ROOT = Path(__file__).resolve().parent.parent
#: holds every page of 1M records (~230 MB), so the raw loop at 1M measures the client
CACHE_BUDGET = 320 * 1024 * 1024
_RECORDS = re.compile(r"^/records/(\d+)$")
_PARENTS = re.compile(r"^/fanout/(\d+)/parents$")
_CHILDREN = re.compile(r"^/fanout/(\d+)/parents/(\d+)/children$")
#: path prefix of records built for every request (P4: the same server cost per page at 1M
#: and 10M records, so the time ratio measures restsync, not the page cache)
FRESH = "/fresh"
_SLOW = re.compile(r"^/slow/(\d+)(/.*)$")
#: `/limited/<n>/<style>/...`: at most n requests per fixed one-second window (issue 23's P9),
#: 429 + Retry-After beyond; `style` of the headers stating what is left: x, ietf or none
_LIMITED = re.compile(r"^/limited/(\d+)/(x|ietf|none)(/.*)$")
_EVENTS = re.compile(r"^/inc/(\d+)/(events|events_nototal)$")


class _Server(FakeServer):
    """The routes above, on the tests' fake server (`restsync_assets_tests.fake_servers`) with
    HTTP/1.1 keep-alive, as a production API serves."""

    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], seed: int, delay: float):
        super().__init__(self._answer, port=address[1], keep_alive=True)
        self.seed = seed
        self.delay = delay
        self.counts: Counter[str] = Counter()
        self.inflight = 0  # child calls being served right now, and the most seen at once
        self.max_inflight = 0
        self._lock = threading.Lock()
        self._cache: dict[tuple, bytes] = {}
        self._cached_bytes = 0
        self.limited: dict[str, Any] = {"window": -1, "used": 0, "served": 0, "rejected": 0}
        self.arrivals: list[float] = []  # monotonic arrival times of served limited requests

    def _answer(
        self, method: str, target: str, headers: object, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        status, payload, *extra = self.route(parts.path, dict(parse_qsl(parts.query)))
        return status, (extra[0] if extra else {}), payload

    def route(self, path: str, query: dict[str, str]) -> tuple:
        if m := _LIMITED.match(path):
            return self._limited(int(m.group(1)), m.group(2), m.group(3), query)
        if path == "/limited_stats":
            with self._lock:
                return 200, dumps({**self.limited, "arrivals": self.arrivals})
        if path == "/limited_stats/reset":
            with self._lock:
                self.limited.update(window=-1, used=0, served=0, rejected=0)
                self.arrivals = []
            return 200, b"{}"
        if m := _SLOW.match(path):  # every request of the path answered after <ms>
            threading.Event().wait(int(m.group(1)) / 1000)
            return self.route(m.group(2), query)
        if path.startswith(FRESH):  # built for every request, never from the cache
            return self.route(path[len(FRESH) :], {**query, "_fresh": "1"})
        if path == "/stats":
            with self._lock:
                return 200, dumps({**self.counts, "max_inflight_children": self.max_inflight})
        if path == "/stats/reset":
            with self._lock:
                self.counts.clear()
                self.max_inflight = 0
            return 200, b"{}"
        with self._lock:
            self.counts[path] += 1
        try:
            offset = int(query.get("offset", 0))
            limit = int(query.get("limit", 1000))
        except ValueError:
            return 400, b'{"error":"offset and limit must be integers"}'
        if m := _RECORDS.match(path):
            return 200, self._records_page(int(m.group(1)), offset, limit, "_fresh" in query)
        if m := _PARENTS.match(path):
            parents = [{"id": i, "name": f"parent-{i}"} for i in range(1, int(m.group(1)) + 1)]
            return 200, dumps({"data": parents})
        if m := _CHILDREN.match(path):
            parent = int(m.group(2))
            if not 1 <= parent <= int(m.group(1)):
                return 404, b'{"error":"no such parent"}'
            with self._lock:
                self.inflight += 1
                self.max_inflight = max(self.max_inflight, self.inflight)
            try:
                threading.Event().wait(self.delay)  # the simulated latency of a child call
                per = int(query.get("per", 50))
                rows = [data.child(self.seed, parent, j) for j in range(per)]
            finally:
                with self._lock:
                    self.inflight -= 1
            return 200, dumps({"data": rows})
        if m := _EVENTS.match(path):
            return 200, self._events_page(
                int(m.group(1)), m.group(2) == "events", query.get("updated_since"), offset, limit
            )
        return 404, b'{"error":"not found"}'

    def _limited(self, limit: int, style: str, rest: str, query: dict[str, str]) -> tuple:
        """At most `limit` requests per fixed one-second window, then 429 + Retry-After."""
        now = time.monotonic()
        window = int(now)
        with self._lock:
            state = self.limited
            if state["window"] != window:
                state["window"], state["used"] = window, 0
            state["used"] += 1
            used = state["used"]
            if used > limit:
                state["rejected"] += 1
            else:
                state["served"] += 1
                self.arrivals.append(now)
        reset = window + 1 - now
        left = max(0, limit - used)
        headers = {}
        if style == "x":
            headers = {"X-RateLimit-Remaining": str(left), "X-RateLimit-Reset": f"{reset:.3f}"}
        elif style == "ietf":
            headers = {"RateLimit": f'"default";r={left};t={math.ceil(reset)}'}
        if used > limit:
            return 429, b'{"error":"rate limited"}', {**headers, "Retry-After": "1"}
        status, body, *_ = self.route(rest, query)
        return status, body, headers

    def _records_page(self, n: int, offset: int, limit: int, fresh: bool = False) -> bytes:
        key = ("records", n, offset, limit)
        cached = None if fresh else self._cache.get(key)
        if cached is not None:
            return cached
        rows = data.records(self.seed, offset, min(offset + limit, n)) if offset < n else []
        body = dumps({"data": rows, "total": n, "offset": offset, "limit": limit})
        if fresh:
            return body
        with self._lock:
            if self._cached_bytes + len(body) <= CACHE_BUDGET:
                self._cache[key] = body
                self._cached_bytes += len(body)
        return body

    def _events_page(
        self, n: int, with_total: bool, since: str | None, offset: int, limit: int
    ) -> bytes:
        # events are sorted by updated_at, which is strictly increasing with the index
        first = 0
        if since:
            since_s = data.parse_iso(since)
            # event i has updated_at = EPOCH + 60 * (i + 1): the first one after `since`
            first = max(0, min(n, (since_s - data.EPOCH_SECONDS) // 60))
        total = n - first
        start = first + offset
        rows = [data.event(self.seed, i) for i in range(start, min(start + limit, n))]
        envelope: dict = {"data": rows}
        if with_total:
            envelope["total"] = total
        return dumps(envelope)


class BenchServer:
    """The benchmark API in a background thread of this process (tests); see `ServerProcess`."""

    def __init__(self, seed: int = 7, delay: float = DEFAULT_DELAY, port: int = 0):
        self._server = _Server(("127.0.0.1", port), seed, delay)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> BenchServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def child_env() -> dict[str, str]:
    """This environment with the repo root on `PYTHONPATH`, so `-m benchmarks.*` resolves."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


class ServerProcess:
    """`python -m benchmarks.server` in a child process; `url` once started."""

    def __init__(self, seed: int = 7, delay: float = DEFAULT_DELAY):
        self.seed = seed
        self.delay = delay
        self.url = ""
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.server",
                "--seed",
                str(self.seed),
                "--delay",
                str(self.delay),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=child_env(),
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("PORT "):
            self._proc.kill()
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()  # the server exits when its stdin closes
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            self._proc.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description="restsync benchmark API")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--delay", type=float, default=DEFAULT_DELAY)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = BenchServer(args.seed, args.delay, args.port).start()
    print(f"PORT {server.url.rsplit(':', 1)[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()  # serve until the parent closes our stdin (or dies)
    server.stop()


if __name__ == "__main__":
    main()
