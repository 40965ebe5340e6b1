"""Shared test support, one of each: a fake JSON server, a fake clock, spec builders, runs,
warehouse reads and secret searches.

- `JsonApi`: a JSON API on 127.0.0.1 from a route table; every request is recorded, so tests
  can assert on what restsync asked for. Test modules bring their own data and handlers
  (`mock_api.BlogApi` is dlt's blog mock on it).
- `RawApi`: answers with any status, headers and bytes (or drops the connection), for
  tests of the HTTP layer itself (`RawRequest`, `RawReply`, `sequence`, `DROP`).
- `FakeClock`: restsync's retry clock (records the waits instead of sleeping) and the
  sandbox's clock (a callable of epoch seconds), moved by hand.
- Spec builders: `write_spec`, `copy_seed_specs`, `edited`, `use_specs`, `use_warehouse`.
- `materialize_specs` / `failure_message` / `check_evaluations`: runs through Dagster.
- `table` / `table_rows` / `dataset_tables` / `typed_tables`: warehouse reads to compare with
  a truth row for row; `table_ids` / `query`: a DuckDB file read under the loads' lock.

Fixtures live in `conftest.py` and build on this module (which imports nothing from it).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import decimal
import json
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import yaml

from restsync_assets import settings
from restsync_assets.cli.run import QUIET
from restsync_assets.runtime.http import retry
from restsync_assets.sandbox.data import SANDBOX_SPECS

REPO = Path(__file__).resolve().parent.parent


def seed_specs_folder(folder: Path) -> Path:
    """`folder` holding only the seed specs the sandbox serves (`SANDBOX_SPECS`), copied from
    the repo's `source_specs/` (each file replaced whole, so processes building it at once
    agree); any other spec file in `folder` is removed. The YAML lives in git once."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SANDBOX_SPECS:
        partial = folder / f".{name}.{os.getpid()}.tmp"
        partial.write_bytes((REPO / "source_specs" / f"{name}.yaml").read_bytes())
        os.replace(partial, folder / f"{name}.yaml")
    for path in folder.glob("*.y*ml"):
        if path.stem not in SANDBOX_SPECS:
            path.unlink(missing_ok=True)
    return folder


#: The tests' own folder of seed specs, never the user's `source_specs/` (where an API the
#: user adds would change what the tests count): built when the suite starts.
SEED_SPECS = seed_specs_folder(REPO / "data" / "tests" / "seed_specs")
#: This process's pytest-xdist worker (`gw0`, `gw1`, ...; `main` without xdist). It is part of
#: the name of everything a test creates on a shared server (PostgreSQL databases, RabbitMQ
#: vhosts), so that two workers never meet there and a leftover says whose it was.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
#: dlt's bookkeeping columns: they differ between any two loads of the same rows.
DLT_COLUMNS = ("_dlt_load_id", "_dlt_id")
#: dlt's row ids, nested tables' included.
ROW_IDS = (*DLT_COLUMNS, "_dlt_parent_id", "_dlt_root_id")
#: How the fake APIs and the warehouse reads write timestamps: ISO 8601 in UTC.
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# --------------------------------------------------------------------------- the fake JSON API


@contextmanager
def serving(server: HTTPServer) -> Iterator[HTTPServer]:
    """Run a stdlib HTTP server on a daemon thread for the duration of the block."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Request:
    """One request the API received: `params` are the route's `{name}` segments."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    json: Any = None
    params: dict[str, str] = field(default_factory=dict)
    origin: str = ""

    def url(self, **query: Any) -> str:
        """This request's absolute URL with `query` as its query string."""
        return f"{self.origin}{self.path}?{urlencode(query)}"

    def number(self, name: str, default: int) -> int:
        return int(self.query.get(name, default))


@dataclass(frozen=True)
class Reply:
    """An answer other than `200` with a JSON body: a status, headers (204: no body)."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


#: `handler(request)` -> a JSON body, or a `Reply`.
Handler = Callable[[Request], Any]


class JsonApi:
    """A JSON API from a route table: `{"GET /repos/{id}/issues": handler}`.

    `{name}` in a route matches one path segment and reaches the handler as
    `request.params[name]`. `with api:` serves it on a free loopback port (`api.url`), on
    threads (concurrent clients see concurrent answers); an unknown route answers 404.
    """

    def __init__(self, routes: dict[str, Handler]):
        self.routes = [(_route_pattern(route), handler) for route, handler in routes.items()]
        self.calls: list[Request] = []
        self._lock = threading.Lock()
        self._running = ExitStack()
        self.url = ""

    def __enter__(self) -> JsonApi:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._running.enter_context(serving(server))
        return self

    def __exit__(self, *exc: object) -> None:
        self._running.close()

    def calls_to(self, pattern: str) -> list[Request]:
        """The calls whose path fully matches the regular expression `pattern`."""
        with self._lock:
            return [c for c in self.calls if re.fullmatch(pattern, c.path)]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        request = Request(
            method=method,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            json=json.loads(body) if body else None,
            origin=self.url,
        )
        with self._lock:
            self.calls.append(request)
        for pattern, handler in self.routes:
            match = pattern.fullmatch(f"{method} {parts.path}")
            if match:
                reply = handler(replace(request, params=match.groupdict()))
                return reply if isinstance(reply, Reply) else Reply(reply)
        return Reply({"error": f"no route for {method} {parts.path}"}, status=404)


def _respond(
    handler: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str], payload: bytes
) -> None:
    """Send one response: JSON unless `headers` name another content type."""
    handler.send_response(status)
    if "Content-Type" not in headers:
        handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(payload)


def _route_pattern(route: str) -> re.Pattern[str]:
    literals = re.split(r"\{(\w+)\}", route)
    pattern = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(literals)
    )
    return re.compile(pattern)


def _handler_class(api: JsonApi) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            reply = api.answer(self.command, self.path, self.headers, self.rfile.read(length))
            payload = b"" if reply.status == 204 else json.dumps(reply.body).encode()
            _respond(self, reply.status, reply.headers, payload)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _Handler


def page_of(rows: list, query: Mapping[str, str], size: int) -> tuple[list, int, int]:
    """Rows of page `?page=N` (1-based) of `?per_page=` rows (default `size`), the page
    number and the page count."""
    size = int(query.get("per_page", size))
    number = int(query.get("page", 1))
    pages = max(1, -(-len(rows) // size))
    return rows[(number - 1) * size : number * size], number, pages


def page(rows: list[dict], query: Mapping[str, str], size: int) -> dict:
    """`rows` paged by `?page=N` as `{"data": [...], "page": N, "total_pages": K}`."""
    data, number, pages = page_of(rows, query, size)
    return {"data": data, "page": number, "total_pages": pages}


# --------------------------------------------------------------------------- raw HTTP


@dataclass(frozen=True)
class RawRequest:
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
class RawReply:
    """What a `RawApi` answers: `body` bytes are sent as they are, anything else as JSON
    (`Content-Type: application/json` unless `headers` say otherwise)."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


#: An `app`'s answer that closes the connection without a response.
DROP = "drop"
#: `app(request)` -> a `RawReply`, or `DROP`.
App = Callable[[RawRequest], "RawReply | str"]


class RawApi:
    """An HTTP server on 127.0.0.1 whose `app` answers every method with any status, headers
    and body, or drops the connection; `requests` records what it received, in order."""

    def __init__(self, app: App | None = None) -> None:
        self.app: App = app or (lambda request: RawReply())
        self.requests: list[RawRequest] = []
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
        self.app = app or (lambda request: RawReply())
        return self

    def calls(self, path: str) -> int:
        """How many requests went to `path`."""
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def record(self, request: RawRequest) -> None:
        with self._lock:
            self.requests.append(request)


def sequence(*replies: RawReply | str) -> App:
    """An `app` answering with `replies` in order, then the last one again and again."""
    queue = list(replies)
    return lambda request: queue.pop(0) if len(queue) > 1 else queue[0]


def _raw_handler_class(api: RawApi) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = RawRequest(
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
            _respond(self, reply.status, reply.headers, payload)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _Handler


# --------------------------------------------------------------------------- the fake clock

#: The fake clock's start: whole seconds, so HTTP dates in `Retry-After` are exact.
NOW = 1_800_000_000.0


class FakeClock(retry.Clock):
    """A clock tests move by hand, never sleeping.

    As restsync's retry clock (`retry.CLOCK`, see conftest's `retry_clock`): `time()` is
    `now`; `sleep(seconds)` records the wait in `sleeps` (rounded to ms) and advances `now`.
    As the sandbox's clock (a callable of epoch seconds): calling it gives `now`.
    """

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self._lock = threading.Lock()  # threads sharing the clock never lose a sleep

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(round(seconds, 3))
            self.now += seconds

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- spec builders

#: An `edited` change's value that removes the key.
DELETE = object()


def write_spec(directory: Path, spec: dict | str, filename: str | None = None) -> Path:
    """Write `spec` (a dict, or YAML text as it is) to `directory/filename` (default
    `<name>.yaml`); returns the file."""
    directory.mkdir(parents=True, exist_ok=True)
    text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False)
    path = directory / (filename or f"{yaml.safe_load(text)['name']}.yaml")
    path.write_text(text)
    return path


def refusal(directory: Path, spec: dict | str) -> str:
    """The one line loading `spec` (written to `directory`) is refused with; fails the test
    when the spec loads. The line names the file as seen from the working directory."""
    from restsync_assets.specs import SpecError, load_spec_file

    path = write_spec(directory, spec)
    try:
        load_spec_file(path)
    except SpecError as error:
        return str(error)
    raise AssertionError(f"{path.name} loaded, but it should have been refused")


def copy_seed_specs(
    directory: Path,
    names: Iterable[str] | None = None,
    edit: Callable[[dict], None] | None = None,
) -> Path:
    """The seed specs `names` (default: all) written into `directory`, each changed by
    `edit(raw)` first when given; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = None if names is None else set(names)
    for path in sorted(SEED_SPECS.glob("*.yaml")):
        if wanted is not None and path.stem not in wanted:
            continue
        if edit is None:
            (directory / path.name).write_text(path.read_text())
            continue
        raw = yaml.safe_load(path.read_text())
        edit(raw)
        write_spec(directory, raw, path.name)
    return directory


def edited(base: dict, **changes: Any) -> dict:
    """A deep copy of `base` with changes at `__`-separated paths applied, e.g.
    `edited(spec, resources__0__endpoint__path="/x")`; the value `DELETE` removes the key."""
    spec = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = spec
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        elif value is DELETE:
            node.pop(last)
        else:
            node[last] = value
    return spec


def use_specs(monkeypatch, directory: Path, apis: Mapping[str, str] | None = None) -> Path:
    """Point restsync at the specs in `directory` (`RESTSYNC_SPECS_DIR`) and spec `name` at
    `apis[name]` (`<NAME>_BASE_URL`); returns the directory."""
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(directory))
    for name, url in (apis or {}).items():
        monkeypatch.setenv(f"{name.upper()}_BASE_URL", url)
    return directory


def use_warehouse(monkeypatch, duckdb_path: Path, pipelines_dir: Path | None = None) -> Path:
    """Load into the DuckDB file `duckdb_path`, dlt's working state in `pipelines_dir`
    (default: `pipelines` beside the file); returns the file."""
    monkeypatch.setenv("RESTSYNC_DUCKDB_PATH", str(duckdb_path))
    monkeypatch.setenv(
        "RESTSYNC_PIPELINES_DIR", str(pipelines_dir or duckdb_path.parent / "pipelines")
    )
    return duckdb_path


def arrow_pages_seen(monkeypatch) -> list[int]:
    """The rows of each page `ArrowPages` hands dlt as an Arrow table (the fast path), in
    order, from now on (the runs are in-process): a test tells whether the fast path ran."""
    import pyarrow as pa

    from restsync_assets.runtime.arrow_pages import ArrowPages

    seen: list[int] = []
    original = ArrowPages.__call__

    def counting(self: ArrowPages, item: Any, meta: Any = None) -> Any:
        out = original(self, item, meta)
        if isinstance(out, pa.Table):
            seen.append(out.num_rows)
        return out

    monkeypatch.setattr(ArrowPages, "__call__", counting)
    return seen


# --------------------------------------------------------------------------- runs


def materialize_specs(
    specs_dir: Path, select: list[tuple[str, str]] | None = None, instance: Any = None
) -> Any:
    """Materialize the specs of `specs_dir` (all assets, or `select`) with Dagster's own
    `materialize`, in this process; the result, failed or not."""
    from dagster import AssetKey, DagsterInstance, materialize

    from restsync_assets.definitions import build_definitions
    from restsync_assets.specs import load_specs

    defs = build_definitions(load_specs(specs_dir))
    return materialize(
        list(defs.assets),
        resources=defs.resources,
        selection=[AssetKey(list(k)) for k in select] if select else None,
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config=QUIET,
    )


def failure_message(result: Any) -> str:
    """restsync's one-line failure of a run (the step failure's description); a line saying
    what happened instead when the run failed otherwise, or did not fail."""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    if failure is None:
        return "no step failed"
    data = failure.step_failure_data
    if data.user_failure_data is None:
        return f"a failure restsync did not explain: {data.error.message.strip()}"
    return data.user_failure_data.description


#: Every kind of check restsync generates: the seed tables with a primary key, declared
#: column types and a max lag (ledger's, ad_analytics' campaign analytics) get all five.
LEDGER_CHECKS = {"primary_key", "not_null", "column_types", "row_count", "freshness"}


def check_evaluations(defs: Any) -> dict[tuple[tuple[str, ...], str], Any]:
    """Every asset check of `defs`, run once: `{(asset key path, check name): evaluation}`."""
    from dagster import DagsterInstance

    from restsync_assets.definitions import CHECKS_JOB

    result = defs.resolve_job_def(CHECKS_JOB).execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False, run_config=QUIET
    )
    return {
        (tuple(e.asset_key.path), e.check_name): e for e in result.get_asset_check_evaluations()
    }


# --------------------------------------------------------------------------- warehouse reads


def normal(value: Any) -> Any:
    """A warehouse value as the APIs write it: timestamps as `STAMP_FORMAT` in UTC, dates
    ISO, decimals as floats."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime(STAMP_FORMAT)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def table_ids(dataset: str, table: str, path: Path | None = None) -> list | None:
    """Every `id` of `dataset.table` of a DuckDB file, or None when the file or table is missing."""
    return query(f'select id from "{dataset}"."{table}"', path, scalar_rows=True)


def query(sql: str, path: Path | None = None, *, scalar_rows: bool = False) -> list | None:
    """Run `sql` on a DuckDB file (default: the configured one), read-only and under the
    loads' lock on `<file>.lock`; None when the file or a table in the query is missing."""
    import duckdb

    from restsync_assets.runtime.locks import exclusive

    path = path or settings.duckdb_path()
    with exclusive(path.with_name(path.name + ".lock")):
        if not path.exists():
            return None
        with duckdb.connect(str(path), read_only=True) as con:
            try:
                rows = con.execute(sql).fetchall()
            except duckdb.CatalogException:
                return None
    return [r[0] for r in rows] if scalar_rows else rows


def canonical(rows: Iterable[dict]) -> list[dict]:
    """`rows` in one order whatever order they came in (tables compare as lists)."""
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _rows(dataset: str, name: str, path: Path | None, drop: tuple[str, ...]) -> list[dict] | None:
    import duckdb

    path = path or settings.duckdb_path()
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        try:
            cursor = con.execute(f'select * from "{dataset}"."{name}"')
        except duckdb.CatalogException:
            return None
        names = [d[0] for d in cursor.description]
        return [
            {k: normal(v) for k, v in zip(names, row, strict=True) if k not in drop}
            for row in cursor.fetchall()
        ]


def table(dataset: str, name: str, path: Path | None = None) -> list[dict] | None:
    """Every row of `dataset.name` without dlt's bookkeeping columns, sorted; None if missing."""
    rows = _rows(dataset, name, path, DLT_COLUMNS)
    return None if rows is None else canonical(rows)


def table_rows(dataset: str, name: str, path: Path | None = None) -> dict[Any, dict] | None:
    """`{id: row}` of a warehouse table, every column (dlt's too: a rewritten row differs);
    None when missing. Asserts the ids are unique."""
    rows = _rows(dataset, name, path, ())
    if rows is None:
        return None
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"{dataset}.{name} has duplicate primary keys"
    return {r["id"]: r for r in rows}


def dataset_tables(dataset: str, path: Path | None = None) -> dict[str, list[dict] | None]:
    """Every data table of `dataset` (dlt's `_dlt_*` tables left out), rows as `table()`."""
    names = query(
        "select table_name from information_schema.tables "
        f"where table_schema = '{dataset}' and table_name not like '\\_dlt\\_%' escape '\\'",
        path,
        scalar_rows=True,
    )
    return {n: table(dataset, n, path) for n in sorted(names or [])}


@dataclass(frozen=True)
class Table:
    """A table's columns with their types (sorted by name) and its rows on them, sorted."""

    columns: tuple[tuple[str, str], ...]
    rows: list[tuple]


def typed_tables(db: Path, dataset: str) -> dict[str, Table]:
    """Every data table of `dataset` in the DuckDB file `db`: its columns but dlt's row ids
    (`ROW_IDS`) with their types, and its rows on them, sorted."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        columns: dict[str, list[tuple[str, str]]] = {}
        for name, column, kind in con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = ? order by table_name, ordinal_position",
            [dataset],
        ).fetchall():
            if not name.startswith("_dlt_") and column not in ROW_IDS:
                columns.setdefault(name, []).append((column, kind))
        return {
            name: Table(
                tuple(sorted(cols)),
                sorted_rows(
                    con.execute(
                        f"select {', '.join(_quote(c) for c, _ in sorted(cols))}"
                        f" from {_quote(dataset)}.{_quote(name)}"
                    ).fetchall()
                ),
            )
            for name, cols in columns.items()
        }


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sorted_rows(rows: Iterable[tuple]) -> list[tuple]:
    """Row tuples in one order, whatever their values' types (None sorts last)."""
    return sorted(rows, key=lambda row: [(v is None, str(v)) for v in row])


def assert_table_is(
    rows: dict[Any, dict] | None, truth: list[dict], *, ignore: tuple[str, ...] = ()
) -> None:
    """The table (`table_rows`) holds exactly the `truth` rows, every scalar field equal."""
    assert rows is not None, "table not loaded"
    assert set(rows) == {t["id"] for t in truth}
    for expected in truth:
        got = rows[expected["id"]]
        for key, value in expected.items():
            if key in ignore or isinstance(value, (dict, list)):
                continue
            assert got.get(key) == value, (expected["id"], key, got.get(key), value)


def assert_table_equals_truth(sandbox: Any, spec: str, resource: str, **kw: Any) -> None:
    """The warehouse table of `spec`'s `resource` holds exactly the sandbox's rows."""
    assert_table_is(table_rows(spec, resource), sandbox.rows(spec, resource), **kw)


# --------------------------------------------------------------------------- secrets


def warehouse_texts(path: Path) -> list[str]:
    """Every value of every table of the DuckDB file (dlt's included), its pipeline state
    decoded."""
    import duckdb

    texts = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
        assert any(name == "_dlt_pipeline_state" for _, name in tables)
        for schema, name in tables:
            for row in con.execute(f'select * from "{schema}"."{name}"').fetchall():
                texts.append(repr(row))
                if name == "_dlt_pipeline_state":
                    for value in row:
                        if isinstance(value, str) and len(value) > 40:
                            with contextlib.suppress(ValueError, zlib.error):
                                texts.append(zlib.decompress(base64.b64decode(value)).decode())
    return texts


def secrets_found(secrets: Iterable[str], texts: Mapping[str, str]) -> list[str]:
    """`"<where>: <secret's start>…"` for each secret found in a text of `{where: text}`."""
    return [f"{where}: {s[:12]}…" for where, text in texts.items() for s in secrets if s in text]
