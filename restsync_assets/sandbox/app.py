"""Transport-independent request handling: dataset, tokens, routing, faults."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable

from . import exports, logins, reports, routes, vendors
from .auth import TOKEN_PATHS, TokenStore, require_bearer, token_endpoint
from .data import RESOURCES, SANDBOX_SPECS, SORT_KEYS, build_dataset
from .faults import FaultPlan
from .models import ApiError, IncomingRequest, Response


def _same_key(a, b) -> bool:
    return str(a) == str(b)


_RESOURCES = {**RESOURCES, **vendors.RESOURCES, **exports.RESOURCES}


class SandboxApp:
    """The five fake OAuth2 APIs, the `reports` vendor and the static-credential vendors over
    one in-memory dataset (thread-safe)."""

    def __init__(
        self,
        token_ttl: int,
        clock: Callable[[], float],
        page_size: int,
        faults: FaultPlan | None = None,
    ):
        self.tokens = TokenStore(token_ttl, clock)
        self.page_size = page_size
        self.faults = faults or FaultPlan()
        self.default_host = "127.0.0.1"
        self._data = {**build_dataset(), **vendors.build_dataset(), **exports.build_dataset()}
        self._lock = threading.RLock()
        self.reports = reports.Reports()

    # ------------------------------------------------------------------ dataset access

    def _table(self, spec: str, resource: str) -> list[dict]:
        if resource not in _RESOURCES.get(spec, ()):
            raise KeyError(f"unknown sandbox resource {spec}.{resource}")
        return self._data[spec][resource]

    def rows(self, spec: str, resource: str) -> list[dict]:
        if spec == reports.NAME:
            if resource not in reports.LEVELS:
                raise KeyError(f"unknown sandbox resource {spec}.{resource}")
            return self.reports.truth(reports.LEVELS[resource])
        with self._lock:
            return copy.deepcopy(self._table(spec, resource))

    def upsert_row(self, spec: str, resource: str, row: dict) -> None:
        if row.get("id") is None:
            raise ValueError("row needs a non-null 'id'")
        keys = SORT_KEYS.get((spec, resource), ())
        if missing := [k for k in keys if row.get(k) is None]:
            raise ValueError(f"{spec}.{resource} rows need non-null {missing}")
        row = copy.deepcopy(row)
        with self._lock:
            table = self._table(spec, resource)
            for i, existing in enumerate(table):
                if existing["id"] == row["id"]:
                    table[i] = row
                    break
            else:
                table.append(row)
            if keys:
                table.sort(key=lambda r: tuple(str(r[k]) for k in keys))

    # ------------------------------------------------------------------ request handling

    def handle(self, request: IncomingRequest) -> Response:
        """Answer one request; never raises for client errors."""
        try:
            return self._handle(request)
        except ApiError as error:
            return error.response

    def _handle(self, request: IncomingRequest) -> Response:
        first, _, rest = request.path.lstrip("/").partition("/")
        subpath = "/" + rest
        route = params = None
        if first == exports.NAME:
            request.spec, request.resource = first, exports.resource_for(subpath)
            with self._lock:
                data = copy.deepcopy(self._data[first])
            return self._with_faults(request, lambda: exports.render(request, subpath, data))
        if first == reports.NAME:
            request.spec = first
            return self.reports.render(request, subpath)
        if first in SANDBOX_SPECS or first in vendors.VENDORS:
            request.spec = first
            if subpath in (TOKEN_PATHS.get(first), logins.LOGIN_PATHS.get(first)):
                request.resource = "oauth"
            elif found := routes.match(first, subpath):
                route, params = found
                request.resource = route.resource

        return self._with_faults(request, lambda: self._serve(request, route, params))

    def _with_faults(self, request: IncomingRequest, answer: Callable[[], Response]) -> Response:
        """The answer to `request` through the fault plan (`answer()`: the normal one)."""

        def serve() -> Response:
            try:
                return answer()
            except ApiError as error:
                return error.response

        handle = getattr(self.faults, "handle", None)
        if handle is not None:
            return handle(request, self, serve)
        override = self.faults.intercept(request)
        return override if override is not None else serve()

    def _serve(
        self, request: IncomingRequest, route: routes.Route | None, params: dict | None
    ) -> Response:
        if request.resource == "oauth" and request.spec in logins.LOGIN_PATHS:
            return logins.login(request.spec, request, self.tokens)
        if request.resource == "oauth":
            return token_endpoint(request.spec, request, self.tokens)
        if route is None:
            raise ApiError(404, "not_found", f"no route for {request.path}")
        if request.method != route.method:
            allow = route.method
            raise ApiError(405, "method_not_allowed", f"use {allow}", {"Allow": allow})
        if route.spec in logins.LOGIN_PATHS:
            logins.require_token(route.spec, request, self.tokens)
        elif route.spec in vendors.VENDORS:
            vendors.require_credential(route.spec, request)
        else:
            require_bearer(route.spec, request, self.tokens)
        with self._lock:
            rows = self._select(route, params)
        host = request.headers.get("host") or self.default_host
        return routes.render(route, rows, request, host, self.page_size)

    # ------------------------------------------------------------------ dataset changes (faults)

    def insert_rows(self, spec: str, resource: str, rows: list[dict], at: int = 0) -> None:
        """Insert ``rows`` at position ``at`` (unsorted tables; sorted ones are re-sorted)."""
        keys = SORT_KEYS.get((spec, resource), ())
        with self._lock:
            table = self._table(spec, resource)
            table[at:at] = copy.deepcopy(rows)
            if keys:
                table.sort(key=lambda r: tuple(str(r[k]) for k in keys))

    def delete_rows(self, spec: str, resource: str, start: int, count: int) -> list[dict]:
        """Remove ``count`` rows from position ``start``; returns them."""
        with self._lock:
            table = self._table(spec, resource)
            removed = table[start : start + count]
            del table[start : start + count]
        return copy.deepcopy(removed)

    def delete_row(self, spec: str, resource: str, row_id: object) -> dict:
        """Remove the row whose ``id`` is ``row_id``; returns it."""
        with self._lock:
            table = self._table(spec, resource)
            for i, row in enumerate(table):
                if _same_key(row["id"], row_id):
                    return copy.deepcopy(table.pop(i))
        raise KeyError(f"{spec}.{resource} has no row with id {row_id!r}")

    def _select(self, route: routes.Route, params: dict[str, str]) -> list[dict]:
        if route.parent is not None:
            parents = self._data[route.spec][route.parent]
            if not any(
                all(_same_key(p.get(field), params[name]) for field, name in route.parent_keys)
                for p in parents
            ):
                raise ApiError(404, "not_found", f"no such {route.parent[:-1]} for this path")
        return [
            row
            for row in self._data[route.spec][route.resource]
            if all(_same_key(row.get(field), params[name]) for field, name in route.child_keys)
        ]
