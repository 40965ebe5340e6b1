"""The `exports` vendor: the same event records as JSON, JSON Lines and CSV, plain or gzipped.

Served beside the seed APIs under ``/exports`` without credentials (a public export feed),
for `endpoint.response_format` and the record transforms; none of the seed specs reads it.

* ``/v1/batches`` - five batches, JSON ``{"data": [...]}``, one page (``?region=`` only
  that region's);
* ``/v1/batches/{batch_id}/events`` - a batch's events, JSON ``{"data": [...]}``, paged by
  ``offset``/``limit`` (no total);
* ``/v1/{paging}/events.{fmt}`` - every event, ``fmt`` one of ``json`` (a bare list),
  ``jsonl``, ``csv``; ``/v1/{paging}/readings.{fmt}`` likewise every sensor reading, some of
  which break the schema a reading declares (`READING_SCHEMA`: a missing or null or
  non-integer ``id``, a null, missing, non-numeric or object ``value``, a ``taken_at`` that is
  no time), for ``on_invalid: quarantine``; ``paging`` one of ``offset`` (``offset``/``limit``, a short or empty
  page ends), ``page`` (``page`` from 1 and ``per_page``, an empty page ends) and ``link``
  (``page``/``per_page`` with an RFC 8288 ``Link: <...>; rel="next"`` header while more rows
  follow), and ``header`` (request headers only: ``X-Page-Size`` rows from the token in
  ``X-Page-Token``, the next token in the answer's ``X-Next-Page-Token`` header while more
  rows follow), ``header-offset`` (``X-Limit`` rows, default 100, from the offset in
  ``X-Offset``, default 0; a short or empty page ends) and ``header-page`` (``X-Per-Page``
  rows, default 100, of the page in ``X-Page`` from 1, default 1; a short or empty page
  ends). A ``.gz`` suffix serves the body as a gzip file; ``/v1/{paging}/encoded/...``
  serves it with ``Content-Encoding: gzip``;
* ``/v1/parts/{resource}-{n}.{fmt}`` (``.gz`` too) - an export in numbered files of
  ``per_page`` rows (default 100): part ``n`` links the next part, a path of its own, with
  ``Link: <.../{resource}-{n+1}.{fmt}>; rel="next"`` while more rows follow.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from urllib.parse import urlencode

from .data import _rng, _stamp
from .models import ApiError, IncomingRequest, Response
from .routes import int_param

NAME = "exports"
RESOURCES: dict[str, tuple[str, ...]] = {NAME: ("batches", "events", "readings")}
#: the CSV header: every event field, in this order
EVENT_FIELDS = (
    "id",
    "batch_id",
    "name",
    "status",
    "amount",
    "quantity",
    "active",
    "created_at",
    "internal_notes",
    "old_name",
)
#: what an events spec declares: its CSV values are typed by it (`id` is its primary key)
EVENT_SCHEMA = {
    "id": {"type": "integer", "nullable": False},
    "batch_id": "integer",
    "amount": "number",
    "quantity": "integer",
    "active": "boolean",
    "created_at": "timestamp",
}
#: the CSV header of a reading
READING_FIELDS = ("id", "sensor", "status", "value", "unit", "taken_at", "note")
#: what a reading's spec declares (`id` is its primary key); the rows `BROKEN` changes break it
READING_SCHEMA = {
    "id": "integer",
    "value": {"type": "number", "nullable": False},
    "taken_at": "date-time",
}
EVENTS = 250
#: the largest offset, page or page size a query may give
MAX_QUERY_INT = 10**9
BATCHES = 5
READINGS = 140
#: reading index -> how that reading breaks `READING_SCHEMA` (a missing field: `MISSING`), or
#: is good only after dlt's coercion (a string id and value)
MISSING = object()
BROKEN: dict[int, dict[str, object]] = {
    10: {"id": MISSING},
    12: {"value": None},  # a `retired` reading
    25: {"id": None},
    40: {"value": None},
    55: {"value": MISSING},
    70: {"value": "n/a"},
    85: {"taken_at": "yesterday"},
    100: {"id": "r-101"},
    115: {"value": {"celsius": 3}},
    130: {"id": "131", "value": "21.5"},  # coercible: a good row
}
_FEED = re.compile(
    r"^/v1/(?P<paging>offset|page|link|header|header-offset|header-page)/(?P<encoded>encoded/)?(?P<resource>events|readings)"
    r"\.(?P<fmt>json|jsonl|csv)(?P<gz>\.gz)?$"
)
_PART = re.compile(
    r"^/v1/parts/(?P<resource>events|readings)-(?P<part>[1-9][0-9]*)"
    r"\.(?P<fmt>json|jsonl|csv)(?P<gz>\.gz)?$"
)
_CHILD = re.compile(r"^/v1/batches/(?P<batch_id>[^/]+)/events$")
_CONTENT_TYPES = {"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv"}


def _events() -> list[dict]:
    rng = _rng(NAME, "events")
    return [
        {
            "id": i + 1,
            "batch_id": i % BATCHES + 1,
            "name": f"Event {i + 1}",
            "status": ("open", "closed", "archived", "open")[i % 4],
            "amount": round(rng.uniform(1, 5_000), 2),
            "quantity": rng.randint(0, 40),
            "active": i % 3 != 0,
            "created_at": _stamp(i, 5),
            "internal_notes": None if i % 4 else f"note {i + 1}",
            "old_name": f"legacy-{i + 1:04d}",
        }
        for i in range(EVENTS)
    ]


def _readings() -> list[dict]:
    rng = _rng(NAME, "readings")
    rows = []
    for i in range(READINGS):
        row = {
            "id": i + 1,
            "sensor": f"S{i % 7 + 1}",
            "status": ("ok", "ok", "retired", "ok", "drift")[i % 5],
            "value": round(rng.uniform(-20, 40), 2),
            "unit": "C",
            "taken_at": _stamp(i, 1),
            "note": None if i % 3 else f"check {i + 1}",
        }
        for field, value in BROKEN.get(i, {}).items():
            if value is MISSING:
                del row[field]
            else:
                row[field] = value
        rows.append(row)
    return rows


def _batches() -> list[dict]:
    regions = ("eu", "us", "apac", "eu", "latam")
    return [{"id": b + 1, "label": f"Batch {b + 1}", "region": regions[b]} for b in range(BATCHES)]


def build_dataset() -> dict[str, dict[str, list[dict]]]:
    return {NAME: {"batches": _batches(), "events": _events(), "readings": _readings()}}


def _int(query: dict[str, str], name: str, default: int, low: int) -> int:
    return int_param(query, name, default, low, MAX_QUERY_INT)


def resource_for(subpath: str) -> str | None:
    """The resource a path under ``/exports`` serves (None: no such path), for faults."""
    if subpath == "/v1/batches":
        return "batches"
    if _CHILD.match(subpath):
        return "events"
    match = _FEED.match(subpath) or _PART.match(subpath)
    return match["resource"] if match else None


def render(request: IncomingRequest, subpath: str, data: dict[str, list[dict]]) -> Response:
    """Answer a GET under ``/exports`` from ``data`` (the vendor's rows)."""
    if request.method != "GET":
        raise ApiError(405, "method_not_allowed", "use GET", {"Allow": "GET"})
    if subpath == "/v1/batches":
        request.resource = "batches"
        region = request.query.get("region")
        rows = [b for b in data["batches"] if region is None or b["region"] == region]
        return Response(200, {"data": rows})
    request.resource = "events"
    if child := _CHILD.match(subpath):
        rows = [r for r in data["events"] if str(r["batch_id"]) == child["batch_id"]]
        offset = _int(request.query, "offset", 0, 0)
        return Response(200, {"data": rows[offset : offset + _int(request.query, "limit", 100, 1)]})
    match = _FEED.match(subpath) or _PART.match(subpath)
    if match is None:
        raise ApiError(404, "not_found", f"no route for {request.path}")
    feed = match.groupdict()
    request.resource = feed["resource"]
    if "part" in feed:
        rows, headers = _part(int(feed["part"]), data[feed["resource"]], request)
    else:
        rows, headers = _page(feed["paging"], data[feed["resource"]], request)
    fields = READING_FIELDS if feed["resource"] == "readings" else EVENT_FIELDS
    body = serialize(rows, feed["fmt"], fields)
    content_type = _CONTENT_TYPES[feed["fmt"]]
    if feed["gz"]:
        body, content_type = gzip.compress(body), "application/gzip"
    elif feed.get("encoded"):
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    return Response(200, None, headers, raw=body, content_type=content_type)


def _page(paging: str, rows: list[dict], request: IncomingRequest) -> tuple[list, dict]:
    query = request.query
    if paging == "header":
        return _header_page(rows, request)
    sent = request.headers
    if paging == "header-offset":
        offset = _int(sent, "x-offset", 0, 0)
        return rows[offset : offset + _int(sent, "x-limit", 100, 1)], {}
    if paging == "header-page":
        page, size = _int(sent, "x-page", 1, 1), _int(sent, "x-per-page", 100, 1)
        return rows[(page - 1) * size : page * size], {}
    if paging == "offset":
        offset = _int(query, "offset", 0, 0)
        return rows[offset : offset + _int(query, "limit", 100, 1)], {}
    page, size = _int(query, "page", 1, 1), _int(query, "per_page", 100, 1)
    selected = rows[(page - 1) * size : page * size]
    headers = {}
    if paging == "link" and page * size < len(rows):
        host = request.headers.get("host", "127.0.0.1")
        following = urlencode({**query, "page": page + 1})
        headers["Link"] = f'<http://{host}{request.path}?{following}>; rel="next"'
    return selected, headers


#: the `header` paging's token of the page starting at row `n` (opaque to clients)
HEADER_TOKEN = "after-{}"


def _header_page(rows: list[dict], request: IncomingRequest) -> tuple[list, dict]:
    """A page chosen by request headers only; the next page's token in a response header."""
    size = _int(request.headers, "x-page-size", 100, 1)
    token = request.headers.get("x-page-token")
    start = 0
    if token is not None:
        match = re.fullmatch(r"after-(\d{1,9})", token)
        if match is None:
            raise ApiError(400, "bad_token", f"unknown page token {token!r}")
        start = int(match.group(1))
    headers = {}
    if start + size < len(rows):
        headers["X-Next-Page-Token"] = HEADER_TOKEN.format(start + size)
    return rows[start : start + size], headers


def _part(part: int, rows: list[dict], request: IncomingRequest) -> tuple[list, dict]:
    """The rows of export part `part` and a `Link` to the next part (another path) if any."""
    size = _int(request.query, "per_page", 100, 1)
    headers = {}
    if part * size < len(rows):
        host = request.headers.get("host", "127.0.0.1")
        following = request.path.replace(f"-{part}.", f"-{part + 1}.", 1)
        query = f"?{urlencode(request.query)}" if request.query else ""
        headers["Link"] = f'<http://{host}{following}{query}>; rel="next"'
    return rows[(part - 1) * size : part * size], headers


def serialize(rows: list[dict], fmt: str, fields: tuple[str, ...] = EVENT_FIELDS) -> bytes:
    """``rows`` as a JSON list, JSON Lines, or CSV with the header ``fields`` (null or missing
    as an empty field)."""
    if fmt == "json":
        return json.dumps(rows).encode()
    if fmt == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in rows).encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_csv_value(row.get(f)) for f in fields])
    return out.getvalue().encode()


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
