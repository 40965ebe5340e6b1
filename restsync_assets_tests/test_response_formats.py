"""`endpoint.response_format`: JSON Lines and CSV bodies, plain or gzipped, with offset,
page-number and header-link paging, loaded through Dagster into DuckDB and compared with the
sandbox's rows; the key's validation; the readers' typing."""

from __future__ import annotations

import gzip
from decimal import Decimal

import pytest

from restsync_assets.runtime.response_formats import BodyReader, read_csv, read_jsonl
from restsync_assets.sandbox.exports import EVENT_FIELDS, EVENT_SCHEMA
from restsync_assets.specs import load_spec_file
from restsync_assets.specs.errors import SpecError

from .support import canonical, failure_message, materialize_specs, refusal, table, write_spec

PAGE = 100
#: how each paging style of the sandbox is read: (URL segment, paginator, params)
PAGING = {
    "offset": ("offset", {"type": "offset", "limit": PAGE, "total_path": None}, {}),
    "page": (
        "page",
        {"type": "page_number", "base_page": 1, "page_param": "page", "total_path": None},
        {"per_page": PAGE},
    ),
    "link": ("link", "header_link", {"per_page": PAGE}),
}
#: (resource, format, paging, path suffix, declared schema): one resource each, one spec
CASES = [
    ("csv_offset", "csv", "offset", "", True),
    ("csv_page", "csv", "page", "", True),
    ("csv_link", "csv", "link", "", True),
    ("csv_untyped_content_encoding_link", "csv", "link", "encoded", False),
    ("jsonl_offset", "jsonl", "offset", "", False),
    ("jsonl_page", "jsonl", "page", "", True),
    ("jsonl_link", "jsonl", "link", "", False),
    ("csv_gz_file_offset", "csv", "offset", ".gz", True),
    ("jsonl_gz_file_link", "jsonl", "link", ".gz", False),
    ("csv_content_encoding_page", "csv", "page", "encoded", True),
    ("jsonl_content_encoding_offset", "jsonl", "offset", "encoded", False),
    ("json_gz_file_page", "json", "page", ".gz", False),
]


def _resource(name: str, fmt: str, paging: str, suffix: str, typed: bool) -> dict:
    segment, paginator, params = PAGING[paging]
    encoded = "encoded/" if suffix == "encoded" else ""
    gz = suffix if suffix == ".gz" else ""
    endpoint = {
        "path": f"v1/{segment}/{encoded}events.{fmt}{gz}",
        "paginator": paginator,
        "response_format": fmt,
    }
    if params:
        endpoint["params"] = params
    if fmt == "json":
        endpoint.pop("response_format")  # the default
    resource = {"name": name, "primary_key": "id", "endpoint": endpoint}
    if typed:
        resource["schema"] = EVENT_SCHEMA
    return resource


def _as_csv_leaves_it(row: dict) -> dict:
    """An event as an untyped CSV lands: strings (an ISO timestamp typed by dlt), null for
    empty fields."""
    out = {}
    for key, value in row.items():
        if value is None or key == "created_at":
            out[key] = value
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


def test_every_format_and_paging_lands_the_sandbox_rows(sandbox, specs_dir):
    """Each case is one resource of one spec read from the sandbox's `exports` feed; every
    table holds exactly the sandbox's events (CSV typed by `schema`, else left as strings)."""
    spec = {
        "name": "exports",
        "client": {"base_url": f"{sandbox.url}/exports"},
        "resource_defaults": {"write_disposition": "replace"},
        "resources": [_resource(*case) for case in CASES],
    }
    write_spec(specs_dir, spec)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    truth = sandbox.rows("exports", "events")
    for name, fmt, _paging, _suffix, typed in CASES:
        expected = truth if fmt != "csv" or typed else [_as_csv_leaves_it(r) for r in truth]
        landed = table("exports", name)
        assert landed is not None, f"{name}: no table"
        assert landed == canonical(expected), f"{name}: rows differ from the sandbox's"


def test_the_sandbox_serves_every_field_in_the_csv_header(sandbox):
    """The CSV header lists each event field once, in the feed's order."""
    import requests

    body = requests.get(f"{sandbox.url}/exports/v1/offset/events.csv?limit=1", timeout=10)
    assert body.text.splitlines()[0].split(",") == list(EVENT_FIELDS)


READS = [
    (
        "csv typed by declared types, empty is null, undeclared stays a string",
        "csv",
        b"id,ok,n,price,note\n1,true,2.5,3.10,\n2,no,,x,hi\n",
        {"id": "bigint", "ok": "bool", "n": "double", "price": "decimal"},
        [
            {"id": 1, "ok": True, "n": 2.5, "price": Decimal("3.10"), "note": None},
            {"id": 2, "ok": False, "n": None, "price": "x", "note": "hi"},
        ],
    ),
    ("csv with only a header", "csv", b"id,name\n", {}, []),
    (
        "csv with a BOM and quotes",
        "csv",
        b'\xef\xbb\xbfid,name\n1,"a, b"\n',
        {},
        [{"id": "1", "name": "a, b"}],
    ),
    ("jsonl skips blank lines", "jsonl", b'{"a": 1}\n\n{"a": [2]}\n', {}, [{"a": 1}, {"a": [2]}]),
    ("empty jsonl", "jsonl", b"", {}, []),
]


@pytest.mark.parametrize(
    ("case", "fmt", "body", "types", "expected"), READS, ids=[c[0] for c in READS]
)
def test_readers_turn_bodies_into_records(case, fmt, body, types, expected):
    assert BodyReader(fmt, types)(body, "http://h/x") == expected
    gz_url = "http://h/x.gz?page=2"
    assert BodyReader(fmt, types)(gzip.compress(body), gz_url) == expected, "a .gz file"


@pytest.mark.parametrize(
    ("reader", "body"),
    [(read_jsonl, b'{"a": 1}\nnot json\n'), (read_csv, b"a,b\n1,2,3\n")],
    ids=["jsonl line that is not JSON", "csv row longer than the header"],
)
def test_bodies_not_in_the_format_are_refused(reader, body):
    with pytest.raises(ValueError):
        reader(body, {}) if reader is read_csv else reader(body)


def _spec(**endpoint) -> dict:
    return {
        "name": "shop",
        "client": {"base_url": "https://api.example.com"},
        "resources": [{"name": "events", "endpoint": {"path": "v1/events", **endpoint}}],
    }


VALID = [
    ("csv with offset", {"response_format": "csv", "paginator": {"type": "offset", "limit": 10}}),
    ("jsonl with header_link", {"response_format": "jsonl", "paginator": "header_link"}),
    (
        "csv with page_number without a total",
        {"response_format": "csv", "paginator": {"type": "page_number", "total_path": None}},
    ),
    ("json explicit", {"response_format": "json", "data_selector": "data"}),
    ("csv without a paginator", {"response_format": "csv"}),
    (
        "jsonl with a header cursor template",
        {
            "response_format": "jsonl",
            "paginator": {
                "type": "cursor",
                "cursor_value": "{{ headers.get('X-Next') }}",
                "cursor_param": "c",
            },
        },
    ),
    (
        "jsonl with a header cursor whose text names a response header",
        {
            "response_format": "jsonl",
            "paginator": {
                "type": "cursor",
                "cursor_value": "{{ headers.get('x-response-cursor') }}",
                "stop_condition": "{{ headers.get('x-response-done') == 'yes' }}",
                "cursor_param": "c",
            },
        },
    ),
]
INVALID = [
    (
        "unknown format",
        {"response_format": "xml"},
        "endpoint.response_format: unknown response format 'xml'; allowed: csv, json, jsonl",
    ),
    (
        "data_selector with csv",
        {"response_format": "csv", "data_selector": "data"},
        "endpoint.data_selector: a csv body is a list of records: data_selector does not apply to it",
    ),
    (
        "json_link with jsonl",
        {"response_format": "jsonl", "paginator": {"type": "json_link", "next_url_path": "next"}},
        "endpoint.paginator: json_link reads the response body as JSON; with response_format"
        " jsonl use offset, page_number, header_link, header_cursor or single_page",
    ),
    (
        "page_number with a total and csv",
        {"response_format": "csv", "paginator": {"type": "page_number"}},
        "endpoint.paginator: page_number reads a total from the body; set total_path: null so"
        " it stops on an empty page; with response_format csv use offset, page_number,"
        " header_link, header_cursor or single_page",
    ),
    (
        "templated cursor reading the body with csv",
        {
            "response_format": "csv",
            "paginator": {"type": "cursor", "cursor_value": "{{ response.next }}"},
        },
        "endpoint.paginator: this cursor paginator reads the response body, which is not JSON;"
        " with response_format csv use offset, page_number, header_link, header_cursor or"
        " single_page",
    ),
]


def test_resources_of_one_path_share_its_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = _spec(response_format="csv")
    spec["resources"].append(
        {"name": "events_again", "endpoint": {"path": "/v1/events/", "response_format": "jsonl"}}
    )
    with pytest.raises(SpecError) as caught:
        load_spec_file(write_spec(tmp_path, spec))
    assert str(caught.value) == (
        "shop.yaml: resource 'events_again': endpoint.response_format: jsonl, but resource"
        " 'events' reads the same path as csv; resources of one path share its format"
    )


@pytest.mark.parametrize(("case", "endpoint"), VALID, ids=[c[0] for c in VALID])
def test_valid_response_formats_load(tmp_path, case, endpoint):
    spec = load_spec_file(write_spec(tmp_path, _spec(**endpoint)))
    assert spec.resources[0].response_format == endpoint.get("response_format", "json")
    assert "response_format" not in spec.resources[0].endpoint, "restsync's key, not dlt's"


@pytest.mark.parametrize(("case", "endpoint", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_response_formats_give_one_line(tmp_path, monkeypatch, case, endpoint, expected):
    monkeypatch.chdir(tmp_path)
    assert refusal(tmp_path, _spec(**endpoint)) == f"shop.yaml: resource 'events': {expected}"
