"""HTTP server for the sandbox and the :class:`Sandbox` public API."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import reports
from .app import SandboxApp
from .auth import GRANT_TYPES, TOKEN_PATHS, credentials_for
from .data import SANDBOX_SPECS
from .faults import FaultPlan
from .models import IncomingRequest, RequestRecord, Response
from .vendors import VENDORS, secrets_of
from .vendors import credentials_for as vendor_credentials

LOG_ENV_VAR = "RESTSYNC_SANDBOX_LOG"
#: every seed spec of `source_specs/` the sandbox serves: the five OAuth2 APIs and the
#: `reports` vendor (async report jobs, `sandbox.reports`)
SEEDS: tuple[str, ...] = (*SANDBOX_SPECS, reports.NAME)


def _logging_enabled() -> bool:
    return os.environ.get(LOG_ENV_VAR, "").lower() not in ("", "0", "false", "no")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "restsync-sandbox/1.0"
    timeout = 60
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        request = IncomingRequest(
            method=method,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        sandbox = self.server.sandbox
        try:
            response = sandbox._app.handle(request)
        except Exception:
            traceback.print_exc()
            response = Response(500, {"error": "internal_error"})
        sandbox._record(request, response.status, arrived)
        if response.delay > 0 and sandbox._hold(response.delay, response.hold):
            self.close_connection = True  # stopping: drop the slow request
            return
        payload = response.payload()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if response.reset_after is None:
            self.wfile.write(payload)
            return
        self.wfile.write(payload[: response.reset_after])
        self.wfile.flush()
        self._reset()

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a crashing proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.rfile.close()  # drop makefile()'s reference so close() really closes
            self.connection.close()

    def log_message(self, format: str, *args) -> None:
        if _logging_enabled():
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox):
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address) -> None:
        if _logging_enabled():
            super().handle_error(request, client_address)


class Sandbox:
    """Local fake of the seed APIs (`SEEDS`) and vendors, served under
    ``http://host:port/<spec>/...``.

    Use as a context manager (``with Sandbox() as sb: ...``) or call
    :meth:`start` / :meth:`stop`. ``port=0`` picks a free port; read :attr:`url`
    after starting. ``clock`` (epoch seconds) drives token expiry, ``page_size``
    is the marketing_api cursor page size, ``faults`` is the fault-injection
    hook (see :mod:`restsync_assets.sandbox.faults`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl: int = 3600,
        clock: Callable[[], float] = time.time,
        page_size: int = 5,
        faults: FaultPlan | None = None,
    ):
        self.host = host
        self.port = port
        self._app = SandboxApp(token_ttl, clock, page_size, faults)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Condition()
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Sandbox:
        """Bind and serve in a background daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._app.default_host = f"{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"restsync-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and close the listening socket."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # release handlers waiting in a slow-response fault
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------------ URLs and credentials

    @property
    def url(self) -> str:
        """``http://<host>:<port>`` (only once started)."""
        if self._server is None:
            raise RuntimeError("sandbox not started")
        return f"http://{self.host}:{self.port}"

    @property
    def faults(self) -> FaultPlan:
        """Fault-injection plan consulted for every request (default: no faults)."""
        return self._app.faults

    @faults.setter
    def faults(self, plan: FaultPlan | None) -> None:
        self._app.faults = plan or FaultPlan()

    def base_url(self, spec: str) -> str:
        _check_spec(spec)
        return f"{self.url}/{spec}"

    def token_url(self, spec: str) -> str:
        return self.base_url(spec) + TOKEN_PATHS[spec]

    def grant_type(self, spec: str) -> str:
        """``"client_credentials"`` or ``"refresh_token"``."""
        _check_spec(spec)
        return GRANT_TYPES[spec]

    def credentials(self, spec: str) -> dict[str, str]:
        """``client_id``, ``client_secret`` and, for refresh-token specs, ``refresh_token``;
        for a static-credential vendor its token, key or user and password
        (see :mod:`restsync_assets.sandbox.vendors`)."""
        return _credentials(spec)

    def env(self, specs: Iterable[str] | None = None) -> dict[str, str]:
        """Environment variables ``<SPEC>_CLIENT_ID`` ... ``<SPEC>_TOKEN_URL`` for ``specs``
        (default: every seed spec, `SEEDS`); a vendor's are its credentials and ``_BASE_URL``."""
        return env_for(self.url, specs)

    def values(self, spec: str) -> dict[str, str]:
        """``spec``'s credentials and URLs by key, for `ApiCredentials.given`."""
        return values_for(self.url, spec)

    # ------------------------------------------------------------------ data

    @property
    def reports(self):
        """The `reports` vendor (async report jobs): its knobs, jobs and truth
        (see :mod:`restsync_assets.sandbox.reports`)."""
        return self._app.reports

    def rows(self, spec: str, resource: str) -> list[dict]:
        """Every row the API can return for ``resource`` (children across all parents)."""
        return self._app.rows(spec, resource)

    def ids(self, spec: str, resource: str) -> set:
        return {row["id"] for row in self.rows(spec, resource)}

    def upsert_row(self, spec: str, resource: str, row: dict) -> None:
        """Add ``row`` or replace the row with the same ``id``."""
        self._app.upsert_row(spec, resource, row)

    def delete_row(self, spec: str, resource: str, row_id: object) -> dict:
        """Remove the row with ``id`` ``row_id`` (a row deleted at the source); returns it,
        for :meth:`upsert_row` to restore."""
        return self._app.delete_row(spec, resource, row_id)

    def expire_tokens(self) -> None:
        """Invalidate every access token issued so far."""
        self._app.tokens.expire_all()

    def refresh_token(self, spec: str) -> str:
        """The refresh token the token endpoint of ``spec`` accepts now (after rotations)."""
        _check_spec(spec)
        return self._app.tokens.refresh_token(spec)

    def single_use_refresh_tokens(self, spec: str) -> str:
        """From now on ``spec``'s token endpoint spends each refresh token once and answers
        with a new one (rotation enforced, as Salesforce does); returns the fresh refresh
        token to configure. :meth:`refresh_token_reuses` counts grants with a spent one."""
        _check_spec(spec)
        return self._app.tokens.single_use(spec)

    def refresh_token_reuses(self, spec: str) -> int:
        """How many token requests of ``spec`` sent a refresh token already spent."""
        _check_spec(spec)
        return self._app.tokens.reuses(spec)

    def secrets(self) -> list[str]:
        """Every secret the sandbox knows: client secrets, refresh tokens (configured and
        rotated), every access token issued so far and the vendors' tokens, keys and
        passwords (with the basic-auth base64 form). For secret scans in tests."""
        values = [
            v
            for spec in SANDBOX_SPECS
            for k, v in credentials_for(spec).items()
            if k != "client_id"
        ]
        values += [s for vendor in VENDORS for s in secrets_of(vendor)] + [reports.TOKEN]
        return list(dict.fromkeys(values + self._app.tokens.issued()))

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot of every request served so far, in arrival order."""
        with self._log_lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def _hold(self, seconds: float, release: threading.Event | None) -> bool:
        """Wait `seconds` (or until `release` is set); True when the sandbox is stopping."""
        if release is None:
            return self._stopping.wait(seconds)
        deadline = time.monotonic() + seconds
        while not release.wait(0.02):
            if self._stopping.is_set() or time.monotonic() >= deadline:
                break
        return self._stopping.is_set()

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` requests were served (True) or ``timeout`` passed."""
        with self._log_lock:
            return self._log_lock.wait_for(lambda: len(self._log) >= count, timeout)

    def _record(self, request: IncomingRequest, status: int, at: float) -> None:
        record = RequestRecord(
            request.method,
            request.path,
            request.query,
            status,
            request.spec,
            request.resource,
            tuple(request.faults),
            at,
        )
        with self._log_lock:
            self._log.append(record)
            self._log_lock.notify_all()


def env_for(url: str, specs: Iterable[str] | None = None) -> dict[str, str]:
    """The env vars pointing ``specs`` (default: all) at a sandbox served at ``url``."""
    out: dict[str, str] = {}
    for spec in SEEDS if specs is None else specs:
        for key, value in values_for(url, spec).items():
            out[f"{spec.upper()}_{key.upper()}"] = value
    return out


def values_for(url: str, spec: str) -> dict[str, str]:
    """``spec``'s credentials and URLs for a sandbox served at ``url``, by key (``client_id``,
    ``base_url``, a vendor's ``token``...): what `env_for` exports, for handing to
    `ApiCredentials` in code instead."""
    out = dict(_credentials(spec))
    out["base_url"] = f"{url}/{spec}"
    if spec in SANDBOX_SPECS:
        out["token_url"] = f"{url}/{spec}{TOKEN_PATHS[spec]}"
    elif spec in VENDORS and VENDORS[spec].auth == "oauth2_options":
        out["token_url"] = f"{url}/{spec}{VENDORS[spec].login_path}"
    return out


def export_lines(
    port: int, host: str = "127.0.0.1", specs: Iterable[str] | None = None
) -> list[str]:
    """``export NAME=value`` lines (shell-quoted) for a sandbox on ``host:port``: paste them
    into a shell, or ``eval "$(restsync sandbox --print-env --port P)"``."""
    env = env_for(f"http://{host}:{port}", specs)
    return [f"export {key}={shlex.quote(value)}" for key, value in env.items()]


def _credentials(spec: str) -> dict[str, str]:
    """The credentials of sandbox API `spec`, keyed by the secret names its spec reads."""
    _check_spec(spec)
    if spec == reports.NAME:
        return {"token": reports.TOKEN}
    return vendor_credentials(spec) if spec in VENDORS else credentials_for(spec)


def _check_spec(spec: str) -> None:
    if spec not in SEEDS and spec not in VENDORS:
        raise KeyError(f"unknown sandbox spec {spec!r}; expected one of {(*SEEDS, *VENDORS)}")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(port: int, host: str = "127.0.0.1", faults: FaultPlan | None = None) -> None:
    """Run the sandbox in the foreground until Ctrl-C (or SIGTERM).

    Prints each spec's base/token URL and its credentials as ``export NAME=value`` lines
    (fake, fixed sandbox credentials) to paste into a shell. ``port=0`` picks a free port.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        with Sandbox(host=host, port=port, faults=faults) as sandbox:
            print(f"restsync sandbox listening on {sandbox.url}")
            if faults is not None and getattr(faults, "faults", None):
                print(
                    f"injecting {len(faults.faults)} fault rules (restsync_assets.sandbox.faults)"
                )
            for spec in SANDBOX_SPECS:
                print(f"\n# {spec}: base {sandbox.base_url(spec)}  token {sandbox.token_url(spec)}")
                for line in export_lines(sandbox.port, host, [spec]):
                    print(line)
            base = sandbox.base_url(reports.NAME)
            print(f"\n# {reports.NAME} (bearer; async report jobs): base {base}")
            for line in export_lines(sandbox.port, host, [reports.NAME]):
                print(line)
            for vendor in VENDORS.values():
                print(f"\n# {vendor.name} ({vendor.auth}): base {sandbox.base_url(vendor.name)}")
                for line in export_lines(sandbox.port, host, [vendor.name]):
                    print(line)
            print("\nPress Ctrl-C to stop.", flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                print("stopping sandbox", file=sys.stderr)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


serve_forever = serve
