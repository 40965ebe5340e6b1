"""Each request carries its resource (issue 18, found 8).

The session no longer guesses a request's resource from its URL path: every request of a
resource is tagged by the resource's own auth object (`ResourceAuth`), the next pages too.
So a next page at another path (an export's `Link: rel="next"` to `events-2.jsonl.gz`)
keeps its resource's body format and retry policy, and two resources sharing one path (a
GraphQL endpoint) keep their own `error_handler` and their own name in errors. End to end
through Dagster into DuckDB against the sandbox; every table is compared with the
sandbox's rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from restsync_assets.sandbox import Fault, FaultPlan
from restsync_assets.sandbox.exports import EVENT_SCHEMA

from .support import (
    assert_table_is,
    canonical,
    failure_message,
    materialize_specs,
    table,
    table_rows,
    write_spec,
)

# --------------------------------------------------------------------------- export parts

#: (resource, format, declared schema): each reads `events-1.<fmt>.gz`, then the parts
#: each `Link: rel="next"` names (`events-2...`, `events-3...`: paths no route template has)
PARTS = [("parts_jsonl", "jsonl", None), ("parts_csv", "csv", EVENT_SCHEMA)]


def _parts_spec(sandbox) -> dict:
    return {
        "name": "exports",
        "client": {"base_url": f"{sandbox.url}/exports"},
        "resource_defaults": {"write_disposition": "replace", "primary_key": "id"},
        "resources": [
            {
                "name": name,
                "endpoint": {
                    "path": f"v1/parts/events-1.{fmt}.gz",
                    "params": {"per_page": 100},
                    "paginator": "header_link",
                    "response_format": fmt,
                },
                **({"schema": schema} if schema else {}),
            }
            for name, fmt, schema in PARTS
        ],
    }


def _second_part(fmt: str):
    return lambda request: request.path.endswith(f"/events-2.{fmt}.gz")


PART_FAULTS = [
    ("no fault", None),
    ("the second jsonl part cut short once", Fault("truncated", nth=1, when=_second_part("jsonl"))),
    (
        "the second csv part answered 503 once",
        Fault("status", nth=1, status=503, when=_second_part("csv")),
    ),
]


@pytest.mark.parametrize(("case", "fault"), PART_FAULTS, ids=[c[0] for c in PART_FAULTS])
def test_next_parts_at_other_paths_keep_their_resources_format_and_retries(
    sandbox, specs_dir, retry_clock, case, fault
):
    """250 events in three gzipped parts of 100, each part linking the next at a path of
    its own: every part is read as the resource's format (today the second part lost its
    resource and failed as 'resource ?: ... not JSON'), and a fault on a later part is
    retried by the resource's policy; each table holds exactly the sandbox's events."""
    if fault is not None:
        sandbox.faults = FaultPlan(fault)
    write_spec(specs_dir, _parts_spec(sandbox))
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    if fault is not None:
        assert fault.fired == 1
    truth = canonical(sandbox.rows("exports", "events"))
    for name, _fmt, _schema in PARTS:
        assert table("exports", name) == truth, f"{name}: rows differ from the sandbox's"
    served = [r.path.rsplit("/", 1)[-1] for r in sandbox.requests if r.resource == "events"]
    for _name, fmt, _schema in PARTS:
        parts = [p for p in served if p.endswith(f".{fmt}.gz")]
        assert sorted(set(parts)) == [f"events-{n}.{fmt}.gz" for n in (1, 2, 3)]


# --------------------------------------------------------------------------- one path, two

GRAPHQL_SPEC = yaml.safe_load(
    (Path(__file__).parent / "specs" / "graphql" / "codehost.yaml").read_text()
)
#: the second resource asks for pages of 9 (the first for 10): the sandbox tells them apart
SECOND_PAGE_SIZE = 9


def _two_resources_one_path() -> dict:
    """The codehost spec with two resources POSTing to `/graphql`: `repositories` never
    retries, `repositories_again` retries twice."""
    spec = json.loads(json.dumps(GRAPHQL_SPEC))
    first = spec["resources"][0]
    first["error_handler"] = {"max_retries": 0}
    second = json.loads(json.dumps(first))
    second["name"] = "repositories_again"
    second["endpoint"]["json"]["variables"]["first"] = SECOND_PAGE_SIZE
    second["error_handler"] = {"max_retries": 2, "backoff_factor": 0.5}
    spec["resources"].append(second)
    return spec


def _asks_second(request) -> bool:
    body = json.loads(request.body or b"{}")
    return body.get("variables", {}).get("first") == SECOND_PAGE_SIZE


SHARED_PATH = [
    (
        "a 503 to the second resource is retried by its own policy",
        Fault("status", "codehost", "repositories", nth=1, status=503, when=_asks_second),
        None,
    ),
    (
        "a 400 to the second resource names it",
        Fault("status", "codehost", "repositories", status=400, when=_asks_second),
        "codehost: resource repositories_again: POST http://",
    ),
]


@pytest.mark.parametrize(("case", "fault", "error"), SHARED_PATH, ids=[c[0] for c in SHARED_PATH])
def test_resources_sharing_one_path_keep_their_own_policy_and_name(
    sandbox, specs_dir, retry_clock, monkeypatch, case, fault, error
):
    """Today both resources got the first one's policy (no retry: the 503 failed the run)
    and the first one's name in errors."""
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    for key, value in sandbox.env(["codehost"]).items():
        monkeypatch.setenv(key, value)
    write_spec(specs_dir, _two_resources_one_path(), "codehost.yaml")
    sandbox.faults = FaultPlan(fault)
    result = materialize_specs(specs_dir)
    truth = sandbox.rows("codehost", "repositories")
    if error is None:
        assert result.success, failure_message(result)
        assert fault.fired == 1 and retry_clock.sleeps == [0.5]
        for name in ("repositories", "repositories_again"):
            assert_table_is(table_rows("codehost", name), truth)
        return
    assert not result.success
    message = failure_message(result)
    assert message.startswith(error), message
    assert "HTTP 400" in message
