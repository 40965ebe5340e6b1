"""Table-driven spec validation: valid specs load, invalid ones fail with one exact line."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from restsync_assets.specs.errors import SpecError, SpecValidationError
from restsync_assets.specs.loader import load_spec_file, load_specs, normalize_selector
from restsync_assets.specs.model import OffsetPaginatorSpec, TemplatedCursorPaginatorSpec

REPO = Path(__file__).resolve().parent.parent
SEED_SPECS = REPO / "source_specs"

BASE = {
    "name": "shop",
    "client": {
        "base_url": "https://api.example.com",
        "auth": {"type": "oauth2", "token_url": "https://api.example.com/oauth/token"},
    },
    "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
    "resources": [
        {"name": "organizations", "endpoint": {"path": "/v1/orgs", "data_selector": "data"}},
        {
            "name": "adaccounts",
            "endpoint": {"path": "/v1/organizations/{organization_id}/adaccounts"},
        },
    ],
}


def spec_with(**changes):
    """BASE with dotted-path changes applied, e.g. {"resources.0.endpoint.path": "/x"}."""
    spec = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = spec
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        elif value is DELETE:
            node.pop(last)
        else:
            node[last] = value
    return spec


DELETE = object()


def write(tmp_path: Path, spec, name: str = "shop.yaml") -> Path:
    path = tmp_path / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False))
    return path


INVALID = [
    (
        "unknown paginator type",
        spec_with(resources__0__endpoint__paginator={"type": "cursr"}),
        "resource 'organizations': endpoint.paginator.type: unknown paginator type 'cursr'; allowed: auto, cursor, header_cursor, header_link, json_link, json_response, offset, page_number, single_page",
    ),
    (
        "unknown auth type",
        spec_with(client__auth={"type": "oauth3", "token_url": "https://x/t"}),
        "client.auth.type: unknown auth type 'oauth3'; allowed: api_key, bearer, http_basic, oauth2, oauth2_client_credentials",
    ),
    (
        "missing token_url",
        spec_with(client__auth={"type": "oauth2"}),
        "client.auth.token_url: is required",
    ),
    (
        "secret in yaml",
        spec_with(
            client__auth={"type": "oauth2", "token_url": "https://x/t", "client_secret": "s3cr3t"}
        ),
        "client.auth.client_secret: secrets never live in YAML: remove it and set the env var or .dlt/secrets.toml",
    ),
    (
        "missing name",
        spec_with(name=DELETE),
        "name: must be snake_case (lowercase letters, digits, _), got None",
    ),
    (
        "name not snake_case",
        spec_with(name="My-Shop"),
        "name: must be snake_case (lowercase letters, digits, _), got 'My-Shop'",
    ),
    (
        "missing base_url",
        spec_with(client__base_url=DELETE),
        "client.base_url: must be an http(s) URL, got None",
    ),
    (
        "unknown top-level key",
        spec_with(resourcez=[]),
        "resourcez: unknown key; allowed: client, description, name, owners, resource_defaults, resources, schedule, tags",
    ),
    (
        "no resources",
        spec_with(resources=[]),
        "resources: must be a non-empty list of resources",
    ),
    (
        "duplicate resource",
        spec_with(resources__1={"name": "organizations", "endpoint": "/v2/orgs"}),
        "resource 'organizations': name: duplicate resource name",
    ),
    (
        "unbound placeholder",
        spec_with(resources__1__endpoint__path="/v1/campaigns/{parent_id}/items"),
        "resource 'adaccounts': endpoint.path: placeholder {parent_id} is not bound: bind it with {resources.<parent>.<field>} in the path or params.parent_id: {type: resolve, resource: <parent>, field: <field>}; resources: organizations",
    ),
    (
        "resolve to unknown resource",
        spec_with(
            resources__1__endpoint={
                "path": "/v1/x/{parent_id}",
                "params": {"parent_id": {"type": "resolve", "resource": "orgs", "field": "id"}},
            }
        ),
        "resource 'adaccounts': endpoint.params.parent_id.resource: unknown resource 'orgs'; allowed: organizations",
    ),
    (
        "invalid JSONPath selector",
        spec_with(resources__0__endpoint__data_selector="data[?("),
        "resource 'organizations': endpoint.data_selector: 'data[?(' is not valid JSONPath",
    ),
    (
        "unknown endpoint key",
        spec_with(resources__0__endpoint__paginatr={"type": "offset", "limit": 5}),
        "resource 'organizations': endpoint.paginatr: unknown endpoint key; allowed: auth, data, data_selector, headers, incremental, json, method, paginator, params, path, response_actions",
    ),
    (
        "offset without limit",
        spec_with(resources__0__endpoint__paginator={"type": "offset"}),
        "resource 'organizations': endpoint.paginator.limit: is required",
    ),
    (
        "unknown offset key",
        spec_with(resources__0__endpoint__paginator={"type": "offset", "limit": 5, "size": 3}),
        "resource 'organizations': endpoint.paginator.size: unknown key; allowed: has_more_path, limit, limit_param, maximum_offset, offset, offset_param, stop_after_empty_page, total_path, type",
    ),
    (
        "template syntax error",
        spec_with(
            resources__0__endpoint__paginator={
                "type": "cursor",
                "cursor_value": "{{ response.get( }}",
            }
        ),
        "resource 'organizations': endpoint.paginator.cursor_value:",
    ),
    (
        "bad write disposition",
        spec_with(resources__0__write_disposition="upsertt"),
        "resource 'organizations': write_disposition: unknown write disposition 'upsertt'; allowed: append, merge, replace, skip",
    ),
    (
        "bad error handler key",
        spec_with(client__error_handler={"retries": 3}),
        "client.error_handler.retries: unknown key; allowed: backoff_factor, max_retries, max_retry_delay, retry_on_status_codes, timeout",
    ),
    (
        "bad status code",
        spec_with(resources__0__error_handler={"retry_on_status_codes": [42]}),
        "resource 'organizations': error_handler.retry_on_status_codes: [42] are not HTTP status codes (100-599)",
    ),
    (
        "malformed secret value",
        spec_with(resources__0__endpoint__params={"api_key": {"secret": "Api-Key"}}),
        "resource 'organizations': endpoint.params.api_key: a secret value is {secret: <snake_case name>}, read from the env var <SPEC NAME>_<NAME> or .dlt/secrets.toml",
    ),
    (
        "concurrency out of range",
        spec_with(client__concurrency=0),
        "client.concurrency: must be a whole number of parallel requests from 1 to 64, got 0",
    ),
    (
        "bad partitions type",
        spec_with(resources__0__partitions={"type": "daily-ish", "start": "2026-01-01"}),
        "resource 'organizations': partitions.type: Input should be 'hourly', 'daily', 'weekly' or 'monthly'",
    ),
    (
        "bad partitions start",
        spec_with(resources__0__partitions={"type": "daily", "start": "yesterday"}),
        "resource 'organizations': partitions.start: 'yesterday' is not an ISO date such as 2026-01-01",
    ),
    (
        "child with other partitions",
        spec_with(
            resources__0__partitions={"type": "daily", "start": "2026-01-01"},
            resources__1__partitions={"type": "hourly", "start": "2026-01-01"},
        ),
        "resource 'adaccounts': partitions: a child shares its parent's partitions; remove it or partition 'organizations' the same way",
    ),
    (
        "bad freshness",
        spec_with(resources__0__freshness={"max_lag": "soon"}),
        "resource 'organizations': freshness.max_lag: 'soon' is not a duration such as 90s, 30m, 6h, 2d, 1w (a bare number means minutes)",
    ),
    (
        "bad schedule cron",
        spec_with(schedule="every day"),
        "schedule.cron: 'every day' is not a cron expression such as '0 6 * * *'",
    ),
    (
        "bad automation condition",
        spec_with(resources__0__automation_condition="sometimes"),
        "resource 'organizations': automation_condition: unknown automation condition 'sometimes'; allowed: eager, on_missing, {on_cron: <cron>}",
    ),
    (
        "negative min_rows",
        spec_with(resources__0__checks={"min_rows": -1}),
        "resource 'organizations': checks.min_rows: Input should be greater than or equal to 0",
    ),
    (
        "unknown schema type",
        spec_with(resources__0__schema={"id": {"type": "uuid"}}),
        "resource 'organizations': schema.id.type: unknown type 'uuid'; allowed:",
    ),
    (
        "cycle",
        spec_with(
            resources__0__endpoint={"path": "/v1/a/{adaccount_id}"},
        ),
        "resources depend on each other in a cycle",
    ),
    (
        "unknown dlt resource hint",
        spec_with(resources__0__primary_keys="id"),
        "resource 'organizations': primary_keys: unknown key; allowed: automation_condition, checks, columns, endpoint, error_handler,",
    ),
    (
        "invalid yaml",
        "name: shop\nclient: [unclosed\n",
        "invalid YAML at line",
    ),
    (
        "owner that is neither an email nor a team",
        spec_with(owners=["jane@example.com", "data-eng"]),
        "owners[1]: 'data-eng' is not an owner; allowed: an email address (jane@example.com) or a team name prefixed with team: (team:data-eng)",
    ),
    (
        "empty team owner on a resource",
        spec_with(resources__0__owners=["team:"]),
        "resource 'organizations': owners[0]: 'team:' is not an owner; allowed:",
    ),
    (
        "owners not a list",
        spec_with(owners="team:data-eng"),
        "owners: must be a list of owners (emails or team:<name>)",
    ),
    (
        "tag value that is a number",
        spec_with(tags={"tier": 1}),
        "tags.tier: 1 is not a tag value; allowed: a string of up to 63 letters, digits, _ - . (quote numbers and booleans)",
    ),
    (
        "tag value with a space",
        spec_with(resources__1__tags={"domain": "ad spend"}),
        "resource 'adaccounts': tags.domain: 'ad spend' is not a tag value; allowed:",
    ),
    (
        "tag name with a space",
        spec_with(tags={"cost center": "x"}),
        "tags: 'cost center' is not a tag name; allowed: 1-63 letters, digits, _ - . with an optional prefix/ of the same (not dagster/)",
    ),
    (
        "tag in dagster's namespace",
        spec_with(tags={"dagster/kind/api": ""}),
        "tags: 'dagster/kind/api' is not a tag name; allowed:",
    ),
    (
        "tags not a mapping",
        spec_with(resources__0__tags=["pii"]),
        "resource 'organizations': tags: must map tag names to string values",
    ),
]


@pytest.mark.parametrize(("case", "spec", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_spec_gives_one_line_naming_file_resource_and_key(tmp_path, case, spec, expected):
    path = write(tmp_path, spec)
    with pytest.raises(SpecError) as caught:
        load_spec_file(path)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(str(path)) or line.startswith("shop.yaml")
    assert expected in line, line


def test_error_lines_name_the_file_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, spec_with(client__auth={"type": "nope"}))
    with pytest.raises(SpecError) as caught:
        load_spec_file(path)
    assert str(caught.value).startswith("shop.yaml: client.auth.type: ")


VALID = [
    ("base", BASE),
    ("string resource shorthand", spec_with(resources__1="users")),
    ("string endpoint shorthand", spec_with(resources__0__endpoint="/v1/orgs")),
    (
        "dlt json_link paginator",
        spec_with(resources__0__endpoint__paginator={"type": "json_link", "next_url_path": "next"}),
    ),
    (
        "dlt cursor paginator",
        spec_with(
            resources__0__endpoint__paginator={
                "type": "cursor",
                "cursor_path": "next",
                "cursor_param": "c",
            }
        ),
    ),
    ("dlt paginator shorthand", spec_with(resources__0__endpoint__paginator="single_page")),
    ("dlt bearer auth without token", spec_with(client__auth={"type": "bearer"})),
    (
        "explicit dlt path binding",
        spec_with(resources__1__endpoint__path="/v1/o/{resources.organizations.id}/a"),
    ),
    (
        "dlt incremental",
        spec_with(
            resources__0__endpoint__params={"since": "{incremental.start_value}"},
            resources__0__endpoint__incremental={
                "cursor_path": "updated_at",
                "initial_value": "2024-01-01",
            },
        ),
    ),
    (
        "dlt response actions",
        spec_with(
            resources__1__endpoint__response_actions=[{"status_code": 404, "action": "ignore"}]
        ),
    ),
    (
        "dlt table hints",
        spec_with(resources__0__max_table_nesting=0, resources__0__table_name="orgs"),
    ),
    (
        "dict write disposition",
        spec_with(resources__0__write_disposition={"disposition": "merge", "strategy": "upsert"}),
    ),
    ("no auth", spec_with(client__auth=DELETE)),
    ("concurrency", spec_with(client__concurrency=8)),
    ("secret header", spec_with(client__headers={"X-Api-Key": {"secret": "api_key"}})),
    ("freshness shorthand", spec_with(resource_defaults__freshness="6h")),
    (
        "schedule mapping",
        spec_with(schedule={"cron": "0 * * * *", "timezone": "Europe/Paris", "enabled": True}),
    ),
    (
        "owners and tags on the spec, the defaults and a resource",
        spec_with(
            owners=["jane@example.com", "team:data-eng"],
            tags={"domain": "sales", "team/tier": "gold"},
            resource_defaults__owners=["team:ads"],
            resources__1__tags={"pii": ""},
        ),
    ),
]


@pytest.mark.parametrize(("case", "spec"), VALID, ids=[c[0] for c in VALID])
def test_valid_specs_load(tmp_path, case, spec):
    loaded = load_spec_file(write(tmp_path, spec))
    assert loaded.name == "shop"


def test_seed_specs_load_with_the_expected_shape():
    specs = {s.name: s for s in load_specs(SEED_SPECS)}
    assert sorted(specs) == [
        "ad_analytics",
        "ledger",
        "marketing_api",
        "native_ads",
        "workspace_docs",
    ]
    assert sum(len(s.resources) for s in specs.values()) == 19
    parents = {(s.name, r.name): r.parent for s in specs.values() for r in s.resources if r.parent}
    assert parents == {
        ("marketing_api", "adaccounts"): "organizations",
        ("marketing_api", "creatives"): "adaccounts",
        ("marketing_api", "ads"): "adaccounts",
        ("native_ads", "audiences"): "accounts",
        ("native_ads", "campaigns"): "accounts",
        ("native_ads", "audience_rules"): "accounts",
        ("native_ads", "conversion_rules"): "accounts",
        ("native_ads", "motion_ads"): "campaigns",
        ("native_ads", "campaign_items"): "campaigns",
    }
    marketing = specs["marketing_api"]
    assert isinstance(marketing.resource("organizations").paginator, TemplatedCursorPaginatorSpec)
    assert marketing.resource("organizations").error_handler.retry_on_status_codes == (403,)
    ledger = specs["ledger"].resource("resource_name")
    assert isinstance(ledger.paginator, OffsetPaginatorSpec) and ledger.paginator.limit == 5
    assert ledger.endpoint["params"] == {"limit": 200}
    assert {c.name: c.data_type for c in ledger.columns}["updated_at"] == "timestamp"


def test_ancestor_placeholders_are_carried_down_through_the_parent():
    native = {s.name: s for s in load_specs(SEED_SPECS)}["native_ads"]
    assert native.resource("campaigns").include_from_parent == ("id",)
    items = native.resource("campaign_items")
    assert items.endpoint["params"] == {
        "parent_id": {"type": "resolve", "resource": "campaigns", "field": "id"},
        "account_id": {"type": "resolve", "resource": "campaigns", "field": "_accounts_id"},
    }


def test_nearest_error_handler_wins_field_by_field(tmp_path):
    spec = spec_with(
        client__error_handler={"max_retries": 7, "backoff_factor": 3},
        resource_defaults__error_handler={"max_retries": 5},
        resources__1__error_handler={"retry_on_status_codes": [503]},
    )
    loaded = load_spec_file(write(tmp_path, spec))
    orgs, accounts = loaded.resource("organizations"), loaded.resource("adaccounts")
    assert (orgs.error_handler.max_retries, orgs.error_handler.backoff_factor) == (5, 3)
    assert accounts.error_handler.retry_on_status_codes == (503,)
    assert accounts.error_handler.max_retries == 5


def test_folder_lists_every_broken_file_and_duplicate_names(tmp_path):
    write(tmp_path, BASE, "a.yaml")
    write(tmp_path, BASE, "b.yaml")
    write(tmp_path, spec_with(name="other", client__auth={"type": "x"}), "c.yaml")
    with pytest.raises(SpecValidationError) as caught:
        load_specs(tmp_path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert "c.yaml: client.auth.type" in lines[0]
    assert "b.yaml: name: 'shop' is already the name of a.yaml" in lines[1]


@pytest.mark.parametrize(
    ("selector", "document", "expected"),
    [
        (
            "organizations.*.organization",
            {"organizations": [{"organization": {"id": 1}}]},
            [{"id": 1}],
        ),
        (
            "organizations.*.organization",
            {"organizations": {"a": {"organization": {"id": 2}}}},
            [{"id": 2}],
        ),
        ("data", {"data": [1, 2]}, [[1, 2]]),
    ],
)
def test_star_selects_array_elements_and_object_members(selector, document, expected):
    from dlt.common import jsonpath

    assert jsonpath.find_values(normalize_selector(selector), document) == expected


def test_concurrency_parallelizes_every_resource_of_the_source(tmp_path):
    from restsync_assets.resources import Credentials
    from restsync_assets.sources import build_source, source_config

    creds = Credentials("shop", "id", "secret", None, None, "http://127.0.0.1:9/token")
    parallel = load_spec_file(write(tmp_path, spec_with(client__concurrency=8)))
    assert parallel.concurrency == 8
    config = source_config(parallel, creds)
    assert [r.get("parallelized") for r in config["resources"]] == [True, True]
    assert set(build_source(parallel, creds).resources) == {"organizations", "adaccounts"}
    sequential = load_spec_file(write(tmp_path, BASE))
    assert [r.get("parallelized") for r in source_config(sequential, creds)["resources"]] == [
        None,
        None,
    ]


def test_owners_and_tags_merge_spec_then_resource(tmp_path):
    """A resource's owners add to its spec's (defaults included); its tags override the spec's."""
    spec = load_spec_file(
        write(
            tmp_path,
            spec_with(
                owners=["jane@example.com"],
                tags={"domain": "sales", "tier": "silver"},
                resources__1__owners=["team:ads", "jane@example.com"],
                resources__1__tags={"tier": "gold"},
            ),
        )
    )
    orgs, accounts = spec.resource("organizations"), spec.resource("adaccounts")
    assert orgs.owners == ("jane@example.com",)
    assert accounts.owners == ("jane@example.com", "team:ads")
    assert orgs.tags == {"domain": "sales", "tier": "silver"}
    assert accounts.tags == {"domain": "sales", "tier": "gold"}
    assert "owners" not in accounts.hints and "tags" not in accounts.hints  # not handed to dlt


def test_each_resource_knows_the_line_that_declares_it(tmp_path):
    """`ResourceSpec.line` is the 1-based line of the resource's list item, shorthand included."""
    text = (
        "# a comment\n"
        "name: shop\n"
        "client: {base_url: 'https://api.example.com'}\n"
        "resources:\n"
        "  - users\n"
        "\n"
        "  - name: orders\n"
        "    endpoint: /v1/orders\n"
    )
    spec = load_spec_file(write(tmp_path, text))
    assert {r.name: r.line for r in spec.resources} == {"users": 5, "orders": 7}
