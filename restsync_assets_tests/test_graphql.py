"""GraphQL paging: the templated cursor paginator writes its cursor into the JSON body
(`cursor_body_path`), end to end against the sandbox's GraphQL API (`codehost`), through
Dagster into DuckDB; the key's validation; the sandbox's GraphQL endpoint itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
import yaml
from requests import Request

from restsync_assets.runtime.http.paginators import TemplatedCursorPaginator, with_value_at
from restsync_assets.sandbox import Fault, FaultPlan
from restsync_assets.specs import load_spec_file

from .support import (
    DELETE,
    REPO,
    assert_table_is,
    edited,
    failure_message,
    materialize_specs,
    refusal,
    table_rows,
    write_spec,
)

SPEC_FILE = Path(__file__).parent / "specs" / "graphql" / "codehost.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())
PAGINATOR = "resources__0__endpoint__paginator"


def with_paginator(**changes) -> dict:
    """The codehost spec with its paginator changed (`DELETE` removes a key)."""
    return edited(SPEC, **{f"{PAGINATOR}__{k}": v for k, v in changes.items()})


# --------------------------------------------------------------------------- validation

VALID = [
    ("the README example", SPEC),
    ("a top-level body key", with_paginator(cursor_body_path="after")),
    (
        "on the client, for a POST resource",
        edited(
            SPEC,
            client__paginator=SPEC["resources"][0]["endpoint"]["paginator"],
            resources__0__endpoint__paginator=DELETE,
        ),
    ),
]

WHERE = "resource 'repositories': endpoint.paginator.cursor_body_path"
INVALID = [
    (
        "with cursor_param too",
        with_paginator(cursor_param="after"),
        f"{WHERE}: a cursor goes into the query (cursor_param), the JSON body (cursor_body_path)"
        " or a request header (cursor_header), one of them: remove cursor_body_path",
    ),
    (
        "with cursor_header too",
        with_paginator(cursor_header="X-After"),
        "resource 'repositories': endpoint.paginator.cursor_header: a cursor goes into the"
        " query (cursor_param), the JSON body (cursor_body_path) or a request header"
        " (cursor_header), one of them: remove cursor_header",
    ),
    (
        "a header name with a space",
        with_paginator(cursor_header="X After", cursor_body_path=DELETE),
        "resource 'repositories': endpoint.paginator.cursor_header: 'X After' is not an HTTP"
        " header name such as X-Page-Token",
    ),
    (
        "an empty path",
        with_paginator(cursor_body_path=""),
        f"{WHERE}: '' is not a dotted path of JSON keys such as after or variables.after",
    ),
    (
        "an empty segment",
        with_paginator(cursor_body_path="variables..after"),
        f"{WHERE}: 'variables..after' is not a dotted path of JSON keys such as after or"
        " variables.after",
    ),
    (
        "not a string",
        with_paginator(cursor_body_path=["variables", "after"]),
        f"{WHERE}: Input should be a valid string",
    ),
    (
        "a GET request",
        edited(SPEC, resources__0__endpoint__method="GET"),
        "resource 'repositories': endpoint.method: the paginator writes the cursor into the"
        " JSON body (cursor_body_path), which a GET request does not send; allowed: POST",
    ),
    (
        "the client's paginator on a GET resource",
        edited(
            SPEC,
            client__paginator=SPEC["resources"][0]["endpoint"]["paginator"],
            resources__0__endpoint__paginator=DELETE,
            resources__0__endpoint__method=DELETE,
        ),
        "resource 'repositories': endpoint.method: the paginator writes the cursor into the"
        " JSON body (cursor_body_path), which a GET request does not send; allowed: POST",
    ),
    (
        "a misspelt key",
        with_paginator(cursor_body_pth="variables.after", cursor_body_path=DELETE),
        "resource 'repositories': endpoint.paginator.cursor_body_pth: unknown key; allowed:"
        " cursor_body_path, cursor_header, cursor_param, cursor_value, initial_cursor,"
        " stop_condition, type",
    ),
]


@pytest.mark.parametrize(("case", "spec"), VALID, ids=[c[0] for c in VALID])
def test_valid_cursor_body_path_loads(tmp_path, case, spec):
    loaded = load_spec_file(write_spec(tmp_path, spec))
    paginator = loaded.resources[0].paginator or loaded.client_paginator
    assert paginator.cursor_body_path in ("variables.after", "after")


@pytest.mark.parametrize(("case", "spec", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_cursor_body_path_gives_one_line_naming_file_resource_and_key(
    tmp_path, monkeypatch, case, spec, expected
):
    monkeypatch.chdir(tmp_path)
    assert refusal(tmp_path, spec) == f"codehost.yaml: {expected}"


# --------------------------------------------------------------------------- the paginator


def test_the_cursor_goes_into_a_nested_body_key_without_changing_the_endpoints_json():
    """`variables.after` is set on a copy: the endpoint's `json` (shared by every paging
    sequence, e.g. each parent's) keeps `after: null`, and the other variables stay."""
    endpoint_json = {"query": "q", "variables": {"first": 10, "after": None}}
    paginator = TemplatedCursorPaginator(
        cursor_value="{{ response.data.search.pageInfo.endCursor }}",
        stop_condition="{{ not response.data.search.pageInfo.hasNextPage }}",
        cursor_body_path="variables.after",
        resource="repositories",
    )
    request = Request("POST", "http://127.0.0.1/graphql", json=endpoint_json)
    paginator.init_request(request)
    response = requests.Response()
    response._content = json.dumps(
        {"data": {"search": {"nodes": [], "pageInfo": {"endCursor": "c1", "hasNextPage": True}}}}
    ).encode()
    paginator.update_state(response, [])
    paginator.update_request(request)
    assert request.json == {"query": "q", "variables": {"first": 10, "after": "c1"}}
    assert endpoint_json == {"query": "q", "variables": {"first": 10, "after": None}}
    assert request.params in ({}, None)  # nothing went into the query string


@pytest.mark.parametrize(
    ("body", "path", "expected"),
    [
        (None, "after", {"after": "c"}),
        ({"a": 1}, "variables.after", {"a": 1, "variables": {"after": "c"}}),
        ({"variables": "x"}, "variables.after", {"variables": {"after": "c"}}),
        ({"v": {"w": {"after": 1, "k": 2}}}, "v.w.after", {"v": {"w": {"after": "c", "k": 2}}}),
    ],
)
def test_with_value_at_sets_the_dotted_key(body, path, expected):
    assert with_value_at(body, path, "c") == expected


# --------------------------------------------------------------------------- the sandbox

QUERY = "query { search(first: $first, after: $after) { nodes { id } } }"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"variables": {"first": 5}}, "the body must be a JSON object with a `query` string"),
        ({"query": "{{ search }}"}, "syntax error: unexpected `{{` or `}}` in the query"),
        ({"query": "{ viewer { login } }"}, "unsupported query: this API answers"),
        ({"query": QUERY, "variables": {"first": 0}}, "first: must be a whole number"),
        ({"query": QUERY, "variables": {"after": "bm9wZQ=="}}, "after: 'bm9wZQ==' is not"),
    ],
)
def test_the_sandbox_graphql_endpoint_rejects_a_bad_body_with_a_400(sandbox, body, message):
    token = sandbox.credentials("codehost")["token"]
    answer = requests.post(
        sandbox.base_url("codehost") + "/graphql",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["message"].startswith(message)


def test_the_sandbox_graphql_endpoint_pages_every_row_once(sandbox):
    token = sandbox.credentials("codehost")["token"]
    seen, after = [], None
    for _ in range(10):
        answer = requests.post(
            sandbox.base_url("codehost") + "/graphql",
            json={"query": QUERY, "variables": {"first": 8, "after": after}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()["data"]["search"]
        seen += answer["nodes"]
        after = answer["pageInfo"]["endCursor"]
        if not answer["pageInfo"]["hasNextPage"]:
            break
    assert seen == sandbox.rows("codehost", "repositories")
    assert after is not None  # the last page's endCursor is set, as in GraphQL


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def codehost(specs_dir, sandbox, monkeypatch):
    """The codehost spec alone in the specs folder, pointed at the sandbox."""
    write_spec(specs_dir, SPEC_FILE.read_text(), "codehost.yaml")
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    for key, value in sandbox.env(["codehost"]).items():
        monkeypatch.setenv(key, value)
    return sandbox


def test_graphql_search_pages_into_duckdb_equal_to_the_sandbox(codehost, specs_dir):
    """Every page is one POST with the previous page's endCursor in `variables.after`; the
    table holds the sandbox's repositories row for row, field for field."""
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    truth = codehost.rows("codehost", "repositories")
    assert_table_is(table_rows("codehost", "repositories"), truth)
    served = [r for r in codehost.requests if r.resource == "repositories"]
    assert [(r.method, r.status) for r in served] == [("POST", 200)] * 4  # 37 rows, 10 a page


def test_a_repeated_graphql_cursor_fails_the_load_and_writes_nothing(codehost, specs_dir):
    """The loop detector works on body cursors too: the third page answers with the cursor
    it was asked with; the run fails naming the resource and no table is written."""
    codehost.faults = FaultPlan(Fault("repeat_cursor", "codehost", "repositories", nth=3))
    result = materialize_specs(specs_dir)
    assert not result.success
    message = failure_message(result)
    assert re.search(
        r"resource repositories: pagination loop, the API returned the cursor", message
    )
    assert table_rows("codehost", "repositories") is None


def test_the_readme_example_is_the_spec_the_end_to_end_test_loads():
    """The spec reference's `### GraphQL: cursor_body_path` example is this module's spec."""
    readme = (REPO / "docs" / "spec-reference.md").read_text()
    section = readme.split("### GraphQL: `cursor_body_path`", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    assert yaml.safe_load(block) == SPEC
