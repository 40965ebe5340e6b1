"""`endpoint.response_format`: JSON Lines and CSV bodies read into the list of records.

dlt's `RESTClient` reads every page through `response.json()`. restsync's session
(`runtime.http.session`) parses each successful body once and keeps the parse as
`response.json()`; for a `jsonl` or `csv` resource that parse is the list of records a
`BodyReader` returns, so dlt's paginators, data selection and everything after them see an
ordinary JSON list. Bodies are decompressed first when the URL path ends in `.gz` (requests
already decodes `Content-Encoding: gzip`).

CSV: the first line names the fields; an empty field is null (CSV has no other null). Values
are typed by the resource's declared `schema` (a column renamed by `rename_fields` is typed
by the name it gets); undeclared fields stay strings, as dlt keeps them: dlt does not read
numbers out of strings, but it does type ISO 8601 timestamp strings as timestamps. A value
that does not parse as its declared type is left as the string, for dlt's own coercion (and
its error) to decide.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any
from urllib.parse import urlsplit

import orjson

from restsync_assets.specs.model import ResourceSpec

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None


#: how a CSV string becomes a value of a declared column type (others stay strings)
_PARSERS: dict[str, Callable[[str], Any]] = {
    "bigint": int,
    "double": float,
    "bool": _bool,
    "decimal": _decimal,
    "json": json.loads,
}


def gunzipped(content: bytes, url: str) -> bytes:
    """`content`, decompressed when the URL's path ends in `.gz` and it is gzip data."""
    if urlsplit(url or "").path.endswith(".gz") and content[:2] == b"\x1f\x8b":
        return gzip.decompress(content)
    return content


@dataclass(frozen=True)
class BodyReader:
    """Reads one resource's response bodies into records (`format` json, jsonl or csv)."""

    format: str
    #: CSV field name -> declared dlt type
    types: Mapping[str, str]

    def __call__(self, content: bytes, url: str) -> Any:
        """The parsed body; raises `ValueError` when it is not in the format."""
        return FORMAT_READERS[self.format].body(gunzipped(content, url), self.types)


def body_reader(resource: ResourceSpec) -> BodyReader | None:
    """The resource's reader; None for plain JSON (the session's own parse)."""
    if resource.response_format == "json" and not resource.endpoint["path"].endswith(".gz"):
        return None
    types = {c.name: c.data_type for c in resource.columns}
    renames = resource.transforms.rename_fields if resource.transforms else {}
    for old, new in renames.items():
        if new in types:
            types.setdefault(old, types[new])
    return BodyReader(resource.response_format, types)


def read_jsonl(content: bytes) -> list[Any]:
    """One JSON value per non-blank line."""
    records = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as error:
            raise ValueError(f"line {number} is not JSON: {error}") from None
    return records


def read_csv(content: bytes, types: Mapping[str, str]) -> list[dict[str, Any]]:
    """The rows of a CSV body with a header line, typed by `types`."""
    text = content.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    parsers = {name: _PARSERS[kind] for name, kind in types.items() if kind in _PARSERS}
    records = []
    try:
        rows = list(reader)
    except csv.Error as error:
        raise ValueError(f"not CSV: {error}") from None
    for row in rows:
        if None in row:
            raise ValueError(f"line {reader.line_num} has more fields than the header")
        records.append({k: _value(v, parsers.get(k)) for k, v in row.items()})
    return records


def iter_csv(lines: Iterable[str], types: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """The rows of a CSV text read line by line (a file of any size), typed by `types`;
    raises `ValueError` on a malformed line."""
    reader = csv.DictReader(lines)
    parsers = {name: _PARSERS[kind] for name, kind in types.items() if kind in _PARSERS}
    try:
        for row in reader:
            if None in row:
                raise ValueError(f"line {reader.line_num} has more fields than the header")
            yield {k: _value(v, parsers.get(k)) for k, v in row.items()}
    except csv.Error as error:
        raise ValueError(f"line {reader.line_num} is not CSV: {error}") from None


def iter_jsonl(lines: Iterable[bytes]) -> Iterator[Any]:
    """One JSON value per non-blank line, read line by line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise ValueError(f"line {number} is not JSON: {error}") from None


def _value(text: str | None, parse: Callable[[str], Any] | None) -> Any:
    if text is None or text == "":
        return None
    if parse is None:
        return text
    try:
        return parse(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class FormatReader:
    """How one `response_format` is read: a body in memory, and a file as it streams."""

    #: a whole body (one page) and the declared column types -> its records (for `json`, the
    #: parsed document, which dlt's `data_selector` then reads)
    body: Callable[[bytes, Mapping[str, str]], Any]
    #: a file of any size, read record by record; None: the file is read whole by `body`
    stream: Callable[[IO[bytes], Mapping[str, str]], Iterator[Any]] | None = None


def _csv_stream(stream: IO[bytes], types: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    return iter_csv(io.TextIOWrapper(stream, "utf-8-sig", newline=""), types)


#: The reader of each `response_format` (`endpoint.response_format` and an async job's
#: `download.response_format`): the one registry of response formats (a new one is a value
#: of the `ResponseFormat` literal and an entry here).
FORMAT_READERS: dict[str, FormatReader] = {
    "json": FormatReader(lambda content, types: orjson.loads(content)),
    "jsonl": FormatReader(lambda content, types: read_jsonl(content), lambda s, t: iter_jsonl(s)),
    "csv": FormatReader(read_csv, _csv_stream),
}
