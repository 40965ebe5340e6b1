"""`for_each`: a static list of values, one request sequence per value (in the path or a query
param), the value kept as a column; end to end against the sandbox's `partnerhub` vendor,
and its validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .support import (
    REPO,
    assert_table_is,
    edited,
    failure_message,
    materialize_specs,
    refusal,
    table_rows,
    write_spec,
)

SPEC_FILE = Path(__file__).parent / "specs" / "vocab" / "partnerhub_regions.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())


@pytest.fixture
def partnerhub(specs_dir, sandbox, monkeypatch):
    """The regions spec alone in the specs folder, pointed at the sandbox."""
    write_spec(specs_dir, SPEC_FILE.read_text(), "partnerhub.yaml")
    for key, value in sandbox.env(["partnerhub"]).items():
        monkeypatch.setenv(key, value)
    return sandbox


def test_each_listed_value_is_one_request_sequence_and_a_column(partnerhub, specs_dir):
    """`regional_reports` asks /v1/regions/emea/reports and then .../apac/... (each paged to
    its end) and holds exactly those regions' rows, each with `zone` = its region;
    `amer_reports` sends `?region=amer` and holds the amer rows."""
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    rows = partnerhub.rows("partnerhub", "reports")

    def truth(*zones: str) -> list[dict]:
        return [{**r, "zone": r["region"]} for r in rows if r["region"] in zones]

    assert len(truth("emea", "apac")) == 29
    assert_table_is(table_rows("partnerhub", "regional_reports"), truth("emea", "apac"))
    assert_table_is(table_rows("partnerhub", "amer_reports"), truth("amer"))
    paths = [
        (r.path, r.query.get("offset")) for r in partnerhub.requests if r.resource == "reports"
    ]
    emea = [p for p in paths if "/regions/emea/" in p[0]]
    apac = [p for p in paths if "/regions/apac/" in p[0]]
    assert [o for _, o in emea] == ["0", "10"] and [o for _, o in apac] == ["0", "10"]
    amer = [r.query for r in partnerhub.requests if r.path.endswith("/v1/reports")]
    assert amer and all(q["region"] == "amer" for q in amer)


def listed_parent_spec(url: str) -> dict:
    """Batches of two regions (`for_each` sent as `?region=`) and each batch's events (a
    child), the region taken from the parent row: the sandbox's public `exports` feed."""
    return {
        "name": "exports",
        "client": {"base_url": f"{url}/exports"},
        "resources": [
            {
                "name": "regional_batches",
                "primary_key": "id",
                "for_each": {"field": "zone", "values": ["eu", "apac"], "param": "region"},
                "endpoint": {"path": "/v1/batches", "data_selector": "data"},
            },
            {
                "name": "regional_events",
                "primary_key": "id",
                "add_fields": {"batch_zone": "{{ parent.zone }}"},
                "endpoint": {
                    "path": "/v1/batches/{resources.regional_batches.id}/events",
                    "params": {"zone": "{resources.regional_batches.zone}"},
                    "data_selector": "data",
                    "paginator": {"type": "offset", "limit": 40, "total_path": None},
                },
            },
        ],
    }


def test_a_listed_parent_feeds_its_child_the_rows_of_every_value(specs_dir, sandbox):
    """A `for_each` resource with a child: the parent holds the batches of both listed regions
    (each with `zone`), the child exactly those batches' events, each request of it sending
    its parent's `zone` and each row carrying it from the parent row."""
    write_spec(specs_dir, listed_parent_spec(sandbox.url))
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    batches = [
        {**b, "zone": b["region"]}
        for b in sandbox.rows("exports", "batches")
        if b["region"] in ("eu", "apac")
    ]
    assert len(batches) == 3
    assert_table_is(table_rows("exports", "regional_batches"), batches)
    zones = {b["id"]: b["zone"] for b in batches}
    events = [
        {**e, "batch_zone": zones[e["batch_id"]]}
        for e in sandbox.rows("exports", "events")
        if e["batch_id"] in zones
    ]
    assert_table_is(table_rows("exports", "regional_events"), events)
    asked = [r for r in sandbox.requests if r.path.endswith("/events")]
    assert {(r.path.split("/")[-2], r.query["zone"]) for r in asked} == {
        (str(i), z) for i, z in zones.items()
    }


WHERE = "partnerhub.yaml: resource 'regional_reports': for_each"
INVALID = [
    ({"resources__0__for_each__values": []}, f"{WHERE}.values: Tuple should have at least 1 item"),
    (
        {"resources__1__for_each__field": "1zone"},
        "partnerhub.yaml: resource 'amer_reports': for_each.field: String should match pattern",
    ),
    (
        {"resources__0__for_each__param": "zone"},
        f"{WHERE}.param: the value fills {{zone}} in the path",
    ),
    ({"resources__0__for_each__values": [{"a": 1}]}, f"{WHERE}.values.0"),
    (
        {
            "resources__0__endpoint__incremental": {
                "cursor_path": "created_at",
                "initial_value": "2026-01-01T00:00:00Z",
            }
        },
        f"{WHERE}: not supported here: an incremental cursor would be shared by every listed value",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), INVALID, ids=[e[-50:] for _, e in INVALID])
def test_a_bad_for_each_is_one_line_naming_file_resource_and_key(
    tmp_path, monkeypatch, changes, expected
):
    """Each misuse of `for_each` is refused when the spec loads, in one line."""
    monkeypatch.chdir(tmp_path)
    assert refusal(tmp_path, edited(SPEC, **changes)).startswith(expected)


def test_a_for_each_on_a_child_is_refused(tmp_path, monkeypatch):
    """A child is already read once per parent row: `for_each` there is one line."""
    monkeypatch.chdir(tmp_path)
    parent = {"name": "all_reports", "endpoint": {"path": "/v1/reports"}}
    child = {
        "name": "lines",
        "for_each": {"field": "kind", "values": ["a"]},
        "endpoint": {"path": "/v1/reports/{resources.all_reports.id}/lines"},
    }
    spec = {**SPEC, "resources": [parent, child]}
    assert refusal(tmp_path, spec) == (
        "partnerhub.yaml: resource 'lines': for_each: not supported here: a child resource is"
        " already read once per parent row"
    )


def test_the_docs_example_is_the_spec_the_end_to_end_test_loads():
    """The spec reference's `for_each` example is this module's spec."""
    page = (REPO / "docs" / "spec-reference.md").read_text()
    section = page.split("## Fan-out: `for_each`", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    assert yaml.safe_load(block) == SPEC


MEMBERS_FILE = Path(__file__).parent / "specs" / "vocab" / "partnerhub_members.yaml"
MEMBERS = yaml.safe_load(MEMBERS_FILE.read_text())


@pytest.fixture
def members_spec(specs_dir, sandbox, monkeypatch):
    """The members spec alone in the specs folder, pointed at the sandbox."""
    write_spec(specs_dir, MEMBERS_FILE.read_text(), "partnerhub.yaml")
    for key, value in sandbox.env(["partnerhub"]).items():
        monkeypatch.setenv(key, value)
    return sandbox


def test_exploded_and_batched_parent_keys_load_the_sandbox_rows(members_spec, specs_dir):
    """`team_members` asks /v1/members/<id> once per item of each team's `member_ids` (an
    empty list asks nothing) and holds exactly the members some team lists; `member_details`
    asks /v1/members?ids=... once per 4 members of each parent page (pages of 10: 4+4+2,
    4+4+2, 3) and holds every member."""
    sandbox = members_spec
    result = materialize_specs(specs_dir)
    assert result.success, failure_message(result)
    members = sandbox.rows("partnerhub", "members")
    listed = [i for team in sandbox.rows("partnerhub", "teams") for i in team["member_ids"]]
    assert len(listed) == 18 and len(set(listed)) == 16
    assert_table_is(
        table_rows("partnerhub", "team_members"), [m for m in members if m["id"] in set(listed)]
    )
    one = sorted(int(r.path.rsplit("/", 1)[1]) for r in sandbox.requests if r.path[-1].isdigit())
    assert one == sorted(listed)
    assert_table_is(table_rows("partnerhub", "member_details"), members)
    batches = [r.query["ids"] for r in sandbox.requests if "ids" in r.query]
    assert sorted(batches) == sorted(
        [
            "1,2,3,4",
            "5,6,7,8",
            "9,10",
            "11,12,13,14",
            "15,16,17,18",
            "19,20",
            "21,22,23",
        ]
    )  # dlt may interleave the parent's pages


CHILD = "partnerhub.yaml: resource 'member_details': endpoint.params.ids"
KEYS_INVALID = [
    (
        {"resources__3__endpoint__params__ids__explode": True},
        f"{CHILD}: give batch_size (many parent rows per request) or explode: true",
    ),
    (
        {"resources__3__endpoint__params__ids__batch_size": 0},
        f"{CHILD}.batch_size: Input should be greater than or equal to 1",
    ),
    (
        {"resources__3__endpoint__params__ids__item_field": "id"},
        f"{CHILD}: item_field picks a field of each exploded item: set explode: true",
    ),
    (
        {"resources__3__include_from_parent": ["name"]},
        f"{CHILD}: not supported here yet: a batched request has many parent rows to include from",
    ),
    (
        {"resources__3__add_fields": {"x": 1}},
        f"{CHILD}: not supported here yet: record transforms see one parent row per request",
    ),
]


@pytest.mark.parametrize(
    ("changes", "expected"), KEYS_INVALID, ids=[e[-45:] for _, e in KEYS_INVALID]
)
def test_a_bad_batch_or_explode_is_one_line_naming_file_resource_and_key(
    tmp_path, monkeypatch, changes, expected
):
    """Each misuse of `batch_size`/`explode` is refused when the spec loads, in one line."""
    monkeypatch.chdir(tmp_path)
    assert refusal(tmp_path, edited(MEMBERS, **changes)) == expected


def test_the_docs_example_of_parent_keys_is_the_spec_the_test_loads():
    """The spec reference's batch/explode example is this module's members spec."""
    page = (REPO / "docs" / "spec-reference.md").read_text()
    section = page.split("### Many parent rows per request, or many requests per row", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    assert yaml.safe_load(block) == MEMBERS


#: an async report job (`endpoint.async_job`): one report created, polled and downloaded
JOB = {
    "create": {"path": "/v1/jobs/{member_id}", "method": "POST"},
    "job_id": "{{ response.id }}",
    "poll": {"path": "/v1/jobs/{job_id}"},
    "status": "{{ response.status }}",
    "done": ["completed"],
    "download": {"urls": "{{ response.files }}", "response_format": "csv"},
}
JOB_FAN_OUT = [
    (
        {
            "name": "job_reports",
            "for_each": {"field": "zone", "values": ["emea", "amer"]},
            "endpoint": {"async_job": {**JOB, "create": {"path": "/v1/jobs", "method": "POST"}}},
        },
        "partnerhub.yaml: resource 'job_reports': for_each: not supported here: an async job"
        " (endpoint.async_job) creates one report per run",
    ),
    (
        {
            "name": "job_reports",
            "endpoint": {
                "async_job": JOB,
                "params": {
                    "member_id": {
                        "type": "resolve",
                        "resource": "teams",
                        "field": "member_ids",
                        "explode": True,
                    }
                },
            },
        },
        "partnerhub.yaml: resource 'job_reports': endpoint.params.member_id: not supported here"
        " yet: an async job (endpoint.async_job) creates one report per parent row",
    ),
]


@pytest.mark.parametrize(("resource", "expected"), JOB_FAN_OUT, ids=["for_each", "explode"])
def test_fan_out_of_an_async_job_is_refused(tmp_path, monkeypatch, resource, expected):
    """An async-job resource is built by restsync's job retriever, not dlt's request code:
    `for_each`, `explode` and `batch_size` there are refused in one line, never ignored."""
    monkeypatch.chdir(tmp_path)
    spec = {**MEMBERS, "resources": [MEMBERS["resources"][0], resource]}
    assert refusal(tmp_path, spec) == expected
