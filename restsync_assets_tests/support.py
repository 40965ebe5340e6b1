"""Reusable test support: a small JSON API on 127.0.0.1, specs in a tmp folder, table reads.

`JsonApi` is a route table of JSON handlers, nothing more: each test module brings its own
data and handlers. Every request is recorded (method, path, query) so tests can assert on
what restsync asked for. `RawApi` answers with any status, headers and bytes (or drops the
connection), for tests of the HTTP layer itself; `FakeClock` runs retries without waiting.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import yaml

from restsync_assets.runtime import warehouse
from restsync_assets.runtime.http import retry

from .conftest import serving

#: `handler(path_params, query)` -> a JSON body, or `(status, body)`.
Handler = Callable[[dict[str, str], dict[str, str]], Any]
#: dlt's bookkeeping columns: they differ between any two loads of the same rows.
DLT_COLUMNS = ("_dlt_load_id", "_dlt_id")


@dataclass(frozen=True)
class Call:
    """One request the API received."""

    method: str
    path: str
    query: dict[str, str]


class JsonApi:
    """A JSON API from a route table: `{"GET /repos/{id}/issues": handler}`.

    `{name}` in a route matches one path segment and reaches the handler as `path_params`.
    Requests are served on threads (concurrent clients see concurrent answers); an unknown
    route answers 404.
    """

    def __init__(self, routes: dict[str, Handler]):
        self.routes = [(_route_pattern(route), handler) for route, handler in routes.items()]
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self.url = ""

    @contextmanager
    def running(self) -> Iterator[JsonApi]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        with serving(server):
            self.url = f"http://127.0.0.1:{server.server_address[1]}"
            yield self

    def calls_to(self, pattern: str) -> list[Call]:
        """The GET calls whose path fully matches the regular expression `pattern`."""
        with self._lock:
            return [c for c in self.calls if re.fullmatch(pattern, c.path)]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def answer(self, method: str, target: str) -> tuple[int, Any]:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.calls.append(Call(method, parts.path, query))
        for pattern, handler in self.routes:
            match = pattern.fullmatch(f"{method} {parts.path}")
            if match:
                result = handler(match.groupdict(), query)
                return result if isinstance(result, tuple) else (200, result)
        return 404, {"error": f"no route for {method} {parts.path}"}


def _route_pattern(route: str) -> re.Pattern[str]:
    literals = re.split(r"\{(\w+)\}", route)
    pattern = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(literals)
    )
    return re.compile(pattern)


def _handler_class(api: JsonApi) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = api.answer("GET", self.path)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _Handler


def page(rows: list[dict], query: dict[str, str], size: int) -> dict:
    """`rows` paged by `?page=N` (1-based) as `{"data": [...], "total_pages": K}`."""
    number = int(query.get("page", "1"))
    total = max(1, -(-len(rows) // size))
    return {"data": rows[(number - 1) * size : number * size], "page": number, "total_pages": total}


# --------------------------------------------------------------------------- raw HTTP


@dataclass(frozen=True)
class Request:
    """One request a `RawApi` received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    @property
    def form(self) -> dict[str, str]:
        """The body as a url-encoded form (the last value of each field)."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}


@dataclass(frozen=True)
class Reply:
    """What a `RawApi` answers: `body` bytes are sent as they are, anything else as JSON
    (`Content-Type: application/json` unless `headers` say otherwise)."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


#: An `app`'s answer that closes the connection without a response.
DROP = "drop"
#: `app(request)` -> a `Reply`, or `DROP`.
App = Callable[[Request], "Reply | str"]


class RawApi:
    """An HTTP server on 127.0.0.1 whose `app` answers every method with any status, headers
    and body, or drops the connection; `requests` records what it received, in order."""

    def __init__(self, app: App | None = None) -> None:
        self.app: App = app or (lambda request: Reply())
        self.requests: list[Request] = []
        self.url = ""
        self._lock = threading.Lock()

    @contextmanager
    def running(self) -> Iterator[RawApi]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _raw_handler_class(self))
        server.daemon_threads = True
        with serving(server):
            self.url = f"http://127.0.0.1:{server.server_address[1]}"
            yield self

    def reset(self, app: App | None = None) -> RawApi:
        """Forget the requests and answer with `app` (default: `200 {}`) from now on."""
        with self._lock:
            self.requests.clear()
        self.app = app or (lambda request: Reply())
        return self

    def calls(self, path: str) -> int:
        """How many requests went to `path`."""
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def sequence(*replies: Reply | str) -> App:
    """An `app` answering with `replies` in order, then the last one again and again."""
    queue = list(replies)
    return lambda request: queue.pop(0) if len(queue) > 1 else queue[0]


def _raw_handler_class(api: RawApi) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                self.command,
                parts.path,
                {k: v[-1] for k, v in parse_qs(parts.query).items()},
                dict(self.headers),
                self.rfile.read(length) if length else b"",
            )
            api.record(request)
            reply = api.app(request)
            if reply == DROP:
                self.close_connection = True
                return
            raw = isinstance(reply.body, bytes)
            payload = reply.body if raw else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            if "Content-Type" not in reply.headers:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _Handler


# --------------------------------------------------------------------------- clock

#: `FakeClock`'s start: whole seconds, so HTTP dates in `Retry-After` are exact.
NOW = 1_800_000_000.0


class FakeClock(retry.Clock):
    """Retry clock that records the waits instead of sleeping (and advances its time by them).

    Inject it (`RestsyncSession(clock=...)`, `OAuth2Auth(clock=...)`) or install it for a
    whole run with `monkeypatch.setattr(retry, "CLOCK", FakeClock())`.
    """

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


# --------------------------------------------------------------------------- specs


def write_spec(directory: Path, spec: dict) -> Path:
    """Write `spec` as `<directory>/<name>.yaml`; returns the file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def use_specs(monkeypatch, directory: Path, apis: dict[str, str]) -> None:
    """Point restsync at the specs of `directory`, and spec `name` at `apis[name]`."""
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(directory))
    for name, url in apis.items():
        monkeypatch.setenv(f"{name.upper()}_BASE_URL", url)


# --------------------------------------------------------------------------- warehouse


def _normal(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def canonical(rows: Iterable[dict]) -> list[dict]:
    """`rows` in one order whatever order they came in (tables compare as lists)."""
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def table(dataset: str, name: str, path: Path | None = None) -> list[dict] | None:
    """Every row of `dataset.name` without dlt's bookkeeping columns, sorted; None if missing."""
    import duckdb

    path = path or warehouse.settings.duckdb_path()
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        try:
            cursor = con.execute(f'select * from "{dataset}"."{name}"')
        except duckdb.CatalogException:
            return None
        names = [d[0] for d in cursor.description]
        rows = [
            {k: _normal(v) for k, v in zip(names, row, strict=True) if k not in DLT_COLUMNS}
            for row in cursor.fetchall()
        ]
    return canonical(rows)


def dataset_tables(dataset: str, path: Path | None = None) -> dict[str, list[dict] | None]:
    """Every data table of `dataset` (dlt's `_dlt_*` tables left out), rows as `table()`."""
    names = warehouse.query(
        "select table_name from information_schema.tables "
        f"where table_schema = '{dataset}' and table_name not like '\\_dlt\\_%' escape '\\'",
        path,
        scalar_rows=True,
    )
    return {n: table(dataset, n, path) for n in sorted(names or [])}
