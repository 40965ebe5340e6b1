"""`restsync import airbyte`: our own Airbyte manifests of the sandbox's APIs
(`restsync_assets_tests/airbyte/*.yaml`, written for these tests) imported, loaded through
Dagster's materialize into DuckDB, and compared with the sandbox's truth and with what
Airbyte's own CDK reads from the same sandbox."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from restsync_assets.cli import main
from restsync_assets.importers.airbyte import import_manifest
from restsync_assets.sandbox import VENDORS, Sandbox, exports, reports

from .real_servers import unavailable
from .support import assert_table_is, failure_message, materialize_specs, table, table_rows

MANIFESTS = Path(__file__).parent / "airbyte"
CDK_READER = Path(__file__).parent / "airbyte_cdk_read.py"
AIRBYTE_PYTHON = "RESTSYNC_AIRBYTE_PYTHON"
START = "2000-01-01T00:00:00Z"


def _accounts(rows: list[dict]) -> list[dict]:
    """The manifest's filter and transformations applied to the sandbox's accounts."""
    out = []
    for row in rows:
        if row["status"] == "CANCELED":
            continue
        budget = row["total_budget"]
        band = "none" if budget is None else ("large" if budget > 25000 else "small")
        kept = {k: v for k, v in row.items() if k != "reference"}
        out.append({**kept, "synced_from": "ad_analytics", "budget_band": band})
    return out


def _same(rows: list[dict]) -> list[dict]:
    return rows


def _as_csv(rows: list[dict]) -> list[dict]:
    """Rows as a CSV body gives them: every value text, an empty field null."""
    text = {True: "true", False: "false"}
    return [
        {
            k: None if v is None else text.get(v, str(v)) if isinstance(v, bool) else str(v)
            for k, v in r.items()
        }
        for r in rows
    ]


def _snake_keys(rows: list[dict]) -> list[dict]:
    """The events_snake_keys stream's transformations applied to the sandbox's events: a
    field added, an `archived` status removed (a null in the table), `_` replaced by `Of`,
    keys in snake case."""
    renamed = {
        "batch_id": "batch_ofid",
        "created_at": "created_ofat",
        "internal_notes": "internal_ofnotes",
        "old_name": "old_ofname",
    }
    return [
        {
            **{renamed.get(k, k): None if v == "archived" else v for k, v in row.items()},
            "source_feed": "exports",
        }
        for row in rows
    ]


def _lower_keys(rows: list[dict]) -> list[dict]:
    """The events_lower_keys stream's: `_` replaced by `X`, keys in lower case."""
    return [{k.replace("_", "X").lower(): v for k, v in row.items()} for row in rows]


#: the regions the manifest's ListPartitionRouter lists, and each sandbox batch's region
REGIONS = ("eu", "apac")
BATCH_REGIONS = {b["id"]: b["region"] for b in exports.build_dataset()["exports"]["batches"]}


def _regional_batches(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["region"] in REGIONS]


def _regional_events(rows: list[dict]) -> list[dict]:
    """The events of the listed regions' batches, each with its batch's region."""
    return [
        {**r, "batch_region": BATCH_REGIONS[r["batch_id"]]}
        for r in rows
        if BATCH_REGIONS[r["batch_id"]] in REGIONS
    ]


#: manifest -> {stream: (sandbox resource, the stream's rows from the sandbox's)}
STREAMS: dict[str, dict[str, tuple[str, Callable[[list[dict]], list[dict]]]]] = {
    "ledger": {"ledger_records": ("resource_name", _same)},
    "ad_analytics": {
        "accounts": ("accounts", _accounts),
        "account_users": ("account_users", _same),
        "ad_campaign_analytics": ("ad_campaign_analytics", _same),
    },
    "marketing_api": {
        "organizations": ("organizations", _same),
        "adaccounts": ("adaccounts", _same),
        "ads": ("ads", lambda rows: [{**r, "adaccount_ref": r["adaccount_id"]} for r in rows]),
    },
    "native_ads": {
        "accounts": ("accounts", _same),
        "campaigns": ("campaigns", _same),
        "campaign_items": ("campaign_items", _same),
    },
    "helpdesk": {"tickets": ("tickets", _same)},
    "crm": {"contacts": ("contacts", _same)},
    "weather": {"stations": ("stations", _same)},
    "billing": {"invoices": ("invoices", _same)},
    "kiosk": {"orders": ("orders", _same)},
    "exports": {
        "batches": ("batches", _same),
        "batch_events": ("events", _same),
        "regional_batches": ("batches", _regional_batches),
        "regional_batch_events": ("events", _regional_events),
        "events_jsonl": ("events", _same),
        "events_csv": ("events", _as_csv),
        "events_paged": ("events", _same),
        "events_linked": ("events", _same),
        "events_header_paged": ("events", _same),
        "events_offset_header": ("events", _same),
        "events_page_header": ("events", _same),
        "events_snake_keys": ("events", _snake_keys),
        "events_lower_keys": ("events", _lower_keys),
        "events_gzipped": ("events", _same),
    },
}
#: the sandbox's public feed: no credentials, not one of `Sandbox.base_url`'s specs
PUBLIC = "exports"


def _config(sandbox, spec: str) -> dict:
    """The connector config a user would write for the sandbox's `spec` (secrets included)."""
    if spec == PUBLIC:
        return {"base_url": f"{sandbox.url}/{PUBLIC}"}
    if spec in VENDORS:
        return {
            "base_url": sandbox.base_url(spec),
            "auth_method": "query",
            **sandbox.credentials(spec),
        }
    return {
        "base_url": sandbox.base_url(spec),
        "token_url": sandbox.token_url(spec),
        **sandbox.credentials(spec),
        "start_date": START if spec == "ledger" else "2026-01-01",
        "label": "ad_analytics",
    }


def _import(tmp_path: Path, out: Path, sandbox, spec: str, capsys, monkeypatch=None) -> str:
    """Import `spec`'s manifest into `out`; with `monkeypatch`, export the env vars it reads."""
    for key, value in sandbox.env([spec]).items() if monkeypatch and spec != PUBLIC else ():
        monkeypatch.setenv(key, value)
    config = tmp_path / f"{spec}.config.json"
    config.write_text(json.dumps(_config(sandbox, spec)))
    argv = ["import", "airbyte", str(MANIFESTS / f"{spec}.yaml"), "--config", str(config)]
    code = main([*argv, "--name", spec, "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    return printed


def _assert_loaded(spec: str, truth: dict[str, list[dict]]) -> None:
    for stream, rows in truth.items():
        assert_table_is(table_rows(spec, stream), rows)


@pytest.mark.parametrize("spec", sorted(STREAMS))
def test_an_imported_manifest_loads_the_sandbox_rows(
    spec, tmp_path, specs_dir, sandbox_env, capsys, monkeypatch
):
    """Each manifest imports every stream, passes `restsync validate` with no secret value in
    the YAML, and one Dagster materialization loads exactly the sandbox's rows (transforms
    applied) into each table."""
    printed = _import(tmp_path, specs_dir, sandbox_env, spec, capsys, monkeypatch)
    assert "dropped" not in printed
    assert "reads " in printed or spec == PUBLIC
    assert main(["validate", str(specs_dir)]) == 0
    text = (specs_dir / f"{spec}.yaml").read_text()
    baked = ("client_id", "username")  # not airbyte_secret in the manifests: baked or env vars
    credentials = {} if spec == PUBLIC else sandbox_env.credentials(spec)
    secrets = [v for k, v in credentials.items() if k not in baked]
    assert [s for s in secrets if s in text] == []
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    truth = {
        stream: shape(sandbox_env.rows(spec, resource))
        for stream, (resource, shape) in STREAMS[spec].items()
    }
    _assert_loaded(spec, truth)
    if spec == "ad_analytics":
        assert all("reference" not in row for row in table_rows(spec, "accounts").values())


def test_an_incremental_manifest_asks_only_for_new_rows_on_the_second_run(
    tmp_path, specs_dir, sandbox_env, capsys
):
    """The DatetimeBasedCursor becomes dlt's incremental: the second run sends
    `updated_since` = the newest `updated_at` loaded, and a changed row is merged."""
    _import(tmp_path, specs_dir, sandbox_env, "ledger", capsys)
    assert materialize_specs(specs_dir).success
    first = [r for r in sandbox_env.requests if r.path == "/ledger/v1/resource"]
    assert {r.query.get("updated_since") for r in first} == {START}
    newest = max(r["updated_at"] for r in sandbox_env.rows("ledger", "resource_name"))
    changed = {
        **sandbox_env.rows("ledger", "resource_name")[0],
        "name": "changed",
        "updated_at": "2026-03-01T00:00:00Z",
    }
    sandbox_env.upsert_row("ledger", "resource_name", changed)
    sandbox_env.clear_requests()
    assert materialize_specs(specs_dir).success
    second = [r for r in sandbox_env.requests if r.path == "/ledger/v1/resource"]
    assert second and {r.query.get("updated_since") for r in second} == {newest}
    _assert_loaded("ledger", {"ledger_records": sandbox_env.rows("ledger", "resource_name")})


def test_the_import_prints_env_vars_and_writes_no_secret(tmp_path, sandbox, capsys):
    """The output names the env vars the spec reads; the YAML holds `{secret: ...}` for
    every `airbyte_secret` field, never a value, and a comment naming manifest and version."""
    printed = _import(tmp_path, tmp_path / "out", sandbox, "ledger", capsys)
    assert printed.splitlines()[-3:] == [
        "reads LEDGER_CLIENT_ID",
        "reads LEDGER_CLIENT_SECRET",
        "reads LEDGER_REFRESH_TOKEN",
    ]
    text = (tmp_path / "out" / "ledger.yaml").read_text()
    assert text.startswith(
        "# Imported by `restsync import airbyte` from the Airbyte manifest ledger.yaml (manifest version 6.0.0)."
    )
    for secret in ("client_secret", "refresh_token"):
        assert sandbox.credentials("ledger")[secret] not in text
    auth = yaml.safe_load(text)["client"]["auth"]
    assert auth["client_secret"] == {"secret": "client_secret"}
    assert auth["refresh_token"] == {"secret": "refresh_token"}


# --------------------------------------------------------------------------- Airbyte's CDK


class CdkRead(NamedTuple):
    """What Airbyte's CDK read: `{manifest: {stream: [record, ...]}}`, and how many requests
    it sent to each sandbox path."""

    records: dict[str, dict[str, list[dict]]]
    requests: Counter[str]


#: manifest -> the sandbox paths restsync asks as often as Airbyte's CDK does (paging that
#: stops where Airbyte's stops: a short page, an empty page, no next token)
SAME_REQUESTS = {
    "exports": tuple(
        f"/exports/v1/{paging}/events.json" for paging in ("header", "header-offset", "header-page")
    )
}


@pytest.fixture(scope="module")
def cdk_records(tmp_path_factory) -> CdkRead:
    """What Airbyte's CDK reads with every manifest from a sandbox of its own (the sandbox's
    data is the same in every instance), and the requests it sent."""
    python = os.environ.get(AIRBYTE_PYTHON)
    if not python:
        unavailable(
            "Airbyte's CDK", f"{AIRBYTE_PYTHON} is not set (a venv's python with airbyte-cdk)"
        )
    folder = tmp_path_factory.mktemp("cdk")
    argv = []
    with Sandbox() as sandbox:
        for spec in STREAMS:
            config = folder / f"{spec}.json"
            config.write_text(json.dumps(_config(sandbox, spec)))
            argv += [str(MANIFESTS / f"{spec}.yaml"), str(config), str(folder / f"{spec}.jsonl")]
        run = subprocess.run(
            [python, str(CDK_READER), *argv], capture_output=True, text=True, timeout=600
        )
        requests = Counter(r.path for r in sandbox.requests)
    assert run.returncode == 0, run.stderr[-2000:]
    records: dict[str, dict[str, list[dict]]] = {}
    for spec in STREAMS:
        for line in (folder / f"{spec}.jsonl").read_text().splitlines():
            message = json.loads(line)
            records.setdefault(spec, {}).setdefault(message["stream"], []).append(message["data"])
    return CdkRead(records, requests)


@pytest.mark.parametrize("spec", sorted(STREAMS))
def test_restsync_loads_the_records_airbytes_cdk_reads(
    spec, cdk_records, tmp_path, specs_dir, sandbox_env, capsys, monkeypatch
):
    """Airbyte's own declarative reader (the CDK, in a venv of its own) reads the manifest from
    a sandbox (`cdk_records`); the imported spec loads the same records from the sandbox,
    field for field, stream by stream, and asks the paths of `SAME_REQUESTS` as often."""
    records = cdk_records.records[spec]
    assert set(records) == set(STREAMS[spec])
    _import(tmp_path, specs_dir, sandbox_env, spec, capsys, monkeypatch)
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    _assert_loaded(spec, records)
    paths = SAME_REQUESTS.get(spec, ())
    asked = Counter(r.path for r in sandbox_env.requests)
    airbyte = {p: cdk_records.requests[p] for p in paths}
    assert all(airbyte.values()), airbyte
    assert {p: asked[p] for p in paths} == airbyte


# --------------------------------------------------------------------------- conversions

BASE = {
    "version": "6.0.0",
    "type": "DeclarativeSource",
    "spec": {
        "connection_specification": {
            "properties": {"api_key": {"type": "string", "airbyte_secret": True}}
        }
    },
}
REQUESTER = {
    "type": "HttpRequester",
    "url_base": "https://api.example.com",
    "path": "/v1/things",
    "authenticator": {"type": "BearerAuthenticator", "api_token": "{{ config['api_key'] }}"},
}


def _stream(name: str, **retriever: object) -> dict:
    return {
        "type": "DeclarativeStream",
        "name": name,
        "primary_key": "id",
        "retriever": {
            "type": "SimpleRetriever",
            "requester": REQUESTER,
            "record_selector": {
                "type": "RecordSelector",
                "extractor": {"type": "DpathExtractor", "field_path": ["data"]},
            },
            **retriever,
        },
    }


def _option(name: str, where: str = "request_parameter") -> dict:
    return {"type": "RequestOption", "inject_into": where, "field_name": name}


def _paginated(strategy: dict, **options: object) -> dict:
    return {"type": "DefaultPaginator", "pagination_strategy": strategy, **options}


#: (stream, the reason it is dropped): each a component restsync cannot express
DROPPED = [
    (
        _stream(
            "custom",
            paginator={
                "type": "DefaultPaginator",
                "pagination_strategy": {
                    "type": "CustomPaginationStrategy",
                    "class_name": "source_x.components.Pager",
                },
            },
        ),
        "custom component source_x.components.Pager (Python code)",
    ),
    (
        _stream(
            "form_offset",
            paginator=_paginated(
                {"type": "OffsetIncrement", "page_size": 10},
                page_token_option=_option("offset", "body_data"),
            ),
        ),
        "OffsetIncrement: the offset in body_data",
    ),
    (
        {
            **_stream("keys_then_add"),
            "transformations": [
                {"type": "KeysToLower"},
                {"type": "AddFields", "fields": [{"path": ["Src"], "value": "api"}]},
            ],
        },
        "AddFields after a transformation that becomes normalize_keys",
    ),
    (
        _stream("jwt", requester={**REQUESTER, "authenticator": {"type": "JwtAuthenticator"}}),
        "authenticator: JwtAuthenticator has no restsync equivalent",
    ),
    (
        _stream(
            "secret_in_path", requester={**REQUESTER, "path": "/v1/{{ config['api_key'] }}/things"}
        ),
        "secret config field",
    ),
    (
        _stream(
            "orphan",
            partition_router={
                "type": "SubstreamPartitionRouter",
                "parent_stream_configs": [
                    {
                        "stream": _stream(
                            "custom", paginator={"type": "CustomPaginator", "class_name": "x.Y"}
                        ),
                        "parent_key": "id",
                        "partition_field": "pid",
                    }
                ],
            },
        ),
        "its parent stream custom is not imported",
    ),
    (
        _stream(
            "two_parents",
            partition_router={
                "type": "SubstreamPartitionRouter",
                "parent_stream_configs": [
                    {"stream": _stream("parents"), "parent_key": "id", "partition_field": "pid"},
                    {"stream": _stream("plain"), "parent_key": "id", "partition_field": "qid"},
                ],
            },
        ),
        "several parent_stream_configs (restsync reads a child from one parent resource",
    ),
]


def test_each_component_restsync_cannot_express_drops_its_stream_with_the_reason(tmp_path, capsys):
    """Custom components, an offset in a form body, JWT auth, a secret inside a template and a child
    of a dropped parent each drop their stream with a `dropped STREAM: reason` line; the
    streams that map are still written, and the spec validates."""
    manifest = {**BASE, "streams": [_stream("plain"), *(s for s, _ in DROPPED)]}
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest))
    assert main(["import", "airbyte", str(path), "--name", "things", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for stream, reason in DROPPED:
        line = next(line for line in lines if line.startswith(f"dropped {stream['name']}: "))
        assert reason in line, line
    spec = yaml.safe_load((tmp_path / "things.yaml").read_text())
    assert [r["name"] for r in spec["resources"]] == ["plain"]
    assert spec["client"]["auth"] == {"type": "bearer", "token": {"secret": "api_key"}}
    assert "reads THINGS_API_KEY" in lines


def test_references_and_parameters_resolve_as_airbyte_resolves_them(tmp_path):
    """`$ref` (merged under sibling keys), `"#/definitions/..."` strings, `$parameters`
    passed down to nested components and `{{ parameters.x }}` inside longer templates."""
    manifest = {
        **BASE,
        "definitions": {
            "requester": {**REQUESTER, "path": "/v1/{{ parameters.kind }}s"},
            "base": _stream("base"),
        },
        "streams": [
            {
                "$ref": "#/definitions/base",
                "name": "widgets",
                "$parameters": {"kind": "widget"},
                "retriever": {**_stream("x")["retriever"], "requester": "#/definitions/requester"},
            },
        ],
    }
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest))
    imported = import_manifest(path, None, "things")
    (resource,) = imported.spec["resources"]
    assert resource["name"] == "widgets"
    assert resource["endpoint"]["path"] == "/v1/widgets"


def test_no_importable_stream_is_one_line_and_exit_1(tmp_path, capsys):
    """A manifest whose every stream drops writes nothing and says so in one line."""
    manifest = {**BASE, "streams": [DROPPED[0][0]]}
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest))
    assert main(["import", "airbyte", str(path), "--name", "things", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().count("\n") == 0
    assert "no stream of" in captured.err
    assert not (tmp_path / "things.yaml").exists()


DOCS_PAGE = Path(__file__).parent.parent / "docs" / "import-airbyte.md"


def test_the_docs_example_writes_the_spec_the_page_shows_and_it_runs(
    tmp_path, capsys, monkeypatch, sandbox, warehouse
):
    """docs/import-airbyte.md: its command, run with the config it describes, writes exactly
    the spec the page shows and prints the lines it shows; then its `restsync validate` and
    `restsync run ledger_airbyte`, with the env vars pointed at the sandbox's ledger, load
    the sandbox's rows."""
    page = DOCS_PAGE.read_text()
    lines = page.splitlines()
    (command,) = [line for line in lines if line.startswith("restsync import airbyte")]
    (run,) = [line for line in lines if line.startswith("restsync run")]
    shown = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = {
        "base_url": "https://ledger.example.com",
        "token_url": "https://ledger.example.com/oauth2/token",
        "client_id": "my-client",
        "client_secret": "my-secret",
        "refresh_token": "my-refresh-token",
        "start_date": START,
    }
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ledger.config.json").write_text(json.dumps(config))
    manifests = tmp_path / "restsync_assets_tests"
    manifests.mkdir()
    (manifests / "airbyte").symlink_to(MANIFESTS)
    assert main(command.split()[1:]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "source_specs" / "ledger_airbyte.yaml").read_text() == shown
    for line in printed.splitlines():
        assert f"    {line}\n" in page, line
    monkeypatch.setenv("RESTSYNC_SPECS_DIR", str(tmp_path / "source_specs"))
    for key, value in sandbox.env(["ledger"]).items():
        monkeypatch.setenv(key.replace("LEDGER_", "LEDGER_AIRBYTE_", 1), value)
    assert main(["validate"]) == 0
    assert main(run.split()[1:]) == 0
    assert_table_is(
        table_rows("ledger_airbyte", "ledger_records"), sandbox.rows("ledger", "resource_name")
    )


PARENT = {**_stream("parents"), "name": "parents"}
#: (case, the stream's changes, what its resource must hold, a note it must print or None)
CONVERSIONS = [
    (
        "cursor pagination over last_record, page size option",
        {
            "paginator": _paginated(
                {
                    "type": "CursorPagination",
                    "cursor_value": "{{ last_record['id'] }}",
                    "stop_condition": "{{ last_page_size < 50 }}",
                    "page_size": 50,
                },
                page_token_option=_option("after"),
                page_size_option=_option("limit"),
            )
        },
        {
            "endpoint": {
                "paginator": {
                    "type": "cursor",
                    "cursor_value": "{{ last_page[-1]['id'] }}",
                    "stop_condition": "{{ (last_page | length) < 50 }}",
                    "cursor_param": "after",
                },
                "params": {"limit": 50},
            }
        },
        None,
    ),
    (
        "cursor pagination with the token and the page size in headers",
        {
            "paginator": _paginated(
                {
                    "type": "CursorPagination",
                    "cursor_value": "{{ headers['X-Next'] }}",
                    "stop_condition": "{{ 'X-Next' not in headers }}",
                    "page_size": 20,
                },
                page_token_option=_option("X-Page-Token", "header"),
                page_size_option=_option("X-Page-Size", "header"),
            )
        },
        {
            "endpoint": {
                "paginator": {
                    "type": "cursor",
                    "cursor_value": "{{ headers['X-Next'] }}",
                    "stop_condition": "{{ 'X-Next' not in headers }}",
                    "cursor_header": "X-Page-Token",
                },
                "headers": {"X-Page-Size": "20"},
            }
        },
        None,
    ),
    (
        "the Link header's next URL",
        {
            "paginator": _paginated(
                {
                    "type": "CursorPagination",
                    "cursor_value": "{{ headers['link']['next']['url'] }}",
                },
                page_token_option={"type": "RequestPath"},
            )
        },
        {"endpoint": {"paginator": {"type": "header_link", "links_next_key": "next"}}},
        None,
    ),
    (
        "page increment",
        {
            "paginator": _paginated(
                {"type": "PageIncrement", "page_size": 25, "start_from_page": 1},
                page_token_option=_option("page"),
                page_size_option=_option("per_page"),
            )
        },
        {
            "endpoint": {
                "paginator": {
                    "type": "page_number",
                    "base_page": 1,
                    "page_param": "page",
                    "total_path": None,
                    "stop_after_empty_page": True,
                },
                "params": {"per_page": 25},
            }
        },
        "empty page",
    ),
    (
        "offset and page size in headers, the offset sent on the first request too",
        {
            "paginator": _paginated(
                {"type": "OffsetIncrement", "page_size": 30, "inject_on_first_request": True},
                page_token_option=_option("X-Offset", "header"),
                page_size_option=_option("X-Limit", "header"),
            )
        },
        {
            "endpoint": {
                "paginator": {
                    "type": "cursor",
                    "cursor_value": "{{ (cursor or 0) | int + (last_page | length) }}",
                    "stop_condition": "{{ (last_page | length) < 30 }}",
                    "cursor_header": "X-Offset",
                    "initial_cursor": 0,
                },
                "headers": {"X-Limit": "30"},
            }
        },
        None,
    ),
    (
        "offset in the query, page size in a header",
        {
            "paginator": _paginated(
                {"type": "OffsetIncrement", "page_size": 30},
                page_token_option=_option("offset"),
                page_size_option=_option("X-Limit", "header"),
            )
        },
        {
            "endpoint": {
                "paginator": {
                    "type": "cursor",
                    "cursor_value": "{{ (cursor or 0) | int + (last_page | length) }}",
                    "stop_condition": "{{ (last_page | length) < 30 }}",
                    "cursor_param": "offset",
                    "initial_cursor": None,
                },
                "headers": {"X-Limit": "30"},
            }
        },
        None,
    ),
    (
        "page number in a header from start_from_page, no page size: an empty page ends",
        {
            "paginator": _paginated(
                {"type": "PageIncrement", "start_from_page": 1},
                page_token_option=_option("X-Page", "header"),
            )
        },
        {
            "endpoint": {
                "paginator": {
                    "type": "cursor",
                    "cursor_value": "{{ (cursor or 1) | int + 1 }}",
                    "stop_condition": "{{ not last_page }}",
                    "cursor_header": "X-Page",
                    "initial_cursor": None,
                },
                "headers": None,
            }
        },
        None,
    ),
    (
        "error handler: ignore, fail, constant backoff",
        {
            "requester": {
                **REQUESTER,
                "error_handler": {
                    "type": "DefaultErrorHandler",
                    "max_retries": 2,
                    "response_filters": [
                        {"type": "HttpResponseFilter", "action": "IGNORE", "http_codes": [404]},
                        {"type": "HttpResponseFilter", "action": "FAIL", "http_codes": [500]},
                    ],
                    "backoff_strategies": [
                        {"type": "ConstantBackoffStrategy", "backoff_time_in_seconds": 10}
                    ],
                },
            }
        },
        {
            "error_handler": {
                "retry_on_status_codes": [429, 502, 503, 504],
                "max_retries": 2,
                "backoff_factor": 10.0,
            },
            "endpoint": {"response_actions": [{"status_code": 404, "action": "ignore"}]},
        },
        "constant backoff",
    ),
    (
        "JSON lines",
        {
            "decoder": {"type": "JsonlDecoder"},
            "record_selector": {
                "type": "RecordSelector",
                "extractor": {"type": "DpathExtractor", "field_path": []},
            },
        },
        {"endpoint": {"response_format": "jsonl"}},
        None,
    ),
    (
        "constant expressions baked in",
        {
            "requester": {
                **REQUESTER,
                "request_parameters": {"per_page": "{{ 50 * 2 }}", "kind": "{{ 'a' ~ 'b' }}"},
            }
        },
        {"endpoint": {"params": {"per_page": 100, "kind": "ab"}}},
        None,
    ),
    (
        "a parent's key as a query param",
        {
            "partition_router": {
                "type": "SubstreamPartitionRouter",
                "parent_stream_configs": [
                    {
                        "type": "ParentStreamConfig",
                        "stream": PARENT,
                        "parent_key": "id",
                        "partition_field": "pid",
                        "request_option": _option("parent_id"),
                    }
                ],
            }
        },
        {
            "endpoint": {
                "params": {"parent_id": {"type": "resolve", "resource": "parents", "field": "id"}}
            }
        },
        None,
    ),
]
STREAM_CONVERSIONS = [
    (
        "a conditional RemoveFields and the key transformations",
        {
            "transformations": [
                {
                    "type": "RemoveFields",
                    "field_pointers": [["a"]],
                    "condition": "{{ property == 'n/a' }}",
                },
                {"type": "KeysReplace", "old": "-", "new": "_"},
                {"type": "KeysToSnakeCase"},
                {"type": "KeysToLower"},
            ]
        },
        {
            "remove_values_when": "{{ value == 'n/a' }}",
            "normalize_keys": [{"replace": "-", "with": "_"}, "snake_case", "lower"],
        },
        "values inside lists are kept",
    ),
    (
        "added fields cast to their value_type",
        {
            "transformations": [
                {
                    "type": "AddFields",
                    "fields": [
                        {"path": ["n"], "value": "{{ '7' }}", "value_type": "integer"},
                        {"path": ["meta", "src"], "value": "api"},
                        {"path": ["x2"], "value": "{{ record['x'] * 2 }}", "value_type": "number"},
                    ],
                }
            ]
        },
        {"add_fields": {"n": 7, "meta.src": "api", "x2": "{{ record['x'] * 2 }}"}},
        "not cast to number",
    ),
    (
        "a record filter on the incremental window",
        {
            "incremental_sync": {"type": "IncrementingCountCursor", "cursor_field": "seq"},
            "retriever": {
                **_stream("x")["retriever"],
                "record_selector": {
                    "type": "RecordSelector",
                    "extractor": {"type": "DpathExtractor", "field_path": ["data"]},
                    "record_filter": {
                        "condition": "{{ record['seq'] > stream_state.get('seq', 0) }}"
                    },
                },
            },
        },
        {"record_filter": None, "endpoint": {"incremental": {"cursor_path": "seq"}}},
        "left to dlt's incremental",
    ),
    (
        "datetime cursor with windows and an end bound",
        {
            "incremental_sync": {
                "type": "DatetimeBasedCursor",
                "cursor_field": "updated",
                "datetime_format": "%Y-%m-%d",
                "start_datetime": "2024-01-01T00:00:00Z",
                "step": "P1D",
                "cursor_granularity": "P1D",
                "start_time_option": _option("from"),
                "end_time_option": _option("to"),
            }
        },
        {
            "endpoint": {
                "incremental": {
                    "cursor_path": "updated",
                    "initial_value": "2024-01-01",
                    "start_param": "from",
                    "end_param": "to",
                    "step": "P1D",
                }
            },
            "write_disposition": "merge",
        },
        "minus cursor_granularity P1D",
    ),
    (
        "datetime cursor with windows of a month",
        {
            "incremental_sync": {
                "type": "DatetimeBasedCursor",
                "cursor_field": "updated",
                "datetime_format": "%Y-%m-%d",
                "start_datetime": "2024-01-01T00:00:00Z",
                "step": "P1M",
                "start_time_option": _option("from"),
            }
        },
        {
            "endpoint": {
                "incremental": {"cursor_path": "updated", "start_param": "from", "step": None}
            }
        },
        "one request range instead of windows of P1M (no fixed length)",
    ),
    (
        "the interval's start in a param",
        {
            "incremental_sync": {
                "type": "IncrementingCountCursor",
                "cursor_field": "seq",
                "start_value": 5,
            },
            "retriever": {
                **_stream("x")["retriever"],
                "requester": {
                    **REQUESTER,
                    "request_parameters": {"since": "{{ stream_interval.start_time }}"},
                },
            },
        },
        None,
        None,
    ),
]


def _import_one(tmp_path: Path, stream: dict) -> tuple[dict, list[str], str]:
    """The resource `stream` becomes (the manifest holds a parent stream too), its notes and
    the reason it was dropped ('' when imported)."""
    manifest = {**BASE, "streams": [PARENT, stream]}
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest))
    imported = import_manifest(path, None, "things")
    resources = {r["name"]: r for r in imported.spec["resources"]}
    notes = imported.notes.get(stream["name"], [])
    return resources.get(stream["name"], {}), notes, imported.dropped.get(stream["name"], "")


def _holds(got: object, expected: object) -> bool:
    if isinstance(expected, dict):
        return isinstance(got, dict) and all(_holds(got.get(k), v) for k, v in expected.items())
    return got == expected


@pytest.mark.parametrize(
    ("case", "changes", "expected", "note"), CONVERSIONS, ids=[c[0] for c in CONVERSIONS]
)
def test_each_retriever_component_converts_as_the_table_says(
    case, changes, expected, note, tmp_path
):
    """A stream with one retriever component changed converts into the restsync keys the
    case names, with the loss it names printed as a note."""
    base = _stream("things")
    stream = {**base, "retriever": {**base["retriever"], **changes}}
    resource, notes, dropped = _import_one(tmp_path, stream)
    assert not dropped, dropped
    assert _holds(resource, expected), resource
    assert note is None or any(note in n for n in notes), notes


@pytest.mark.parametrize(
    ("case", "changes", "expected", "note"),
    STREAM_CONVERSIONS,
    ids=[c[0] for c in STREAM_CONVERSIONS],
)
def test_each_incremental_sync_converts_as_the_table_says(case, changes, expected, note, tmp_path):
    """Incremental syncs become dlt's `incremental` (start value in Airbyte's datetime format);
    `stream_interval.start_time` in a param becomes `{incremental.start_value}`; stream
    transformations become restsync's transforms (a RemoveFields condition over `property`
    becomes `remove_values_when` over `value`, the key transformations `normalize_keys`)."""
    stream = {**_stream("things"), **changes}
    resource, notes, dropped = _import_one(tmp_path, stream)
    assert not dropped, dropped
    if expected is not None:
        assert _holds(resource, expected), resource
    else:
        assert resource["endpoint"]["params"] == {"since": "{incremental.start_value}"}
        assert resource["endpoint"]["incremental"] == {"cursor_path": "seq", "initial_value": 5}
    assert note is None or any(note in n for n in notes), notes


def test_a_schema_file_beside_the_manifest_becomes_column_hints(tmp_path):
    """`JsonFileSchemaLoader` reads the schema relative to the manifest: its top-level
    properties become `schema:` types (a nullable union counts as its one type)."""
    (tmp_path / "schemas").mkdir()
    schema = {
        "properties": {
            "id": {"type": "integer"},
            "at": {"type": ["null", "string"], "format": "date-time"},
            "tags": {"type": "array"},
            "odd": {"type": ["string", "integer"]},
        }
    }
    (tmp_path / "schemas" / "things.json").write_text(json.dumps(schema))
    stream = {
        **_stream("things"),
        "schema_loader": {
            "type": "JsonFileSchemaLoader",
            "file_path": "./schemas/{{ parameters.name }}.json",
        },
        "$parameters": {"name": "things"},
    }
    resource, _, dropped = _import_one(tmp_path, stream)
    assert not dropped, dropped
    assert resource["schema"] == {"id": "integer", "at": "date-time", "tags": "array"}


AUTH_CONFIG = {
    "api_key": "key-value-1",
    "user": "reports",
    "password": "password-value-2",
    "client_id": "client-id-3",
    "client_secret": "client-secret-4",
    "refresh_token": "refresh-token-5",
    "method": "key",
    "credentials": {"client_id": "nested-id-6", "client_secret": "nested-secret-7"},
}
AUTH_SECRETS = {"api_key", "password", "client_secret", "refresh_token"}
#: (case, Airbyte authenticator, restsync's client auth, a note or None)
AUTHS = [
    (
        "api key with a Bearer prefix",
        {
            "type": "ApiKeyAuthenticator",
            "api_token": "Bearer {{ config['api_key'] }}",
            "inject_into": _option("Authorization", "header"),
        },
        {"type": "bearer", "token": {"secret": "api_key"}},
        None,
    ),
    (
        "api key in the query",
        {
            "type": "ApiKeyAuthenticator",
            "api_token": "{{ config['api_key'] }}",
            "inject_into": _option("key"),
        },
        {"type": "api_key", "name": "key", "location": "query", "api_key": {"secret": "api_key"}},
        None,
    ),
    (
        "basic, user baked in",
        {
            "type": "BasicHttpAuthenticator",
            "username": "{{ config['user'] }}",
            "password": "{{ config['password'] }}",
        },
        {"type": "http_basic", "username": "reports", "password": {"secret": "password"}},
        None,
    ),
    (
        "oauth client credentials with scopes",
        {
            "type": "OAuthAuthenticator",
            "token_refresh_endpoint": "https://auth.example.com/token",
            "grant_type": "client_credentials",
            "client_id": "{{ config['client_id'] }}",
            "client_secret": "{{ config['client_secret'] }}",
            "scopes": ["read"],
        },
        {
            "type": "oauth2",
            "token_url": "https://auth.example.com/token",
            "client_id": {"secret": "client_id"},
            "client_secret": {"secret": "client_secret"},
            "scopes": ["read"],
        },
        None,
    ),
    (
        "oauth refresh token, rotated",
        {
            "type": "OAuthAuthenticator",
            "token_refresh_endpoint": "https://auth.example.com/token",
            "client_id": "{{ config['client_id'] }}",
            "client_secret": "{{ config['client_secret'] }}",
            "refresh_token": "{{ config['refresh_token'] }}",
            "refresh_token_updater": {},
        },
        {
            "type": "oauth2",
            "token_url": "https://auth.example.com/token",
            "client_id": {"secret": "client_id"},
            "client_secret": {"secret": "client_secret"},
            "refresh_token": {"secret": "refresh_token"},
        },
        "not written back",
    ),
    (
        "oauth from nested config fields",
        {
            "type": "OAuthAuthenticator",
            "token_refresh_endpoint": "https://auth.example.com/token",
            "grant_type": "client_credentials",
            "client_id": "{{ config['credentials']['client_id'] }}",
            "client_secret": "{{ config.credentials.client_secret }}",
        },
        {
            "type": "oauth2",
            "token_url": "https://auth.example.com/token",
            "client_id": {"secret": "client_id"},
            "client_secret": {"secret": "client_secret"},
        },
        None,
    ),
    (
        "selective, by the config's choice",
        {
            "type": "SelectiveAuthenticator",
            "authenticator_selection_path": ["method"],
            "authenticators": {
                "key": {"type": "BearerAuthenticator", "api_token": "{{ config['api_key'] }}"},
                "none": {"type": "NoAuth"},
            },
        },
        {"type": "bearer", "token": {"secret": "api_key"}},
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "authenticator", "expected", "note"), AUTHS, ids=[a[0] for a in AUTHS]
)
def test_each_authenticator_converts_with_secrets_as_env_vars(
    case, authenticator, expected, note, tmp_path
):
    """Each authenticator becomes restsync's auth on the client: `airbyte_secret` fields as
    `{secret: <field>}`, other config values baked in; no secret value in the YAML."""
    properties = {k: {"type": "string", "airbyte_secret": k in AUTH_SECRETS} for k in AUTH_CONFIG}
    manifest = {
        **BASE,
        "spec": {"connection_specification": {"properties": properties}},
        "streams": [_stream("things", requester={**REQUESTER, "authenticator": authenticator})],
    }
    path, config = tmp_path / "manifest.yaml", tmp_path / "config.json"
    path.write_text(yaml.safe_dump(manifest))
    config.write_text(json.dumps(AUTH_CONFIG))
    imported = import_manifest(path, config, "things")
    assert not imported.dropped, imported.dropped
    assert imported.spec["client"]["auth"] == expected
    assert note is None or any(note in n for n in imported.notes["things"])
    text = imported.text()
    assert [k for k in AUTH_SECRETS if AUTH_CONFIG[k] in text] == []


REPORT_WINDOW = ("2026-01-01", "2026-03-01")
#: the reports manifest's async streams -> (the vendor's report level, the fields compared,
#: the days its jobs cover: the config's dates, or the start date on for the cursor's)
REPORT_STREAMS = {
    "campaign_report": ("campaign", reports.CAMPAIGN_FIELDS, REPORT_WINDOW),
    "ad_report": ("ad", reports.AD_FIELDS, REPORT_WINDOW),
    "campaign_report_since": ("campaign", reports.CAMPAIGN_FIELDS, (REPORT_WINDOW[0], None)),
    "account_campaign_report": (
        "campaign",
        (*reports.CAMPAIGN_FIELDS, "account_id"),
        REPORT_WINDOW,
    ),
}


def _report_truth(sandbox, stream: str) -> list[dict]:
    """The vendor's rows of `stream` (the account's id added to an account's report)."""
    level, _, (start, end) = REPORT_STREAMS[stream]
    rows = sandbox.reports.truth(level, start, end)
    if stream == "account_campaign_report":
        return [{**r, "account_id": reports.account_of(r["campaign_id"])} for r in rows]
    return rows


def _report_config(sandbox) -> dict:
    start, end = REPORT_WINDOW
    return {
        "base_url": f"{sandbox.url}/reports",
        "token": reports.TOKEN,
        "start_date": start,
        "end_date": end,
    }


def _multiset(rows: list[dict], fields: tuple[str, ...]) -> Counter:
    return Counter(tuple(str(r[f]) for f in fields) for r in rows)


def _load_reports(tmp_path, specs_dir, sandbox, capsys, monkeypatch) -> None:
    """Import the reports manifest into `specs_dir`, validate it and materialize it."""
    monkeypatch.setenv("REPORTS_TOKEN", reports.TOKEN)
    config = tmp_path / "reports.config.json"
    config.write_text(json.dumps(_report_config(sandbox)))
    argv = ["import", "airbyte", str(MANIFESTS / "reports.yaml"), "--config", str(config)]
    assert main([*argv, "--name", "reports", "--out", str(specs_dir)]) == 0
    printed = capsys.readouterr().out
    assert "dropped" not in printed and "reads REPORTS_TOKEN" in printed
    resources = yaml.safe_load((specs_dir / "reports.yaml").read_text())["resources"]
    assert {r["name"] for r in resources if "async_job" in r["endpoint"]} == set(REPORT_STREAMS)
    assert {r["name"] for r in resources} == {*REPORT_STREAMS, "accounts"}
    assert reports.TOKEN not in (specs_dir / "reports.yaml").read_text()
    assert main(["validate", str(specs_dir)]) == 0
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)


def test_an_async_retriever_manifest_loads_the_report_jobs_rows(
    tmp_path, specs_dir, sandbox, capsys, monkeypatch, retry_clock
):
    """Our AsyncRetriever manifest of the sandbox's `reports` vendor imports each stream as
    `endpoint.async_job` (none dropped), passes `restsync validate`, and one Dagster
    materialization creates one job per stream (per account for the stream partitioned by
    the accounts stream, from the start date to today for the one with a
    DatetimeBasedCursor), polls it, downloads its gzipped CSV files (URLs from the poll
    answer) or its zip of JSON Lines (a path naming the job id), and loads exactly the
    vendor's rows into DuckDB (compared as a multiset). A second run creates the cursor's
    job from the last day loaded."""
    _load_reports(tmp_path, specs_dir, sandbox, capsys, monkeypatch)
    for stream, (_, fields, _) in REPORT_STREAMS.items():
        rows = table("reports", stream)
        assert rows is not None, stream
        truth = _report_truth(sandbox, stream)
        assert _multiset(rows, fields) == _multiset(truth, fields), stream
    created = sandbox.reports.created
    assert created[("campaign", *REPORT_WINDOW)] == 1 and created[("ad", *REPORT_WINDOW)] == 1
    accounts = range(1, reports.ACCOUNTS + 1)
    assert all(created[("campaign", *REPORT_WINDOW, a)] == 1 for a in accounts)
    since = [k for k in created if k[:2] == ("campaign", REPORT_WINDOW[0]) and len(k) == 3]
    since.remove(("campaign", *REPORT_WINDOW))  # the fixed window's; the cursor's is left
    assert len(since) == 1 and created[since[0]] == 1
    today = since[0][2]
    assert [r["id"] for r in table("reports", "accounts")] == list(accounts)

    assert materialize_specs(specs_dir).success
    last_day = max(r["day"] for r in sandbox.reports.truth("campaign"))
    assert created[("campaign", last_day, today)] == 1


def test_restsync_loads_the_reports_records_airbytes_cdk_reads(
    tmp_path, specs_dir, sandbox, capsys, monkeypatch, retry_clock
):
    """Airbyte's CDK (its own venv, its polls every 0.2 s) reads the reports manifest's async
    jobs from a sandbox of its own; the imported spec loads the same records (values
    compared as text: the CDK's CSV rows are strings), as a multiset per stream."""
    python = os.environ.get(AIRBYTE_PYTHON)
    if not python:
        unavailable(
            "Airbyte's CDK", f"{AIRBYTE_PYTHON} is not set (a venv's python with airbyte-cdk)"
        )
    config, out = tmp_path / "cdk.json", tmp_path / "cdk.jsonl"
    with Sandbox() as own:
        config.write_text(json.dumps(_report_config(own)))
        argv = [python, str(CDK_READER), str(MANIFESTS / "reports.yaml"), str(config), str(out)]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    _load_reports(tmp_path, specs_dir, sandbox, capsys, monkeypatch)
    for stream, (_, fields, _) in REPORT_STREAMS.items():
        cdk = [r["data"] for r in records if r["stream"] == stream]
        assert cdk, stream
        assert _multiset(table("reports", stream), fields) == _multiset(cdk, fields), stream


def _edited(path: list, value) -> dict:
    """The reports manifest with the campaign stream's retriever field at `path` set."""
    manifest = yaml.safe_load((MANIFESTS / "reports.yaml").read_text())
    node = manifest["streams"][0]["retriever"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return manifest


#: an AsyncRetriever restsync's async_job cannot express -> the reason it is dropped with
ASYNC_DROPS = [
    (
        ["download_target_requester"],
        {"type": "HttpRequester", "url_base": "x"},
        "download_target_requester",
    ),
    (["download_paginator"], {"type": "DefaultPaginator"}, "restsync downloads whole files"),
    (
        ["polling_requester"],
        {"type": "HttpRequester", "url_base": "{{ config['base_url'] }}", "path": "/v1/status"},
        "names no creation_response field",
    ),
    (["status_extractor", "field_path"], ["jobs", "*", "status"], "a wildcard"),
    (["download_decoder"], {"type": "XmlDecoder"}, "XmlDecoder has no restsync equivalent"),
    (
        ["partition_router"],
        {"type": "ListPartitionRouter", "cursor_field": "level", "values": ["campaign"]},
        "no for_each on an async job",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "reason"), ASYNC_DROPS, ids=[".".join(p) for p, _, _ in ASYNC_DROPS]
)
def test_an_async_retriever_restsync_cannot_express_is_dropped_with_its_reason(
    path, value, reason, tmp_path, sandbox, capsys
):
    """Each AsyncRetriever part without an async_job equivalent drops its stream with a line
    naming the stream and why; the other stream is still imported."""
    manifest = tmp_path / "reports.yaml"
    manifest.write_text(yaml.safe_dump(_edited(path, value)))
    config = tmp_path / "reports.config.json"
    config.write_text(json.dumps(_report_config(sandbox)))
    out = tmp_path / "out"
    argv = ["import", "airbyte", str(manifest), "--config", str(config)]
    assert main([*argv, "--name", "reports", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    dropped = [
        line for line in printed.splitlines() if "campaign_report" in line and "dropped" in line
    ]
    assert len(dropped) == 1 and reason in dropped[0], printed
    names = [r["name"] for r in yaml.safe_load((out / "reports.yaml").read_text())["resources"]]
    assert "campaign_report" not in names and "ad_report" in names
