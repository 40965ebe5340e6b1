"""The sandbox's ``chat`` vendor: a Slack-like message history (bearer token).

``GET /chat/v1/messages`` answers ``{"ok": true, "messages": [...]}`` with status 200, pages
by ``offset``/``limit`` with the next page's URL in a ``Link: <...>; rel="next"`` header, and
filters on each message's ``ts`` (epoch seconds) with ``oldest`` (inclusive) and ``latest``
(exclusive), both whole epoch seconds. Like Slack, a bad parameter is not a 4xx: the answer
is a 200 whose body says ``{"ok": false, "error": "<code>"}``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from .data import _rng
from .models import IncomingRequest, Response

VENDOR = "chat"
RESOURCE = "messages"
PATH = "/v1/messages"
#: the first message's time; one every 5 hours after it
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFAULT_LIMIT = 20


def build_rows() -> list[dict]:
    """43 messages, oldest first, 5 hours apart from 2026-01-01T00:00:00Z."""
    rng = _rng(VENDOR, RESOURCE)
    return [
        {
            "id": f"msg-{i + 1:04d}",
            "ts": int((START + timedelta(hours=5 * i)).timestamp()),
            "user": f"U{rng.randint(100, 999)}",
            "channel": ("general", "random", "support")[i % 3],
            "text": f"message {i + 1}: ticket ORD-{4000 + i} is {('open', 'done')[i % 2]}",
        }
        for i in range(43)
    ]


def _failed(error: str) -> Response:
    return Response(200, {"ok": False, "error": error})


def _epoch(request: IncomingRequest, name: str) -> int | Response | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    return int(raw) if raw.isdigit() else _failed(f"invalid_ts_{name}")


def answer(request: IncomingRequest, rows: list[dict], host: str) -> Response:
    """One page of ``rows`` (filtered by ``oldest``/``latest``) with its ``Link`` header."""
    oldest, latest = _epoch(request, "oldest"), _epoch(request, "latest")
    for bound in (oldest, latest):
        if isinstance(bound, Response):
            return bound
    offset, limit = request.query.get("offset", "0"), request.query.get("limit", "")
    if not offset.isdigit() or not (limit or str(DEFAULT_LIMIT)).isdigit():
        return _failed("invalid_paging")
    start, size = int(offset), max(1, min(int(limit or DEFAULT_LIMIT), 200))
    chosen = [
        r
        for r in rows
        if (oldest is None or r["ts"] >= oldest) and (latest is None or r["ts"] < latest)
    ]
    headers = {}
    if start + size < len(chosen):
        query = {**request.query, "offset": str(start + size), "limit": str(size)}
        headers["Link"] = f'<http://{host}/{VENDOR}{PATH}?{urlencode(query)}>; rel="next"'
    return Response(200, {"ok": True, "messages": chosen[start : start + size]}, headers)
